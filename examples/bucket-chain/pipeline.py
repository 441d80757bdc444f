"""Bucket to pipeline, driven: put a CSV with a bad row, then read the totals the chain wrote."""

from squall.demo.pipelines import Demo, Outcome

TITLE = "Bucket to pipeline: an object starts parse -> validate -> aggregate via async destinations"
CSV = "product,quantity\napples,3\npears,2\napples,4\n,5\nplums,many\n"
EXPECTED = {"apples": 7, "pears": 2}


def drive(demo: Demo) -> Outcome:
    s3, dynamodb = demo.client("s3"), demo.client("dynamodb")
    s3.put_object(Bucket=demo.outputs["InboxBucket"], Key="incoming/orders.csv", Body=CSV.encode())
    demo.progress("orders.csv put into the inbox bucket; waiting for the chain")

    def totals() -> dict[str, int]:
        items = dynamodb.scan(TableName=demo.outputs["TotalsTable"])["Items"]
        found = {item["product"]["S"]: int(item["quantity"]["N"]) for item in items}
        return found if set(found) == set(EXPECTED) else {}

    found = demo.wait_for(totals, "totals from the aggregate step", timeout_s=60)
    return Outcome(
        went_in=[f"s3://{demo.outputs['InboxBucket']}/incoming/orders.csv: {CSV.count(chr(10)) - 1} rows, 2 invalid"],
        came_out=[f"{product}: {quantity}" for product, quantity in sorted(found.items())],
        ok=found == EXPECTED,
    )
