"""Buckets: object-put-to-function latency through a bucket notification, and ``aws s3 cp`` throughput.

Latency: an object is put every 1/rate s with its send time (``time.time()``) in its key; the
function the bucket notification invokes (asynchronously, as on Lambda) prints now minus that time;
the figures come back through FilterLogEvents. Throughput: the AWS CLI (v1, from the venv) copies
one file up and back down, multipart as it chooses; the file's bytes are checked after the round trip.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks.harness import ServerProcess, build_zip, create_function
from benchmarks.stats import Summary
from benchmarks.streams import _client, _collect

LATENCY_SOURCE = """import time


def handler(event, context):
    now = time.time()
    for record in event["Records"]:
        _, label, sent = record["s3"]["object"]["key"].split("/")
        print(f"PUT_TO_HANDLER {label} {(now - float(sent)) * 1000:.3f}")
"""
LATENCY_RATE = 20
LATENCY_WARMUP = 10


def put_latency(server: ServerProcess, lam: Any, seconds: float) -> dict[str, Any]:
    creds = server.credentials()
    s3 = _client("s3", server.url, creds.access_key, creds.secret_key)
    logs = _client("logs", server.url, creds.access_key, creds.secret_key)
    tag = uuid.uuid4().hex[:8]
    bucket = function = f"bench-objects-{tag}"
    create_function(lam, function, build_zip(LATENCY_SOURCE, tag))
    arn = lam.get_function(FunctionName=function)["Configuration"]["FunctionArn"]
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "LambdaFunctionConfigurations": [{"LambdaFunctionArn": arn, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    total = LATENCY_WARMUP + int(seconds * LATENCY_RATE)
    start = time.monotonic()
    for i in range(total):
        delay = start + i / LATENCY_RATE - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        label = "w" if i < LATENCY_WARMUP else "m"
        s3.put_object(Bucket=bucket, Key=f"lat/{label}/{time.time()!r}", Body=b"x" * 100)
    samples = _collect(logs, f"/aws/lambda/{function}", total - LATENCY_WARMUP)
    return {"rate_per_s": LATENCY_RATE, "objects": len(samples), "latency_ms": Summary.of(samples).as_dict()}


def cli_copy(server: ServerProcess, megabytes: int) -> dict[str, Any]:
    """``aws s3 cp`` of a ``megabytes`` file up and back down; MB/s each way."""
    creds = server.credentials()
    s3 = _client("s3", server.url, creds.access_key, creds.secret_key)
    bucket = f"bench-cp-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    aws = str(Path(sys.executable).parent / "aws")
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": creds.access_key,
        "AWS_SECRET_ACCESS_KEY": creds.secret_key,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    with tempfile.TemporaryDirectory() as scratch:
        source, back = Path(scratch) / "big.bin", Path(scratch) / "back.bin"
        digest = hashlib.sha256()
        with open(source, "wb") as out:
            chunk = os.urandom(1024 * 1024)
            for i in range(megabytes):
                block = chunk[i % 256 :] + chunk[: i % 256]  # each MiB differs, cheaply
                out.write(block)
                digest.update(block)
        figures: dict[str, Any] = {"megabytes": megabytes}
        for direction, args in (
            ("up", [str(source), f"s3://{bucket}/big.bin"]),
            ("down", [f"s3://{bucket}/big.bin", str(back)]),
        ):
            began = time.perf_counter()
            subprocess.run(
                [aws, "--endpoint-url", server.url, "s3", "cp", "--only-show-errors", *args],
                env=env,
                check=True,
                timeout=900,
            )
            figures[f"{direction}_mb_per_s"] = round(megabytes / (time.perf_counter() - began), 1)
        back_digest = hashlib.sha256(back.read_bytes()).hexdigest()
        if back_digest != digest.hexdigest():
            raise RuntimeError("the file that came back differs from the one sent")
    s3.delete_object(Bucket=bucket, Key="big.bin")
    s3.delete_bucket(Bucket=bucket)
    return figures
