"""Bucket to search index, driven: put five documents and a draft, wait until the index holds each of
them as put, remove the draft and wait until the index lets it go; then search for two words
(checking the ranked keys), for one that no document ever held, and for the draft's own word."""

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
DRAFT = ("notes/draft.txt", "Pruning the orchard\nCut the orchard's apple trees back in late winter.")
EXPECTED = {
    "lighthouse": ["notes/lighthouse.txt", "notes/harbour.txt"],
    "tides": ["notes/tides.txt", "notes/harbour.txt"],
    "volcano": [],
    "orchard": [],  # only the draft held it, and the draft was removed
}


def drive(demo: Demo) -> Outcome:
    s3, bucket = demo.client("s3"), demo.outputs["DocumentsBucket"]
    api = f"{demo.server.gateway_url}/{demo.outputs['ApiId']}"
    # Each run files its documents afresh (user metadata the index keeps), so it can tell when the
    # index holds this run's uploads and not an earlier run's of the same text.
    filed = datetime.now(UTC).isoformat(timespec="microseconds")
    versions = {}
    for key, text in [*DOCUMENTS.items(), DRAFT]:
        put = s3.put_object(Bucket=bucket, Key=key, Body=text.encode(), Metadata={"filed": filed})
        versions[key] = (put["ETag"].strip('"'), filed)  # the index keeps the S3 event's bare ETag
    demo.progress(f"{len(versions)} documents put into the bucket; waiting for the index to hold them")

    def indexed() -> dict[str, tuple[str, str]]:
        status, body = get(f"{api}/documents")
        return {doc["key"]: (doc["etag"], doc["filed"]) for doc in body["documents"]} if status == 200 else {}

    demo.wait_for(lambda: versions.items() <= indexed().items(), f"index holding all {len(versions)} documents")
    s3.delete_object(Bucket=bucket, Key=DRAFT[0])
    del versions[DRAFT[0]]
    demo.progress(f"{DRAFT[0]} removed from the bucket; waiting for the index to let it go")

    def draft_gone() -> bool:
        held = indexed()
        return DRAFT[0] not in held and versions.items() <= held.items()

    demo.wait_for(draft_gone, f"index without {DRAFT[0]}")
    found = {word: get(f"{api}/search?{urllib.parse.urlencode({'q': word})}") for word in EXPECTED}
    bad_status, bad_body = get(f"{api}/search")
    ranked = {word: [hit["key"] for hit in body.get("results", [])] for word, (_, body) in found.items()}
    came_out = []
    for word, (status, body) in found.items():
        hits = body.get("results", [])
        came_out.append(f"GET /search?q={word} -> {status}, {len(hits)} documents" + (":" if hits else ""))
        came_out += [f"  {hit['score']:6.3f}  {hit['key']}: {hit['snippet']}" for hit in hits]
    came_out.append(f"GET /search (no q) -> {bad_status} {bad_body.get('message', '')}")
    went_in = [f"s3://{bucket}/{key}: {text.partition(chr(10))[0]}" for key, text in DOCUMENTS.items()]
    went_in.append(f"s3://{bucket}/{DRAFT[0]}: {DRAFT[1].partition(chr(10))[0]} (put, then removed)")
    return Outcome(
        went_in=went_in,
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
