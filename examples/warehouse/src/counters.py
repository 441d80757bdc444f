"""The counters table: one item per dataset, ``{dataset, records, pending: {key: records},
loading?, claimed_at?, loads}``. Objects are added with an atomic ADD; a conditional update on
``loading`` decides which caller starts a load, so a dataset has one load at a time (a claim left
for 15 minutes, whose loader never ran, is taken over)."""

import json
import os
import time
import uuid

import boto3
from botocore.exceptions import ClientError

table = boto3.resource("dynamodb").Table(os.environ["COUNTERS_TABLE"])
lambda_ = boto3.client("lambda")
THRESHOLD = int(os.environ["THRESHOLD"])
# A claim older than this is taken over: its loader never ran (the claimer died before invoking it)
# or gave up. Longer than a loader's timeout times its async attempts.
STALE_CLAIM_S = 15 * 60


def _code(error):
    return error.response["Error"]["Code"]


def add_object(dataset, key, records):
    """Add one object's records to its dataset's counter; the item afterwards, or None if this object
    was already counted (S3 delivers at least once, async invokes are retried)."""
    try:
        return table.update_item(
            Key={"dataset": dataset},
            UpdateExpression="SET pending.#key = :n ADD records :n",
            ConditionExpression="attribute_not_exists(pending.#key)",
            ExpressionAttributeNames={"#key": key},
            ExpressionAttributeValues={":n": records},
            ReturnValues="ALL_NEW",
        )["Attributes"]
    except ClientError as error:
        if _code(error) == "ConditionalCheckFailedException":
            return None
        if _code(error) != "ValidationException":
            raise
    # The dataset's first object: there is no pending map to add to yet.
    table.update_item(
        Key={"dataset": dataset},
        UpdateExpression="SET pending = if_not_exists(pending, :empty)",
        ExpressionAttributeValues={":empty": {}},
    )
    return add_object(dataset, key, records)


def start_load_if_due(bucket, dataset, item, loader):
    """If the counter is at the threshold and no load runs, claim the load and invoke the loader
    asynchronously (it reads the pending objects from ``bucket``); the load's id if this caller
    started it, else None."""
    now = int(time.time())
    if item["records"] < THRESHOLD or ("loading" in item and item["claimed_at"] > now - STALE_CLAIM_S):
        return None
    load_id = f"{dataset}/{uuid.uuid4().hex[:12]}"
    try:
        table.update_item(
            Key={"dataset": dataset},
            UpdateExpression="SET loading = :load, claimed_at = :now",
            ConditionExpression="(attribute_not_exists(loading) OR claimed_at < :stale) AND records >= :threshold",
            ExpressionAttributeValues={
                ":load": load_id,
                ":now": now,
                ":stale": now - STALE_CLAIM_S,
                ":threshold": THRESHOLD,
            },
        )
    except ClientError as error:
        if _code(error) == "ConditionalCheckFailedException":
            return None  # another object's counter got there first
        raise
    payload = json.dumps({"bucket": bucket, "dataset": dataset, "load": load_id}).encode()
    lambda_.invoke(FunctionName=loader, InvocationType="Event", Payload=payload)
    return load_id


def finish_load(dataset, load_id, loaded):
    """Take the loaded objects off the counter and release the claim; the item afterwards."""
    names = {f"#k{i}": key for i, key in enumerate(loaded)}
    removes = "".join(f", pending.{name}" for name in names)
    return table.update_item(
        Key={"dataset": dataset},
        UpdateExpression=f"REMOVE loading, claimed_at{removes} ADD records :minus, loads :one",
        ConditionExpression="loading = :load",
        ExpressionAttributeValues={":minus": -sum(loaded.values()), ":one": 1, ":load": load_id},
        ReturnValues="ALL_NEW",
        **({"ExpressionAttributeNames": names} if names else {}),
    )["Attributes"]
