import json


def handler(event, context):
    body = {
        "version": event["version"],
        "routeKey": event["routeKey"],
        "rawPath": event["rawPath"],
        "pathParameters": event.get("pathParameters"),
        "method": event["requestContext"]["http"]["method"],
    }
    return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": json.dumps(body)}
