"""A stream-triggered test function for the crash test: reports every record of its batch (id, shard,
sequence number) to an HTTP receiver outside Squall, one POST per batch, before it returns.

A failed POST raises, so the batch fails and is retried: the receiver never misses a batch the
function was counted as having handled."""

import base64
import json
import os
import time
import urllib.request

SINK_URL = os.environ["SINK_URL"]
#: How long the function works on a batch before it reports it (a real function takes time too).
WORK_S = float(os.environ.get("WORK_MS", "0")) / 1000


def handler(event, context):
    records = event["Records"]
    time.sleep(WORK_S)
    report = {
        "request": context.aws_request_id,
        "shard": records[0]["eventID"].split(":")[0],
        "records": [[base64.b64decode(r["kinesis"]["data"]).decode(), r["kinesis"]["sequenceNumber"]] for r in records],
    }
    request = urllib.request.Request(
        SINK_URL, data=json.dumps(report).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()
    return {"seen": len(records)}
