"""Stream delivery: records per second from PutRecords to a no-op handler, through event source mappings."""

from __future__ import annotations

import time
import uuid
from typing import Any

from benchmarks.harness import REGION, ServerProcess, build_zip, create_function

NOOP_SOURCE = "def handler(event, context):\n    return None\n"
PUT_CHUNK = 500


def kinesis_client(server: ServerProcess) -> Any:
    import boto3
    from botocore.config import Config

    creds = server.credentials()
    return boto3.client(
        "kinesis",
        endpoint_url=server.url,
        region_name=REGION,
        aws_access_key_id=creds.access_key,
        aws_secret_access_key=creds.secret_key,
        config=Config(retries={"max_attempts": 0}, read_timeout=120),
    )


def delivery(server: ServerProcess, lam: Any, batch_size: int, records: int, shards: int = 4) -> dict[str, Any]:
    """Put ``records`` into a ``shards``-shard stream mapped to a no-op function; time until all are delivered."""
    from squall.cli.streams import stream_report

    kinesis = kinesis_client(server)
    tag = uuid.uuid4().hex[:8]
    stream, function = f"bench-{tag}", f"bench-sink-{tag}"
    kinesis.create_stream(StreamName=stream, ShardCount=shards)
    arn = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]
    create_function(lam, function, build_zip(NOOP_SOURCE, tag))
    payload = b"x" * 100
    began = time.perf_counter()
    mapping = lam.create_event_source_mapping(
        EventSourceArn=arn, FunctionName=function, StartingPosition="LATEST", BatchSize=batch_size
    )
    for start in range(0, records, PUT_CHUNK):
        count = min(PUT_CHUNK, records - start)
        kinesis.put_records(
            StreamName=stream, Records=[{"Data": payload, "PartitionKey": f"k{start + i}"} for i in range(count)]
        )
    put_done = time.perf_counter()
    deadline = put_done + 300
    while time.perf_counter() < deadline:
        report = stream_report(server.data_dir)
        entry = next(m for m in report["mappings"] if m["uuid"] == mapping["UUID"])
        if entry["lag"] and all(lag["behind"] == 0 for lag in entry["lag"]):
            break
        time.sleep(0.05)
    else:
        raise TimeoutError(f"{records} records were not delivered within 300 s")
    elapsed = time.perf_counter() - began
    lam.delete_event_source_mapping(UUID=mapping["UUID"])
    return {
        "batch_size": batch_size,
        "records": records,
        "shards": shards,
        "seconds": round(elapsed, 3),
        "put_seconds": round(put_done - began, 3),
        "records_per_s": round(records / elapsed, 1),
    }
