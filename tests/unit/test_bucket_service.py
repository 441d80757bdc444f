"""The bucket service on a real SQLite file and a real objects directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from squall.services.buckets.errors import BucketAlreadyOwnedByYou, NoSuchKey
from squall.services.buckets.service import BucketService, ObjectChange


@pytest.fixture
def service(tmp_path: Path) -> Iterator[BucketService]:
    svc = BucketService(tmp_path / "buckets.db", tmp_path / "objects", "us-east-1")
    yield svc
    svc.close()


def bodies(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and p.parent.name != "tmp"]


def test_overwrite_replaces_the_body_file(service: BucketService, tmp_path: Path) -> None:
    service.create_bucket("bkt")
    service.put_object("bkt", "k", b"one", {}, {})
    service.put_object("bkt", "k", b"two", {}, {})
    stored, body = service.open_object("bkt", "k")
    with body:
        assert body.read() == b"two"
    assert [p.name for p in bodies(tmp_path / "objects")] == [stored.file]


def test_a_reader_keeps_its_body_across_an_overwrite(service: BucketService) -> None:
    service.create_bucket("bkt")
    service.put_object("bkt", "k", b"old", {}, {})
    _, body = service.open_object("bkt", "k")
    service.put_object("bkt", "k", b"new", {}, {})
    service.delete_object("bkt", "k")
    with body:
        assert body.read() == b"old"


def test_crash_leftovers_are_never_visible_and_are_cleaned(tmp_path: Path) -> None:
    svc = BucketService(tmp_path / "buckets.db", tmp_path / "objects", "us-east-1")
    svc.create_bucket("bkt")
    svc.put_object("bkt", "kept", b"kept", {}, {})
    # A write interrupted before its rename, and one interrupted between rename and commit.
    (tmp_path / "objects" / "tmp" / "half").write_bytes(b"half")
    orphan = svc.bodies.write(b"never committed")
    svc.close()
    reopened = BucketService(tmp_path / "buckets.db", tmp_path / "objects", "us-east-1")
    try:
        assert not (tmp_path / "objects" / "tmp" / "half").exists()
        assert not reopened.bodies.path(orphan).exists()
        assert [o.key for o in reopened.list_objects("bkt").objects] == ["kept"]
        assert len(bodies(tmp_path / "objects")) == 1
    finally:
        reopened.close()


def test_listing_with_delimiter_and_pages(service: BucketService) -> None:
    service.create_bucket("bkt")
    for key in ["a/1", "a/2", "b", "c/d/e", "c/f", "é"]:
        service.put_object("bkt", key, b"", {}, {})
    page = service.list_objects("bkt", delimiter="/", max_keys=2)
    assert ([o.key for o in page.objects], page.prefixes, page.truncated, page.last) == (["b"], ["a/"], True, "b")
    page = service.list_objects("bkt", delimiter="/", after="b", max_keys=2)
    assert ([o.key for o in page.objects], page.prefixes, page.truncated) == (["é"], ["c/"], False)
    nested = service.list_objects("bkt", prefix="c/", delimiter="/")
    assert ([o.key for o in nested.objects], nested.prefixes) == (["c/f"], ["c/d/"])
    # Continuing after a common prefix skips every key under it.
    assert [o.key for o in service.list_objects("bkt", delimiter="/", after="a/").objects] == ["b", "é"]
    assert service.list_objects("bkt", max_keys=0).objects == []


def test_listeners_hear_creations_and_removals(service: BucketService) -> None:
    heard: list[ObjectChange] = []
    service.add_listener(heard.append)
    service.create_bucket("bkt")
    put = service.put_object("bkt", "k", b"abc", {}, {})
    service.copy_object("bkt", "k", "bkt", "k2", None)
    service.delete_object("bkt", "k")
    assert [(c.event, c.key) for c in heard] == [
        ("ObjectCreated:Put", "k"),
        ("ObjectCreated:Copy", "k2"),
        ("ObjectRemoved:Delete", "k"),
    ]
    assert (heard[0].size, heard[0].etag, heard[0].sequencer) == (3, put.etag, put.sequencer)
    assert heard[0].sequencer < heard[1].sequencer < heard[2].sequencer


def test_bucket_already_owned_outside_us_east_1(tmp_path: Path) -> None:
    svc = BucketService(tmp_path / "b.db", tmp_path / "objects", "eu-west-1")
    try:
        svc.create_bucket("bkt")
        with pytest.raises(BucketAlreadyOwnedByYou):
            svc.create_bucket("bkt")
        assert svc.get_bucket("bkt").region == "eu-west-1"
    finally:
        svc.close()


def test_complete_upload_removes_parts(service: BucketService, tmp_path: Path) -> None:
    service.create_bucket("bkt")
    upload = service.create_upload("bkt", "k", {"content-type": "text/plain"}, {"a": "b"})
    part = service.upload_part("bkt", "k", upload.upload_id, 1, b"only part")
    stored = service.complete_upload("bkt", "k", upload.upload_id, [(1, part.etag)])
    assert (stored.size, stored.headers, stored.metadata) == (9, {"content-type": "text/plain"}, {"a": "b"})
    assert len(bodies(tmp_path / "objects")) == 1
    with pytest.raises(NoSuchKey):
        service.head_object("bkt", "missing")
