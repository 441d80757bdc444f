"""Cron replacement, driven: record a day's orders, then wait for the scheduled job's report."""

from decimal import Decimal

from squall.demo.pipelines import Demo, Outcome

TITLE = "Cron replacement: a nightly-style report job on a schedule (every minute here)"
ORDERS = [("o-1", "2026-11-28", "12.50"), ("o-2", "2026-11-28", "7.25"), ("o-3", "2026-11-29", "30.00")]


def drive(demo: Demo) -> Outcome:
    table = demo.client("dynamodb")
    for order_id, day, amount in ORDERS:
        table.put_item(
            TableName=demo.outputs["OrdersTable"],
            Item={"id": {"S": order_id}, "day": {"S": day}, "amount": {"N": amount}},
        )
    demo.progress(f"{len(ORDERS)} orders written; waiting for the schedule's next minute")

    def reports() -> list[dict[str, str]]:
        items = table.scan(TableName=demo.outputs["ReportsTable"])["Items"]
        done = {item["day"]["S"]: item for item in items}
        if set(done) != {day for _, day, _ in ORDERS}:
            return []
        return [
            {"day": day, "orders": item["orders"]["N"], "total": item["total"]["N"], "run_at": item["run_at"]["S"]}
            for day, item in sorted(done.items())
        ]

    found = demo.wait_for(reports, "report from the scheduled job", timeout_s=90)
    expected = {}
    for _, day, amount in ORDERS:
        count, total = expected.get(day, (0, Decimal(0)))
        expected[day] = (count + 1, total + Decimal(amount))
    ok = all(
        int(r["orders"]) == expected[r["day"]][0] and Decimal(r["total"]) == expected[r["day"]][1] for r in found
    )
    return Outcome(
        went_in=[f"order {order_id} on {day}: ${amount}" for order_id, day, amount in ORDERS],
        came_out=[f"report {r['day']}: {r['orders']} orders, ${r['total']} (run at {r['run_at']})" for r in found],
        ok=ok,
    )
