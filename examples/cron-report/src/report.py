"""The nightly job: sum each day's orders into one report item per day.

Triggered by a schedule (an EventBridge rule); it gets the Scheduled Event and reads its ``time``.
"""

import os
from collections import defaultdict
from decimal import Decimal

import boto3

dynamodb = boto3.resource("dynamodb")
orders = dynamodb.Table(os.environ["ORDERS_TABLE"])
reports = dynamodb.Table(os.environ["REPORTS_TABLE"])


def handler(event, context):
    count: dict[str, int] = defaultdict(int)
    total: dict[str, Decimal] = defaultdict(Decimal)
    scan = {}
    while True:
        page = orders.scan(**scan)
        for item in page["Items"]:
            count[item["day"]] += 1
            total[item["day"]] += item["amount"]
        if "LastEvaluatedKey" not in page:
            break
        scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    for day in count:
        reports.put_item(Item={"day": day, "orders": count[day], "total": total[day], "run_at": event["time"]})
    print(f"report at {event['time']}: {dict(count)}")
    return {"days": len(count)}
