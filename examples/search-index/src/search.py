"""The HTTP API: ``GET /search?q=...`` ranks the indexed documents that hold every word of ``q``
(FTS5's bm25, a title match counting more) with a snippet each; ``GET /documents`` lists what the
index holds. The index is downloaded once and kept in /tmp; a warm function only asks S3 whether it
changed (a conditional GET: 304 Not Modified keeps the copy it has).
"""

import json
import os
import re
import sqlite3
import tempfile
from contextlib import closing

import boto3
from botocore.exceptions import ClientError
from index_schema import INDEX_KEY

s3 = boto3.client("s3")
INDEX_BUCKET = os.environ["INDEX_BUCKET"]
CACHED = os.path.join(tempfile.gettempdir(), INDEX_KEY)  # /tmp on Lambda
MAX_RESULTS = 10
cached_etag = None


def handler(event, context):
    path = current_index()
    if event["routeKey"] == "GET /documents":
        return answer(200, {"documents": documents(path)})
    query = (event.get("queryStringParameters") or {}).get("q", "")
    words = re.findall(r"\w+", query.lower())
    if not words:
        return answer(400, {"message": "Give the words to search for as ?q=..."})
    return answer(200, {"query": query, "results": search(path, words)})


def current_index():
    """The path of an up-to-date copy of the index, or None when nothing has been indexed yet."""
    global cached_etag
    condition = {"IfNoneMatch": cached_etag} if cached_etag else {}
    try:
        response = s3.get_object(Bucket=INDEX_BUCKET, Key=INDEX_KEY, **condition)
    except ClientError as exc:
        code = exc.response["Error"]["Code"]
        if code == "304":
            return CACHED
        if code == "NoSuchKey":
            return None
        raise
    with open(CACHED + ".part", "wb") as part:
        part.write(response["Body"].read())
    os.replace(CACHED + ".part", CACHED)
    cached_etag = response["ETag"]
    return CACHED


def search(path, words):
    if path is None:
        return []
    match = " ".join(f'"{word}"' for word in words)  # quoted: the user's words, never FTS5 syntax
    with closing(open_read_only(path)) as db:
        rows = db.execute(
            "SELECT d.key, p.title, snippet(passages, 1, '[', ']', '...', 8), bm25(passages, 4.0, 1.0) AS rank"
            " FROM passages AS p JOIN documents AS d ON d.id = p.rowid"
            " WHERE passages MATCH ? ORDER BY rank, d.key LIMIT ?",
            (match, MAX_RESULTS),
        ).fetchall()
    return [
        {"key": key, "title": title, "snippet": " ".join(snippet.split()), "score": round(-rank, 3)}
        for key, title, snippet, rank in rows
    ]


def documents(path):
    if path is None:
        return []
    with closing(open_read_only(path)) as db:
        rows = db.execute("SELECT key, etag, size, filed FROM documents WHERE NOT removed ORDER BY key").fetchall()
    return [{"key": key, "etag": etag, "size": size, "filed": filed} for key, etag, size, filed in rows]


def open_read_only(path):
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def answer(status, body):
    return {"statusCode": status, "headers": {"content-type": "application/json"}, "body": json.dumps(body)}
