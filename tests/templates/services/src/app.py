import json
import os

import boto3

table = boto3.resource("dynamodb").Table(os.environ["TABLE"])


def record(kind, detail):
    table.put_item(Item={"id": f"{kind}:{detail}", "label": os.environ["LABEL"]})


def handler(event, context):
    if "requestContext" in event:  # the function URL
        record("url", event["rawPath"])
        body = {"label": os.environ["LABEL"], "path": event["rawPath"]}
        return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": json.dumps(body)}
    if "tick" in event:  # the rule's or the schedule's Input
        record("tick", event["tick"])
        return {"tick": event["tick"]}
    for item in event.get("Records", []):
        if item.get("eventSource") == "aws:s3":
            record("s3", item["s3"]["object"]["key"])
        elif item.get("EventSource") == "aws:sns":
            record("sns", item["Sns"]["Message"])
        elif item.get("eventSource") == "aws:sqs":
            record("sqs", item["body"])
    return {"label": os.environ["LABEL"]}
