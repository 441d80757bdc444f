"""Keep ``index.db`` in step with the documents bucket: each S3 event (one per upload or removal)
adds the object to the index, or takes it out.

Uploads arrive together, so several indexers run at once, each wanting to change the same object.
Each update is therefore a conditional write: download the index and its ETag, change it, upload
with ``If-Match`` on that ETag (``If-None-Match: *`` for the very first index). When another
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
    changes = [change for change in map(read, event.get("Records", [])) if change is not None]
    for attempt in range(ATTEMPTS):
        applied = update_index(changes) if changes else []
        if applied is not None:
            print(f"applied {applied} after {attempt} conflicting writes")
            return {"applied": applied, "conflicts": attempt}
        # Another indexer wrote first: back off a random while (so racers spread out), then redo.
        time.sleep(random.uniform(0, min(1.0, 0.05 * 2**attempt)))
    raise RuntimeError(f"index.db kept changing: gave up after {ATTEMPTS} attempts")


def read(record):
    """What the record asks of the index: a removal, or the object as it was when the event was sent
    (None if it changed or went since: that later change has an event of its own)."""
    s3_record = record["s3"]
    bucket, key = s3_record["bucket"]["name"], unquote_plus(s3_record["object"]["key"])
    change = {"key": key, "sequencer": s3_record["object"]["sequencer"]}
    if record["eventName"].startswith("ObjectRemoved:"):
        return {**change, "removed": True}
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
        **change,
        "removed": False,
        "etag": etag,
        "size": len(body.encode()),
        "filed": found["Metadata"].get("filed", ""),
        "title": title.strip(),
        "body": text.strip(),
    }


def update_index(changes):
    """Apply ``changes`` to the current index and upload it: the keys it changed, or None when
    another writer won the race."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, INDEX_KEY)
        etag = download(path)
        db = sqlite3.connect(path)
        try:
            db.executescript(SCHEMA)
            with db:
                changed = [change["key"] for change in changes if apply(db, change)]
        finally:
            db.close()
        if not changed:
            return changed
        condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
        with open(path, "rb") as index:
            try:
                s3.put_object(Bucket=INDEX_BUCKET, Key=INDEX_KEY, Body=index.read(), **condition)
            except ClientError as exc:
                if exc.response["Error"]["Code"] in CONFLICTS:
                    return None
                raise
    return changed


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


def apply(db, change):
    """Index the document, or take it out, in place of the key's older version; False if the index
    already holds a later event of the key (S3's sequencers order the events of one key)."""
    key, sequencer = change["key"], change["sequencer"]
    row = db.execute("SELECT id, sequencer FROM documents WHERE key = ?", (key,)).fetchone()
    if row is not None and later_or_same(row[1], sequencer):
        return False
    if row is None:
        doc_id = db.execute(
            "INSERT INTO documents (key, sequencer, removed, etag, size, filed) VALUES (?, ?, 1, '', 0, '')",
            (key, sequencer),
        ).lastrowid
    else:
        doc_id = row[0]
    db.execute("DELETE FROM passages WHERE rowid = ?", (doc_id,))
    if change["removed"]:
        db.execute("UPDATE documents SET sequencer = ?, removed = 1 WHERE id = ?", (sequencer, doc_id))
        return True
    db.execute(
        "UPDATE documents SET sequencer = ?, removed = 0, etag = ?, size = ?, filed = ? WHERE id = ?",
        (sequencer, change["etag"], change["size"], change["filed"], doc_id),
    )
    db.execute("INSERT INTO passages (rowid, title, body) VALUES (?, ?, ?)", (doc_id, change["title"], change["body"]))
    return True


def later_or_same(stored, incoming):
    """S3's rule for sequencers (hex strings, possibly of different lengths): right-pad the shorter
    with zeros, then compare them as strings."""
    width = max(len(stored), len(incoming))
    return stored.ljust(width, "0") >= incoming.ljust(width, "0")
