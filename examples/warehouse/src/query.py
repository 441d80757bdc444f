"""Answer questions about one dataset from the warehouse: rows, distinct orders, rows per source
object, the loads and the quantities per product."""

import warehouse


def handler(event, context):
    dataset = event["dataset"]
    if warehouse.download() is None:
        return {"dataset": dataset, "rows": 0, "distinct_orders": 0, "by_source": {}, "loads": [], "quantities": {}}
    with warehouse.connect(read_only=True) as db:
        rows, distinct = db.execute(
            "SELECT count(*), count(DISTINCT order_id) FROM sales WHERE dataset = ?", [dataset]
        ).fetchone()
        by_source = db.execute(
            "SELECT source, count(*) FROM sales WHERE dataset = ? GROUP BY source ORDER BY source", [dataset]
        ).fetchall()
        loads = db.execute(
            "SELECT load_id, objects, records FROM loads WHERE dataset = ? ORDER BY loaded_at", [dataset]
        ).fetchall()
        quantities = db.execute(
            "SELECT product, sum(quantity) FROM sales WHERE dataset = ? GROUP BY product ORDER BY product", [dataset]
        ).fetchall()
    return {
        "dataset": dataset,
        "rows": rows,
        "distinct_orders": distinct,
        "by_source": dict(by_source),
        "loads": [{"load": load, "objects": objects, "records": records} for load, objects, records in loads],
        "quantities": {product: int(total) for product, total in quantities},
    }
