"""Index the documents put into the documents bucket (one S3 event per upload) into ``index.db``.

Uploads arrive together, so several indexers run at once, each wanting to change the same object.
Each update is therefore a conditional write: download the index and its ETag, add the document,
upload with ``If-Match`` on that ETag (``If-None-Match: *`` for the very first index). When another
indexer wrote in between, S3 refuses with 412 PreconditionFailed and this one starts over from the
newer index, so no update is lost.
"""

import os
import random
import sqlite3
import tempfile
import time
from urllib.parse import unquote_plus

import boto3
from botocore.exceptions import ClientError
from index_schema import INDEX_KEY, SCHEMA

s3 = boto3.client("s3")
INDEX_BUCKET = os.environ["INDEX_BUCKET"]
ATTEMPTS = 25
CONFLICTS = ("PreconditionFailed", "ConditionalRequestConflict")


def handler(event, context):
    documents = [doc for doc in map(fetch, event.get("Records", [])) if doc is not None]
    if not documents:
        return {"indexed": [], "conflicts": 0}
    for attempt in range(ATTEMPTS):
        if update_index(documents):
            keys = [doc["key"] for doc in documents]
            print(f"indexed {keys} after {attempt} conflicting writes")
            return {"indexed": keys, "conflicts": attempt}
        # Another indexer wrote first: back off a random while (so racers spread out), then redo.
        time.sleep(random.uniform(0, min(1.0, 0.05 * 2**attempt)))
    raise RuntimeError(f"index.db kept changing: gave up after {ATTEMPTS} attempts")


def fetch(record):
    """The object the record names, as it was when the event was sent (None if it changed since:
    the later upload's own event indexes it)."""
    s3_record = record["s3"]
    bucket, key = s3_record["bucket"]["name"], unquote_plus(s3_record["object"]["key"])
    etag = s3_record["object"]["eTag"]  # bare, as S3 events give it (HTTP headers quote it)
    try:
        found = s3.get_object(Bucket=bucket, Key=key, IfMatch=f'"{etag}"')
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("PreconditionFailed", "NoSuchKey"):
            print(f"skipped s3://{bucket}/{key}: changed or removed since the event")
            return None
        raise
    body = found["Body"].read().decode()
    title, _, text = body.partition("\n")
    return {
        "key": key,
        "etag": etag,
        "sequencer": s3_record["object"]["sequencer"],
        "size": len(body.encode()),
        "filed": found["Metadata"].get("filed", ""),
        "title": title.strip(),
        "body": text.strip(),
    }


def update_index(documents):
    """Add ``documents`` to the current index and upload it; False when another writer won the race."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, INDEX_KEY)
        etag = download(path)
        db = sqlite3.connect(path)
        try:
            db.executescript(SCHEMA)
            with db:
                changed = [doc for doc in documents if upsert(db, doc)]
        finally:
            db.close()
        if not changed:
            return True
        condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
        with open(path, "rb") as index:
            try:
                s3.put_object(Bucket=INDEX_BUCKET, Key=INDEX_KEY, Body=index.read(), **condition)
            except ClientError as exc:
                if exc.response["Error"]["Code"] in CONFLICTS:
                    return False
                raise
    return True


def download(path):
    """The index into ``path``; its ETag, or None when there is no index yet."""
    try:
        response = s3.get_object(Bucket=INDEX_BUCKET, Key=INDEX_KEY)
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "NoSuchKey":
            return None
        raise
    with open(path, "wb") as index:
        index.write(response["Body"].read())
    return response["ETag"]


def upsert(db, doc):
    """Index ``doc`` in place of the key's older version; False if the index already holds a later
    event for the key (S3's sequencers order the events of one key)."""
    row = db.execute("SELECT id, sequencer FROM documents WHERE key = ?", (doc["key"],)).fetchone()
    if row is not None and later_or_same(row[1], doc["sequencer"]):
        return False
    if row is not None:
        db.execute("DELETE FROM passages WHERE rowid = ?", (row[0],))
        db.execute("DELETE FROM documents WHERE id = ?", (row[0],))
    cursor = db.execute(
        "INSERT INTO documents (key, etag, sequencer, size, filed) VALUES (?, ?, ?, ?, ?)",
        (doc["key"], doc["etag"], doc["sequencer"], doc["size"], doc["filed"]),
    )
    db.execute(
        "INSERT INTO passages (rowid, title, body) VALUES (?, ?, ?)", (cursor.lastrowid, doc["title"], doc["body"])
    )
    return True


def later_or_same(stored, incoming):
    """S3's rule for sequencers (hex strings, possibly of different lengths): right-pad the shorter
    with zeros, then compare them as strings."""
    width = max(len(stored), len(incoming))
    return stored.ljust(width, "0") >= incoming.ljust(width, "0")
