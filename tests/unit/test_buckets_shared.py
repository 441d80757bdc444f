"""Two bucket services on one store, as two servers on one PostgreSQL (or one data directory) have:
what one writes the other reads, conditional writes stay atomic between them, a multipart upload
moves between them, each notification is delivered by one of them, and both serve every website."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from squall.cli.main import main
from squall.gateway.websites import WebsiteServer
from squall.services.buckets import website
from squall.services.buckets.api import Request, _put_conditions
from squall.services.buckets.errors import NoSuchBucket, NoSuchKey, PreconditionFailed
from squall.services.buckets.files import BodyStore
from squall.services.buckets.notifications import NotificationConfig, to_json
from squall.services.buckets.service import MIN_PART_SIZE, BucketService, StoredObject
from tests.contract.postgres import dsn as postgres_dsn
from tests.contract.postgres import scratch_schema
from tests.contract.test_metadata_store import unavailable
from tests.threads import run_together
from tests.unit.bucket_stores import PREAMBLE, BucketServices

WANTED = NotificationConfig("queue", "c", "arn:aws:sqs:us-east-1:0:q", ("s3:ObjectCreated:*",))


def read(service: BucketService, bucket: str, key: str, first: int = 0, size: int | None = None) -> bytes:
    _, body = service.open_object(bucket, key)
    with body:
        body.seek(first)
        return body.read() if size is None else body.read(size)


def test_an_object_put_through_one_server_is_read_listed_and_deleted_through_the_other(
    bucket_services: BucketServices,
) -> None:
    a, b = bucket_services.open(), bucket_services.open()
    a.create_bucket("bkt")
    assert [bucket.name for bucket in b.list_buckets()] == ["bkt"]
    data = os.urandom(3 * 1024 * 1024 + 17)  # more than one chunk, not a whole number of them
    put = a.put_object("bkt", "dir/k", data, {"content-type": "text/plain"}, {"m": "v"})
    head = b.head_object("bkt", "dir/k")
    assert (head.size, head.etag, head.headers, head.metadata) == (len(data), put.etag, put.headers, {"m": "v"})
    assert read(b, "bkt", "dir/k") == data
    assert read(b, "bkt", "dir/k", 1024 * 1024 - 5, 10) == data[1024 * 1024 - 5 : 1024 * 1024 + 5]  # across chunks
    assert b.list_objects("bkt", delimiter="/").prefixes == ["dir/"]
    b.copy_object("bkt", "dir/k", "bkt", "copy", None)
    assert read(a, "bkt", "copy") == data
    assert b.delete_object("bkt", "dir/k")
    with pytest.raises(NoSuchKey):
        a.head_object("bkt", "dir/k")
    assert [o.key for o in a.list_objects("bkt").objects] == ["copy"]
    b.delete_object("bkt", "copy")
    a.delete_bucket("bkt")
    with pytest.raises(NoSuchBucket):
        b.get_bucket("bkt")


def test_a_reader_keeps_its_body_while_another_server_overwrites_and_deletes(bucket_services: BucketServices) -> None:
    a, b = bucket_services.open(), bucket_services.open()
    a.create_bucket("bkt")
    old = os.urandom(2 * 1024 * 1024)
    a.put_object("bkt", "k", old, {}, {})
    _, body = a.open_object("bkt", "k")
    with body:
        first = body.read(1000)
        b.put_object("bkt", "k", b"new", {}, {})
        b.delete_object("bkt", "k")
        assert first + body.read() == old


def condition(**headers: str) -> Callable[[StoredObject | None], None] | None:
    """The check PutObject runs for these conditional headers (the S3 API's own)."""
    return _put_conditions(Request("PUT", "bkt", "k", {}, headers, b"", "req", None))


def race(services: list[BucketService], writers_each: int, attempt: Callable[[BucketService, int], None]) -> list[int]:
    """Run ``attempt`` from ``writers_each`` threads per service at once; the writers that succeeded."""
    won: list[int] = []

    def writer(service: BucketService, n: int) -> None:
        with contextlib.suppress(PreconditionFailed):
            attempt(service, n)
            won.append(n)

    run_together(
        [
            functools.partial(writer, service, i * writers_each + j)
            for i, service in enumerate(services)
            for j in range(writers_each)
        ],
        timeout_s=60,
    )
    return won


@pytest.mark.parametrize("rounds", [5])
def test_conditional_writes_from_both_servers_have_one_winner_a_round(
    bucket_services: BucketServices, rounds: int
) -> None:
    a, b = bucket_services.open(), bucket_services.open()
    a.create_bucket("bkt")
    for round_ in range(rounds):
        key = f"new-{round_}"

        def create(service: BucketService, n: int, key: str = key) -> None:
            service.put_object("bkt", key, f"writer {n}".encode(), {}, {}, None, condition(**{"if-none-match": "*"}))

        (winner,) = race([a, b], 4, create)
        assert read(b, "bkt", key) == f"writer {winner}".encode()

    a.put_object("bkt", "k", b"v0", {}, {})
    for round_ in range(rounds):
        etag = b.head_object("bkt", "k").etag

        def replace(service: BucketService, n: int, etag: str = etag, round_: int = round_) -> None:
            data = f"round {round_} writer {n}".encode()
            service.put_object("bkt", "k", data, {}, {}, None, condition(**{"if-match": etag}))

        (winner,) = race([a, b], 4, replace)
        assert read(a, "bkt", "k") == f"round {round_} writer {winner}".encode()
    # Every loser's body was dropped. The bodies the winners replaced are gone too, from files at once,
    # from PostgreSQL once no reader on any server can still be streaming them.
    assert len(a.list_objects("bkt").objects) == rounds + 1
    assert stored_bodies(b) == (rounds + 1 if bucket_services.backend == "sqlite" else 2 * rounds + 1)


def stored_bodies(service: BucketService) -> int:
    if isinstance(service.bodies, BodyStore):
        return len(service.bodies.names())
    with service.db.read() as conn:
        return int(conn.execute("SELECT count(*) FROM bodies").fetchone()[0])


def test_a_multipart_upload_started_on_one_server_is_completed_on_the_other(bucket_services: BucketServices) -> None:
    a, b = bucket_services.open(), bucket_services.open()
    a.create_bucket("bkt")
    upload = a.create_upload("bkt", "big", {"content-type": "application/zip"}, {"m": "v"})
    parts = [os.urandom(MIN_PART_SIZE), os.urandom(MIN_PART_SIZE + 3), b"tail"]
    done = [
        (service.upload_part("bkt", "big", upload.upload_id, number, data))
        for number, (service, data) in enumerate(zip([a, b, a], parts, strict=True), start=1)
    ]
    assert [u.upload_id for u in b.list_uploads("bkt")] == [upload.upload_id]
    # Part 2 sent again through the other server replaces the first copy.
    again = a.upload_part("bkt", "big", upload.upload_id, 2, parts[1])
    assert [p.number for p in b.list_parts("bkt", "big", upload.upload_id)[1]] == [1, 2, 3]
    stored = b.complete_upload("bkt", "big", upload.upload_id, [(1, done[0].etag), (2, again.etag), (3, done[2].etag)])
    assert stored.size == sum(len(p) for p in parts) and stored.etag.endswith('-3"')
    assert read(a, "bkt", "big") == b"".join(parts)
    assert a.head_object("bkt", "big").metadata == {"m": "v"}
    assert a.list_uploads("bkt") == []


def dying_writer(services: BucketServices, keys: list[str]) -> None:
    """Another process puts ``keys`` (into ``bkt``) and dies before delivering their notifications."""
    code = PREAMBLE + (
        f"service = {services.script}\n"
        f"for key in {keys!r}:\n"
        "    service.put_object('bkt', key, b'x', {}, {})\n"
        "import os; os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_a_dead_servers_notifications_are_taken_over_each_by_one_server(bucket_services: BucketServices) -> None:
    a, b = bucket_services.open(), bucket_services.open()
    a.create_bucket("bkt")
    b.put_notifications("bkt", to_json([WANTED]))
    dying_writer(bucket_services, [f"k{i:02d}" for i in range(40)])
    assert len(a.pending_notifications()) == 40
    # Both servers look at once: every row goes to one of them.
    taken: dict[str, list[str]] = {}
    start = threading.Barrier(2)

    def claim(name: str, service: BucketService) -> None:
        start.wait()
        taken[name] = [change.key for change in service.claim_notifications()]

    threads = [threading.Thread(target=claim, args=item) for item in (("a", a), ("b", b))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(taken["a"] + taken["b"]) == [f"k{i:02d}" for i in range(40)]
    # A live server's claims hold: nobody takes them again.
    assert a.claim_notifications() == [] and b.claim_notifications() == []
    for change in a.pending_notifications():
        a.ack_notification(change.outbox_id or 0)
    assert b.pending_notifications() == []


def test_a_live_servers_rows_are_left_to_it_until_its_claim_lapses(bucket_services: BucketServices) -> None:
    writer, other = bucket_services.open(claim_s=0.5), bucket_services.open()
    heard = []
    writer.add_listener(heard.append)
    writer.create_bucket("bkt")
    writer.put_notifications("bkt", to_json([WANTED]))
    writer.put_object("bkt", "k", b"x", {}, {})
    assert heard[0].outbox_id is not None
    assert other.notifications("bkt") == to_json([WANTED])
    assert other.claim_notifications() == []  # the writer is delivering it
    threading.Event().wait(0.6)
    (late,) = other.claim_notifications()  # the writer never acknowledged within its claim
    assert (late.key, late.outbox_id) == ("k", heard[0].outbox_id)
    assert writer.claim_notifications() == []
    other.ack_notification(late.outbox_id or 0)
    assert writer.pending_notifications() == []
    # A server that stops leaves what it has not delivered to the others at once.
    writer.claim_s = 60.0
    writer.put_object("bkt", "k2", b"x", {}, {})
    assert other.claim_notifications() == []
    writer.close()
    assert [change.key for change in other.claim_notifications()] == ["k2"]


def test_a_website_is_served_by_either_server(bucket_services: BucketServices) -> None:
    a, b = bucket_services.open(), bucket_services.open()
    a.create_bucket("site")
    a.put_object("site", "index.html", b"<h1>home</h1>", {"content-type": "text/html"}, {})
    b.put_object("site", "docs/index.html", b"<h1>docs</h1>", {"content-type": "text/html"}, {})
    status, _ = website.answer(a, "PUT", "site", _WEBSITE)
    assert status == 200

    def serve(service: BucketService, path: str) -> tuple[int, bytes]:
        response = asyncio.run(WebsiteServer(service).serve("site", path, "GET", {}, "req"))
        return response.status, response.body

    assert serve(b, "/") == (200, b"<h1>home</h1>")
    assert serve(a, "/docs/") == (200, b"<h1>docs</h1>")
    assert serve(b, "/docs")[0] == 302
    assert website.answer(b, "GET", "site", b"")[0] == 200
    website.answer(b, "DELETE", "site", b"")
    assert serve(a, "/")[0] == 404


_WEBSITE = (
    b'<WebsiteConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
    b"<IndexDocument><Suffix>index.html</Suffix></IndexDocument></WebsiteConfiguration>"
)


def test_squall_buckets_reads_the_deployments_postgresql(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from squall.services.buckets.postgres import ChunkBodies, postgres_bucket_database

    with scratch_schema(unavailable) as schema:
        database = postgres_bucket_database(postgres_dsn(), f"{schema}_buckets")
        server = BucketService(database, ChunkBodies(database), "us-east-1")
        try:
            server.create_bucket("shared")
            server.put_object("shared", "k", b"12345", {}, {})
        finally:
            server.close()
            database.close()
        monkeypatch.setenv("SQUALL_TIER", "ray")
        monkeypatch.setenv("SQUALL_POSTGRES_DSN", postgres_dsn())
        monkeypatch.setenv("SQUALL_POSTGRES_SCHEMA", schema)
        result = CliRunner().invoke(main, ["buckets", "--json", "--data-dir", str(tmp_path / "empty")])
    assert result.exit_code == 0, result.output
    [listed] = json.loads(result.output)
    assert (listed["name"], listed["objects"], listed["bytes"]) == ("shared", 1, 5)
