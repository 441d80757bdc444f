import json


def hello(event, context):
    authorizer = event["requestContext"].get("authorizer") or {}
    print("hello called on", event["routeKey"])
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps({"route": event["routeKey"], "authorizer": authorizer}),
    }


def gate(event, context):
    allowed = event["identitySource"][0] == "open-sesame"
    return {"isAuthorized": allowed, "context": {"by": "gate"}}
