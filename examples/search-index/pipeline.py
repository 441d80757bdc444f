"""Bucket to search index, driven: put five documents, wait until the index holds each of them as
put, then search for two words (checking the ranked keys) and for one that no document holds."""

import json
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime

from squall.demo.pipelines import Demo, Outcome

TITLE = "Bucket to search index: uploads indexed into SQLite FTS5 in a bucket, searched over HTTP"
DOCUMENTS = {
    "notes/lighthouse.txt": "The lighthouse keeper\n"
    "The keeper climbs the lighthouse stairs at dusk and lights the lamp. Ships steer by the "
    "lighthouse beam through the fog.",
    "notes/harbour.txt": "The harbour at low tide\n"
    "Fishing boats rest on the mud of the harbour until the tide turns. The old lighthouse watches "
    "from the point.",
    "notes/storm.txt": "A winter storm\n"
    "Waves break over the harbour wall and the ferry stays in port. Everyone waits for the storm to pass.",
    "notes/bread.txt": "Baking rye bread\n"
    "Mix the flour, the water and a spoon of starter, then let the dough rise overnight before baking.",
    "notes/tides.txt": "Reading a tide table\n"
    "A tide table gives the times of high tide and low tide for each day. Spring tides come with the "
    "full and new moon.",
}
EXPECTED = {
    "lighthouse": ["notes/lighthouse.txt", "notes/harbour.txt"],
    "tides": ["notes/tides.txt", "notes/harbour.txt"],
    "volcano": [],
}


def drive(demo: Demo) -> Outcome:
    s3 = demo.client("s3")
    api = f"{demo.server.gateway_url}/{demo.outputs['ApiId']}"
    # Each run files its documents afresh (user metadata the index keeps), so it can tell when the
    # index holds this run's uploads and not an earlier run's of the same text.
    filed = datetime.now(UTC).isoformat(timespec="microseconds")
    versions = {}
    for key, text in DOCUMENTS.items():
        put = s3.put_object(
            Bucket=demo.outputs["DocumentsBucket"], Key=key, Body=text.encode(), Metadata={"filed": filed}
        )
        versions[key] = (put["ETag"].strip('"'), filed)  # the index keeps the S3 event's bare ETag
    demo.progress(f"{len(DOCUMENTS)} documents put into the bucket; waiting for the index to hold them")

    def indexed() -> bool:
        status, body = get(f"{api}/documents")
        held = {doc["key"]: (doc["etag"], doc["filed"]) for doc in body.get("documents", [])} if status == 200 else {}
        return all(held.get(key) == version for key, version in versions.items())

    demo.wait_for(indexed, "index holding all five documents", timeout_s=60)
    found = {word: get(f"{api}/search?{urllib.parse.urlencode({'q': word})}") for word in EXPECTED}
    bad_status, bad_body = get(f"{api}/search")
    ranked = {word: [hit["key"] for hit in body.get("results", [])] for word, (_, body) in found.items()}
    came_out = []
    for word, (status, body) in found.items():
        hits = body.get("results", [])
        came_out.append(f"GET /search?q={word} -> {status}, {len(hits)} documents" + (":" if hits else ""))
        came_out += [f"  {hit['score']:6.3f}  {hit['key']}: {hit['snippet']}" for hit in hits]
    came_out.append(f"GET /search (no q) -> {bad_status} {bad_body.get('message', '')}")
    return Outcome(
        went_in=[
            f"s3://{demo.outputs['DocumentsBucket']}/{key}: {text.partition(chr(10))[0]}"
            for key, text in DOCUMENTS.items()
        ],
        came_out=came_out,
        ok=ranked == EXPECTED and all(status == 200 for status, _ in found.values()) and bad_status == 400,
    )


def get(url: str) -> tuple[int, dict]:
    """The status and JSON body of a GET on the gateway."""
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read() or b"{}")
