"""Ranges and conditional headers as S3 evaluates them."""

from __future__ import annotations

import pytest

from squall.services.buckets.conditions import byte_range, evaluate
from squall.services.buckets.errors import InvalidRange, PreconditionFailed

ETAG = '"abc"'
MODIFIED = 1_700_000_000.7  # Tue, 14 Nov 2023 22:13:20 GMT (and 0.7 s)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-0", (0, 0)),
        ("bytes=5-", (5, 9)),
        ("bytes=-3", (7, 9)),
        ("bytes=-30", (0, 9)),
        ("bytes=8-100", (8, 9)),
        ("bytes=5-2", None),
        ("bytes=0-1,3-4", None),
        ("items=0-1", None),
    ],
)
def test_byte_range(header: str | None, expected: tuple[int, int] | None) -> None:
    assert byte_range(header, 10) == expected


@pytest.mark.parametrize(("header", "size"), [("bytes=10-", 10), ("bytes=0-", 0), ("bytes=-0", 10), ("bytes=-1", 0)])
def test_unsatisfiable_ranges(header: str, size: int) -> None:
    with pytest.raises(InvalidRange) as info:
        byte_range(header, size)
    assert info.value.extra == {"RangeRequested": header, "ActualObjectSize": str(size)}


def test_preconditions() -> None:
    assert evaluate({}, ETAG, MODIFIED) is True
    assert evaluate({"if-match": "abc"}, ETAG, MODIFIED) is True
    assert evaluate({"if-match": '"x", "abc"'}, ETAG, MODIFIED) is True
    assert evaluate({"if-match": "*"}, ETAG, MODIFIED) is True
    with pytest.raises(PreconditionFailed):
        evaluate({"if-match": '"x"'}, ETAG, MODIFIED)
    with pytest.raises(PreconditionFailed):
        evaluate({"if-unmodified-since": "Tue, 14 Nov 2023 22:13:19 GMT"}, ETAG, MODIFIED)
    # Last-Modified has whole seconds: the same second is "not modified since".
    assert evaluate({"if-unmodified-since": "Tue, 14 Nov 2023 22:13:20 GMT"}, ETAG, MODIFIED) is True
    assert evaluate({"if-modified-since": "Tue, 14 Nov 2023 22:13:20 GMT"}, ETAG, MODIFIED) is False
    assert evaluate({"if-modified-since": "Tue, 14 Nov 2023 22:13:19 GMT"}, ETAG, MODIFIED) is True
    assert evaluate({"if-none-match": ETAG}, ETAG, MODIFIED) is False
    # If-None-Match decides alone when present; an If-Match that holds overrides If-Unmodified-Since.
    assert evaluate({"if-none-match": '"x"', "if-modified-since": "Wed, 15 Nov 2023 00:00:00 GMT"}, ETAG, MODIFIED)
    assert evaluate({"if-match": ETAG, "if-unmodified-since": "Mon, 13 Nov 2023 00:00:00 GMT"}, ETAG, MODIFIED)
    # A date that is not an HTTP date is ignored.
    assert evaluate({"if-modified-since": "yesterday"}, ETAG, MODIFIED) is True
