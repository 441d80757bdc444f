"""A test function that asks STS who it is, and tries IAM and CloudWatch Logs with its own key."""

import boto3
import botocore.exceptions


def _try(call):
    try:
        call()
    except botocore.exceptions.ClientError as exc:
        return {"code": exc.response["Error"]["Code"], "message": exc.response["Error"]["Message"]}
    return {"code": None}


def handler(event, context):
    identity = boto3.client("sts").get_caller_identity()
    identity.pop("ResponseMetadata", None)
    return {
        "identity": identity,
        "iam": _try(lambda: boto3.client("iam").list_roles()),
        "logs": _try(lambda: boto3.client("logs").describe_log_groups()),
    }
