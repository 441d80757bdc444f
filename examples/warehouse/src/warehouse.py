"""The warehouse: one DuckDB database file kept in a bucket. A loader downloads it, changes it and
puts it back only if nobody else did meanwhile (a conditional PUT on the ETag it downloaded)."""

import os

import boto3
import duckdb
from botocore.exceptions import ClientError

s3 = boto3.client("s3")
BUCKET = os.environ["WAREHOUSE_BUCKET"]
KEY = "warehouse.duckdb"
PATH = "/tmp/warehouse.duckdb"

SCHEMA = """
CREATE TABLE IF NOT EXISTS sales (
    order_id VARCHAR NOT NULL, store VARCHAR, product VARCHAR, quantity INTEGER,
    dataset VARCHAR NOT NULL, source VARCHAR NOT NULL, load_id VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS loaded_objects (
    source VARCHAR PRIMARY KEY, dataset VARCHAR NOT NULL, records INTEGER, load_id VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS loads (
    load_id VARCHAR PRIMARY KEY, dataset VARCHAR NOT NULL, objects INTEGER, records INTEGER,
    loaded_at TIMESTAMP DEFAULT current_timestamp
);
"""


class Conflict(Exception):
    """Someone else put a new warehouse file since this one was downloaded."""


def download():
    """Fetch the warehouse file to PATH; its ETag, or None when there is no warehouse yet."""
    for stale in (PATH, PATH + ".wal"):
        if os.path.exists(stale):
            os.remove(stale)
    try:
        answer = s3.get_object(Bucket=BUCKET, Key=KEY)
    except ClientError as error:
        if error.response["Error"]["Code"] == "NoSuchKey":
            return None
        raise
    with open(PATH, "wb") as file:
        for chunk in answer["Body"].iter_chunks(1 << 20):
            file.write(chunk)
    return answer["ETag"]


def upload(etag):
    """Put PATH back: over the version downloaded (If-Match), or as the first one (If-None-Match)."""
    condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
    try:
        with open(PATH, "rb") as file:
            s3.put_object(Bucket=BUCKET, Key=KEY, Body=file.read(), **condition)
    except ClientError as error:
        if error.response["Error"]["Code"] in ("PreconditionFailed", "ConditionalRequestConflict"):
            raise Conflict() from error
        raise


def connect(read_only=False):
    connection = duckdb.connect(PATH, read_only=read_only, config={"threads": 2})
    if not read_only:
        connection.execute(SCHEMA)
    return connection
