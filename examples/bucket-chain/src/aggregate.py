"""Step 3: add each product's quantities into the totals table (atomic ADD per product)."""

import os
from collections import Counter

import boto3

totals = boto3.resource("dynamodb").Table(os.environ["TOTALS_TABLE"])


def handler(event, context):
    validated = event["responsePayload"]
    quantities = Counter()
    for row in validated["rows"]:
        quantities[row["product"]] += int(row["quantity"])
    for product, quantity in quantities.items():
        totals.update_item(
            Key={"product": product},
            UpdateExpression="ADD quantity :q, batches :one SET rejected_last = :r",
            ExpressionAttributeValues={":q": quantity, ":one": 1, ":r": validated["rejected"]},
        )
    print(f"added {dict(quantities)} from {validated['source']}")
    return dict(quantities)
