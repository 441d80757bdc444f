"""Transaction-rate alarm, driven: a quiet window of transactions, then a burst over the threshold.

The quiet window must close without an alarm; the burst's must reach the on-call phone (Squall's
outbox, where sms messages land) and the webhook's table, once each. Transaction ids carry a run
id, so a second run against the same stack looks only at its own windows and alerts.
"""

import json
import random
import time
import uuid
from decimal import Decimal
from typing import Any

from squall.demo.pipelines import Demo, Outcome
from squall.services.topics.service import TopicService

TITLE = "Transaction-rate alarm: a stream in tumbling windows -> topic -> sms outbox and a webhook"
QUIET, BURST = 6, 60


def transactions(run: str, phase: str, count: int) -> list[dict[str, str]]:
    rng = random.Random(f"{run}{phase}")
    return [
        {"id": f"{run}-{phase}{i:02d}", "card": f"card-{rng.randrange(999)}", "amount": f"{rng.uniform(2, 90):.2f}"}
        for i in range(count)
    ]


def drive(demo: Demo) -> Outcome:
    kinesis, sns, dynamodb = demo.client("kinesis"), demo.client("sns"), demo.client("dynamodb")
    out = demo.outputs
    run, began = uuid.uuid4().hex[:6], time.time()

    def webhook_confirmed() -> bool:
        subs = sns.list_subscriptions_by_topic(TopicArn=out["AlarmTopic"])["Subscriptions"]
        return any(s["Protocol"] == "http" and s["SubscriptionArn"].startswith("arn:") for s in subs)

    demo.wait_for(webhook_confirmed, "confirmation of the webhook's subscription", timeout_s=60)
    demo.progress("the webhook confirmed its subscription")

    def put(phase: str, count: int) -> list[dict[str, str]]:
        batch = transactions(run, phase, count)
        records = [{"Data": json.dumps(t).encode(), "PartitionKey": t["card"]} for t in batch]
        failed = kinesis.put_records(StreamName=out["StreamName"], Records=records)["FailedRecordCount"]
        if failed:
            raise RuntimeError(f"{failed} of {count} records refused")
        return batch

    def closed_windows(phase: str, count: int) -> list[dict[str, Any]]:
        """This phase's windows from the history table, once they hold all of its transactions."""
        items = dynamodb.scan(TableName=out["WindowsTable"])["Items"]
        mine = [i for i in items if i["first"]["S"].startswith(f"{run}-{phase}")]
        return mine if sum(int(i["transactions"]["N"]) for i in mine) == count else []

    quiet = put("q", QUIET)
    demo.progress(f"{QUIET} quiet transactions put; waiting for their window to close")
    quiet_windows = demo.wait_for(lambda: closed_windows("q", QUIET), "close of the quiet window", timeout_s=60)
    burst = put("b", BURST)
    demo.progress(f"a burst of {BURST} transactions put; waiting for the alarm")
    burst_windows = demo.wait_for(lambda: closed_windows("b", BURST), "close of the burst's window", timeout_s=60)

    raised = [w for w in quiet_windows + burst_windows if w["alarm"]["BOOL"]]
    sms = wait_for_texts(demo, run, began, len(raised))
    posted = wait_for_webhook(demo, run, len(raised))
    ok = (
        not any(w["alarm"]["BOOL"] for w in quiet_windows)
        and any(w["alarm"]["BOOL"] for w in burst_windows)
        and len(sms) == len(posted) == len(raised)
        and all(f"{run}-b" in text for text in sms)
        and all(i["first"]["S"].startswith(f"{run}-b") for i in posted)
    )
    total = sum(Decimal(t["amount"]) for t in quiet + burst)
    return Outcome(
        went_in=[
            f"{QUIET} quiet transactions ({run}-q00..), then {BURST} at once ({run}-b00..), ${total} in all",
        ],
        came_out=[
            *(window_line(w) for w in sorted(quiet_windows + burst_windows, key=lambda w: w["window"]["S"])),
            *(f"sms to the on-call phone: {text}" for text in sms),
            *(f"webhook kept alert {i['message_id']['S'][:8]}: {i['transactions']['N']} transactions" for i in posted),
        ],
        ok=ok,
    )


def wait_for_texts(demo: Demo, run: str, since: float, alarms: int) -> list[str]:
    """The run's texts in the outbox (as ``squall outbox`` reads it), once there are ``alarms`` of them."""
    if not alarms:
        return []
    server = demo.server
    topics = TopicService(server.data_dir / "topics.db", server.account_id, server.region, server.endpoint_url)

    def texts() -> list[str]:
        entries = topics.outbox(since=since)
        mine = [e["body"] for e in entries if e["subscription_arn"] == demo.outputs["SmsSubscription"]]
        found = [body for body in mine if run in body]
        return found if len(found) >= alarms else []

    try:
        return demo.wait_for(texts, "alarm text in the outbox", timeout_s=60)
    finally:
        topics.close()


def wait_for_webhook(demo: Demo, run: str, alarms: int) -> list[dict[str, Any]]:
    """The run's alerts in the webhook's table, once there are ``alarms`` of them."""
    if not alarms:
        return []
    dynamodb = demo.client("dynamodb")

    def received() -> list[dict[str, Any]]:
        items = dynamodb.scan(TableName=demo.outputs["ReceivedAlertsTable"])["Items"]
        found = [i for i in items if i["first"]["S"].startswith(f"{run}-")]
        return found if len(found) >= alarms else []

    return demo.wait_for(received, "alert at the webhook", timeout_s=60)


def window_line(item: dict[str, Any]) -> str:
    start = item["window"]["S"].split("/")[0]
    rate = Decimal(item["rate_per_second"]["N"]).quantize(Decimal("0.1"))
    verdict = "ALARM" if item["alarm"]["BOOL"] else "no alarm"
    return f"window from {start}: {item['transactions']['N']} transactions, {rate}/s ({verdict})"
