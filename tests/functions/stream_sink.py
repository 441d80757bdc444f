"""A stream-triggered test function: copies each record it gets to the "sink" stream, with where it
came from; records whose data starts with "poison" fail the batch, and "flaky" ones fail once."""

import base64
import json
import os

import boto3

kinesis = boto3.client("kinesis")
FLAKY_SEEN = "/tmp/flaky-seen"


def handler(event, context):
    failures = []
    for record in event["Records"]:
        data = base64.b64decode(record["kinesis"]["data"]).decode()
        if data.startswith("poison"):
            raise ValueError(f"poison record {data}")
        if data.startswith("flaky") and not os.path.exists(FLAKY_SEEN + data):
            open(FLAKY_SEEN + data, "w").close()
            failures.append({"itemIdentifier": record["kinesis"]["sequenceNumber"]})
            break
        note = {
            "data": data,
            "shard": record["eventID"].split(":")[0],
            "sequence": record["kinesis"]["sequenceNumber"],
            "batch": len(event["Records"]),
        }
        kinesis.put_record(
            StreamName=os.environ.get("SINK", "sink"), Data=json.dumps(note).encode(), PartitionKey="sink"
        )
    return {"batchItemFailures": failures}
