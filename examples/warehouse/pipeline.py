"""Bucket to table counter to warehouse, driven: land two objects below the threshold (nothing is
loaded), then one that crosses it; wait for the one load and check every record arrived once."""

import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from squall.demo.pipelines import Demo, Outcome, PipelineFailed

TITLE = "Bucket to table counter to warehouse: records counted per object, loaded into DuckDB past a threshold"
REQUIREMENT = "duckdb==2.0.1"
PRODUCTS = ("apples", "pears", "plums")
# (file, records): the first two stay below the threshold of 100, the third crosses it.
OBJECTS = (("store-a.csv", 30), ("store-b.jsonl", 40), ("store-c.csv", 45))


def prepare(folder: Path, progress) -> None:
    """What ``sam build`` would do: pip-install duckdb for python3.12 into ``layer/python``, once."""
    layer = folder / "layer"
    name, version = REQUIREMENT.split("==")
    if (layer / "python" / f"{name}-{version}.dist-info").is_dir():
        progress(f"DuckDB layer: {REQUIREMENT} already in {layer.relative_to(folder.parent)}/")
        return
    progress(f"DuckDB layer: pip-installing {REQUIREMENT} (python3.12 wheel from PyPI) into layer/")
    began = time.monotonic()
    staging = Path(tempfile.mkdtemp(prefix=".layer-", dir=folder))
    command = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-compile"]
    command += ["--progress-bar", "off", "--target", str(staging / "python"), "--python-version", "3.12"]
    command += ["--only-binary=:all:", REQUIREMENT]
    try:
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as pip:
            output = []
            for line in pip.stdout:
                output.append(line.rstrip())
                if line.startswith(("Collecting", "Downloading", "  Downloading", "Installing", "Successfully")):
                    progress(f"  pip: {line.strip()}")
        if pip.returncode != 0:
            raise PipelineFailed(f"pip could not install {REQUIREMENT}: {' / '.join(output[-3:])}")
        shutil.rmtree(layer, ignore_errors=True)
        staging.rename(layer)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    size = sum(f.stat().st_size for f in layer.rglob("*") if f.is_file())
    progress(f"DuckDB layer ready: {size / 1e6:.0f} MB in {time.monotonic() - began:.1f} s")


def records(dataset: str, file: str, count: int) -> list[dict]:
    store = file.split(".")[0]
    return [
        {"order_id": f"{dataset}-{store}-{n}", "store": store, "product": PRODUCTS[n % 3], "quantity": n % 5 + 1}
        for n in range(count)
    ]


def body(file: str, rows: list[dict]) -> bytes:
    if file.endswith(".jsonl"):
        return "".join(json.dumps(row) + "\n" for row in rows).encode()
    lines = ["order_id,store,product,quantity"] + [",".join(str(row[f]) for f in row) for row in rows]
    return ("\n".join(lines) + "\n").encode()


def drive(demo: Demo) -> Outcome:
    s3, dynamodb, lam = demo.client("s3"), demo.client("dynamodb"), demo.client("lambda")
    landing, threshold = demo.outputs["LandingBucket"], int(demo.outputs["Threshold"])
    dataset = f"run-{time.strftime('%H%M%S')}-{uuid.uuid4().hex[:6]}"  # a counter of its own per run
    data = {file: records(dataset, file, count) for file, count in OBJECTS}

    def counter() -> dict:
        item = dynamodb.get_item(
            TableName=demo.outputs["CountersTable"], Key={"dataset": {"S": dataset}}, ConsistentRead=True
        )
        return item.get("Item", {})

    def query() -> dict:
        answer = lam.invoke(FunctionName=demo.outputs["QueryFunction"], Payload=json.dumps({"dataset": dataset}))
        result = json.loads(answer["Payload"].read())
        if "FunctionError" in answer:
            raise PipelineFailed(f"the query function failed: {result}")
        return result

    def land(file: str) -> None:
        s3.put_object(Bucket=landing, Key=f"incoming/{dataset}/{file}", Body=body(file, data[file]))

    below = OBJECTS[:-1]
    for file, _ in below:
        land(file)
    below_sum = sum(count for _, count in below)
    demo.progress(f"{len(below)} objects ({below_sum} records) landed in {dataset}; waiting for the counter")

    def counted() -> dict:
        item = counter()
        # The item may exist for a moment before its first count is added: read it only once both are there.
        records, pending = item.get("records", {}).get("N"), item.get("pending", {}).get("M", {})
        return item if records is not None and int(records) == below_sum and len(pending) == 2 else {}

    def loaded() -> dict:
        item = counter()
        return item if "loads" in item and "loading" not in item else {}

    counted_item = demo.wait_for(counted, f"counter at {below_sum}")
    before = query()
    quiet = "loading" not in counted_item and "loads" not in counted_item and before["rows"] == 0
    demo.progress(f"counter at {below_sum} of {threshold}: {'no load, as expected' if quiet else 'a load ran early!'}")

    last, last_count = OBJECTS[-1]
    land(last)
    demo.progress(f"{last} ({last_count} records) landed: over the threshold; waiting for the load")
    done = demo.wait_for(loaded, "load into the warehouse", timeout_s=90)
    after = query()

    total = sum(count for _, count in OBJECTS)
    expected_sources = {f"incoming/{dataset}/{file}": count for file, count in OBJECTS}
    expected_quantities: dict[str, int] = {}
    for rows in data.values():
        for row in rows:
            expected_quantities[row["product"]] = expected_quantities.get(row["product"], 0) + row["quantity"]
    loads = after["loads"]
    ok = (
        quiet
        and int(done["loads"]["N"]) == 1
        and int(done["records"]["N"]) == 0
        and not done["pending"]["M"]
        and after["rows"] == total
        and after["distinct_orders"] == total
        and after["by_source"] == expected_sources
        and [(load["objects"], load["records"]) for load in loads] == [(len(OBJECTS), total)]
        and after["quantities"] == expected_quantities
    )
    return Outcome(
        went_in=[f"s3://{landing}/incoming/{dataset}/{file}: {count} records" for file, count in OBJECTS]
        + [f"threshold: {threshold} records"],
        came_out=[
            f"before crossing: counter {below_sum}, {before['rows']} rows in the warehouse, "
            f"{'no load' if quiet else 'a load ran'}",
            f"after: {len(loads)} load(s) "
            + ", ".join(f"{load['load']} ({load['objects']} objects, {load['records']} records)" for load in loads),
            f"warehouse: {after['rows']} rows, {after['distinct_orders']} distinct orders; counter back to "
            f"{done['records']['N']}",
            "quantities: " + ", ".join(f"{product} {quantity}" for product, quantity in after["quantities"].items()),
        ],
        ok=ok,
    )
