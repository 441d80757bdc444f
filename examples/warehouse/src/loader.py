"""Load a dataset's pending objects into the warehouse in one transaction, then reset its counter.

Invoked asynchronously by whoever won the claim (``counters.start_load_if_due``) with
``{"bucket", "dataset", "load"}``. Safe to run again for the same load: objects already in the
warehouse's ``loaded_objects`` are not inserted twice.
"""

import boto3
import warehouse
from counters import finish_load, start_load_if_due, table
from records import parse

s3 = boto3.client("s3")


def rows_of(bucket, key):
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return [
        (str(r["order_id"]), r.get("store"), r.get("product"), int(r.get("quantity") or 0)) for r in parse(key, body)
    ]


def insert(dataset, load_id, objects):
    """Insert every record of ``objects`` ({key: rows}) not loaded before, all in one transaction;
    how many records went in."""
    with warehouse.connect() as db:
        loaded = db.execute("SELECT source FROM loaded_objects WHERE dataset = ?", [dataset]).fetchall()
        done = {source for (source,) in loaded}
        fresh = {key: rows for key, rows in objects.items() if key not in done}
        sales = [(*row, dataset, key, load_id) for key, rows in fresh.items() for row in rows]
        db.execute("BEGIN TRANSACTION")
        if sales:
            db.executemany("INSERT INTO sales VALUES (?, ?, ?, ?, ?, ?, ?)", sales)
        if fresh:
            db.executemany(
                "INSERT INTO loaded_objects VALUES (?, ?, ?, ?)",
                [(key, dataset, len(rows), load_id) for key, rows in fresh.items()],
            )
        db.execute(
            "INSERT INTO loads (load_id, dataset, objects, records) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [load_id, dataset, len(fresh), len(sales)],
        )
        db.execute("COMMIT")
    return len(sales)


def handler(event, context):
    bucket, dataset, load_id = event["bucket"], event["dataset"], event["load"]
    item = table.get_item(Key={"dataset": dataset}, ConsistentRead=True).get("Item", {})
    if item.get("loading") != load_id:
        print(f"load {load_id} is not {dataset}'s current load; nothing to do")
        return {"loaded": 0}
    pending = {key: int(records) for key, records in item["pending"].items()}
    objects = {key: rows_of(bucket, key) for key in sorted(pending)}
    for attempt in range(1, 6):
        etag = warehouse.download()
        inserted = insert(dataset, load_id, objects)
        try:
            warehouse.upload(etag)
            break
        except warehouse.Conflict:
            print(f"the warehouse changed while loading (attempt {attempt}); loading again")
    else:
        raise RuntimeError(f"load {load_id}: the warehouse kept changing; giving up for this attempt")
    after = finish_load(dataset, load_id, pending)
    print(f"load {load_id}: {inserted} records from {len(objects)} objects; {after['records']} pending after it")
    again = start_load_if_due(bucket, dataset, after, context.function_name)
    if again:
        print(f"{dataset} is at the threshold again: load {again} started")
    return {"loaded": inserted, "objects": len(objects)}
