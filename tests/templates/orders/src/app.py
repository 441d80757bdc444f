import os

import boto3
from shared import label

table = boto3.resource("dynamodb").Table(os.environ["TABLE"])


def handler(event, context):
    for record in event.get("Records", []):
        source = record.get("eventSource", "direct")
        table.update_item(Key={"id": source}, UpdateExpression="ADD n :one", ExpressionAttributeValues={":one": 1})
    return {"greeting": os.environ["GREETING"], "label": label()}
