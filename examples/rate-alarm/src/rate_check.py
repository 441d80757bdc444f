"""The rate check: counts the transactions of each tumbling window and raises the alarm when the
window's rate is above the threshold.

Lambda carries ``state`` from one batch of a window to the next (the function returns
``{"state": ...}``), then makes a last call with ``isFinalInvokeForWindow`` and no records once the
window is over: that call decides, publishes the alert, and keeps the window in the history table.
"""

import base64
import json
import os
from datetime import datetime
from decimal import Decimal

import boto3

sns = boto3.client("sns")
windows = boto3.resource("dynamodb").Table(os.environ["WINDOWS_TABLE"])
THRESHOLD = Decimal(os.environ["THRESHOLD_PER_SECOND"])


def handler(event, context):
    state = dict(event.get("state") or {})
    for record in event["Records"]:
        transaction = json.loads(base64.b64decode(record["kinesis"]["data"]))
        state["count"] = state.get("count", 0) + 1
        state["amount"] = str(Decimal(state.get("amount", "0")) + Decimal(str(transaction["amount"])))
        state.setdefault("first", transaction["id"])
        state["last"] = transaction["id"]
    if event["isFinalInvokeForWindow"] and state.get("count"):
        close(event["window"], event["shardId"], state)
    return {"state": state}


def close(window, shard_id, state):
    start, end = (datetime.fromisoformat(window[side].replace("Z", "+00:00")) for side in ("start", "end"))
    seconds = Decimal((end - start).total_seconds())
    rate = (Decimal(state["count"]) / seconds).quantize(Decimal("0.1"))
    alarm = rate > THRESHOLD
    span = f"{start:%H:%M:%S}-{end:%H:%M:%S}Z"
    if alarm:
        alert = {
            "window_start": window["start"],
            "window_end": window["end"],
            "transactions": state["count"],
            "amount": state["amount"],
            "rate_per_second": str(rate),
            "threshold_per_second": str(THRESHOLD),
            "first": state["first"],
            "last": state["last"],
        }
        sms = f"RATE ALARM {span}: {state['count']} tx ({rate}/s > {THRESHOLD}/s), {state['first']}..{state['last']}"
        sns.publish(
            TopicArn=os.environ["ALARM_TOPIC"],
            Subject="Transaction rate alarm",
            MessageStructure="json",
            Message=json.dumps({"default": json.dumps(alert), "sms": sms}),
        )
    windows.put_item(
        Item={
            "window": f"{window['start']}/{shard_id}",
            "end": window["end"],
            "transactions": state["count"],
            "amount": Decimal(state["amount"]),
            "rate_per_second": rate,
            "alarm": alarm,
            "first": state["first"],
            "last": state["last"],
        }
    )
    print(f"window {span}: {state['count']} transactions, {rate}/s{' ALARM' if alarm else ''}")
