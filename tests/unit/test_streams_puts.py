"""PutRecords' fast path (services/streams/puts.py) against the general path it stands in for: the same
result for every request it takes, and it takes no request the general path would refuse."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from squall.errors import SquallError
from squall.services.streams import puts, shards
from squall.services.streams.api import KinesisApi, _params
from squall.services.streams.service import StreamService
from tests.unit.stream_stores import StreamServices


@pytest.fixture
def apis(tmp_path: Path) -> Iterator[tuple[KinesisApi, KinesisApi]]:
    """Two services with the same 4-shard stream: one answers by the fast path, one by the general."""
    services = [StreamService(tmp_path / f"{n}.db", "000000000000", "us-east-1") for n in ("fast", "general")]
    for service in services:
        service.create_stream("s", 4, "PROVISIONED", {})
    yield KinesisApi(services[0]), KinesisApi(services[1])
    for service in services:
        service.close()


def body(records: list[dict[str, Any]], **extra: Any) -> bytes:
    return json.dumps({"StreamName": "s", "Records": records, **extra}).encode()


def record(data: bytes = b"x", key: str = "k", **extra: Any) -> dict[str, Any]:
    return {"Data": base64.b64encode(data).decode(), "PartitionKey": key, **extra}


def stored(api: KinesisApi) -> list[tuple[str, int, str, bytes]]:
    rows = []
    for shard in api.service.shards("s"):
        records, _ = api.service.read("s", shard.shard_id, 0, 10_000)
        rows += [(shard.shard_id, r.seq, r.partition_key, r.data) for r in records]
    return sorted(rows)


def outcome(call: Any, *args: Any) -> tuple[str, Any]:
    try:
        result = call(*args)
    except SquallError as exc:
        return "error", (exc.code, exc.status, exc.message)
    return "ok", json.loads(result) if isinstance(result, bytes) else result


VALID = [
    body([record(b"hello", "a")]),
    body([record(bytes(range(256)), f"key-{i}") for i in range(500)]),
    body([record(b"", "empty data")]),
    body([record(b"z", "x" * 256)]),
    body([record(b"e", "explicit", ExplicitHashKey=str(2**128 - 1)), record(b"f", "zero", ExplicitHashKey="0")]),
    body([record(b"\xff" * 10, "\u00e9t\u00e9 \U0001f600")]),
    json.dumps({"StreamARN": "arn:aws:kinesis:us-east-1:000000000000:stream/s", "Records": [record()]}).encode(),
    body([record(b"a" * puts.MAX_RECORD_BYTES, "big")]),
]


@pytest.mark.parametrize("request_body", VALID, ids=range(len(VALID)))
def test_the_fast_path_answers_what_the_general_path_answers(
    apis: tuple[KinesisApi, KinesisApi], request_body: bytes
) -> None:
    fast, general = apis
    assert puts.decode(request_body) is not None
    fast_answer = fast.put_records_body(request_body)
    assert isinstance(fast_answer, bytes)  # it did take the fast path
    assert json.loads(fast_answer) == general.put_records(json.loads(request_body))
    assert stored(fast) == stored(general)


REFUSED = [
    b"not json",
    b"[]",
    body([]),
    body([record(key=f"k{i}") for i in range(501)]),
    body([record(key="")]),
    body([record(key="x" * 257)]),
    body([{"Data": base64.b64encode(b"x").decode()}]),
    body([{"Data": "not base64!", "PartitionKey": "k"}]),
    body([{"Data": "eHg", "PartitionKey": "k"}]),
    body([record(ExplicitHashKey=str(2**128))]),
    body([record(ExplicitHashKey="-1")]),
    body([record(ExplicitHashKey="12a")]),
    body([record(b"a" * (puts.MAX_RECORD_BYTES + 1))]),
    body([record(b"a" * (puts.MAX_RECORD_BYTES - 1), f"k{i}") for i in range(6)]),
    body([record()], StreamName="bad name!"),
    json.dumps({"Records": [record()]}).encode(),
    body([record()], StreamName="missing"),
]


@pytest.mark.parametrize("request_body", REFUSED, ids=range(len(REFUSED)))
def test_requests_the_general_path_refuses_get_its_exact_error(
    apis: tuple[KinesisApi, KinesisApi], request_body: bytes
) -> None:
    fast, general = apis
    assert outcome(fast.put_records_body, request_body) == outcome(lambda: general.put_records(_params(request_body)))
    assert outcome(fast.put_records_body, request_body)[0] == "error"
    assert stored(fast) == stored(general) == []


def test_the_fast_path_declines_every_limit_crossed() -> None:
    for refused in REFUSED[:14]:
        assert puts.decode(refused) is None
    # A lone surrogate cannot be UTF-8 encoded to count its bytes: left to the general path.
    assert puts.decode(b'{"StreamName": "s", "Records": [{"Data": "", "PartitionKey": "\\ud800"}]}') is None
    # The 5 MB total counts partition keys too: exactly at the limit is still fine.
    per_record = puts.MAX_PUT_RECORDS_BYTES // 5
    at_limit = body([record(b"a" * (per_record - 2), f"k{i}") for i in range(5)])
    assert puts.decode(at_limit) is not None
    over = body([record(b"a" * (per_record - 1), f"k{i}") for i in range(5)])
    assert puts.decode(over) is None


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_ \n", max_size=14))
def test_base64_the_fast_path_takes_decodes_as_the_general_path_does(data: str) -> None:
    request = puts.decode(body([{"Data": data, "PartitionKey": "k"}]))
    if request is None:
        return
    assert request.Records[0].Data == base64.b64decode(data, validate=True)


def test_records_land_in_the_shard_whose_range_holds_their_hash_key(stream_services: StreamServices) -> None:
    service = stream_services.open()
    service.create_stream("s", 3, "PROVISIONED", {})
    ranges = shards.even_ranges(3)
    edges = [key for start, end in ranges for key in (start, end)]
    placed = service.put("s", [("k", b"x", str(key)) for key in edges])
    assert [shard for shard, _ in placed] == [shards.shard_id(i // 2) for i in range(6)]
    assert [counter for _, counter in placed] == list(range(1, 7))
    # Keys by MD5, and after a split the new records go to the open children only.
    start, end = ranges[0]
    service.reshard(
        "s", [shards.shard_id(0)], [(start, 99, shards.shard_id(0), None), (100, end, shards.shard_id(0), None)]
    )
    placed = service.put("s", [("k", b"x", "99"), ("k", b"x", "100"), ("a", b"x", None)])
    md5_a = shards.hash_key("a")
    expected_a = next(
        s.shard_id for s in service.shards("s") if s.end_seq is None and s.start_key <= md5_a <= s.end_key
    )
    assert placed == [(shards.shard_id(3), 7), (shards.shard_id(4), 8), (expected_a, 9)]


def test_the_response_is_kinesis_shape() -> None:
    encoded = json.loads(puts.encode_response([("shardId-000000000001", 5)]))
    assert encoded == {
        "FailedRecordCount": 0,
        "Records": [{"SequenceNumber": shards.sequence_number(5), "ShardId": "shardId-000000000001"}],
        "EncryptionType": "NONE",
    }
