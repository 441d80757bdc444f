"""Step 2: keep the rows with a product and a positive whole quantity (the OnSuccess record of
step 1 carries its result in ``responsePayload``)."""


def valid(row):
    quantity = row.get("quantity", "")
    return bool(row.get("product")) and quantity.isdigit() and int(quantity) > 0


def handler(event, context):
    parsed = event["responsePayload"]
    good = [row for row in parsed["rows"] if valid(row)]
    rejected = [row for row in parsed["rows"] if not valid(row)]
    print(f"{len(good)} valid rows, {len(rejected)} rejected")
    return {"source": parsed["source"], "rows": good, "rejected": len(rejected)}
