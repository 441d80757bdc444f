"""Ranges (``Range: bytes=...``) and conditional requests (``If-Match``...) as S3 evaluates them."""

from __future__ import annotations

import re
from collections.abc import Mapping

from squall.services.buckets.errors import InvalidRange, PreconditionFailed
from squall.services.buckets.xmlwire import parse_http_date

_RANGE_RE = re.compile(r"bytes=(\d*)-(\d*)")


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive (first, last) bytes a ``Range`` header asks for; ``None`` for the whole object
    (no header, or one S3 ignores: malformed or several ranges). InvalidRange when unsatisfiable."""
    if header is None:
        return None
    match = _RANGE_RE.fullmatch(header.strip())
    if match is None or match.group(1) == match.group(2) == "":
        return None
    first_text, last_text = match.groups()
    if first_text == "":
        length = int(last_text)
        if length == 0 or size == 0:
            raise InvalidRange(RangeRequested=header, ActualObjectSize=str(size))
        return max(size - length, 0), size - 1
    first = int(first_text)
    last = int(last_text) if last_text else size - 1
    if last_text and last < first:
        return None  # a syntactically invalid range is ignored
    if first >= size:
        raise InvalidRange(RangeRequested=header, ActualObjectSize=str(size))
    return first, min(last, size - 1)


def _etag_matches(condition: str, etag: str) -> bool:
    bare = etag.strip('"')
    return any(tag.strip() in ("*", bare, f'"{bare}"') for tag in condition.split(","))


def evaluate(headers: Mapping[str, str], etag: str, modified: float, prefix: str = "if-") -> bool:
    """Check a GET/HEAD's preconditions (``prefix`` ``x-amz-copy-source-if-`` for a copy source):
    PreconditionFailed (412) when If-Match or If-Unmodified-Since fails; ``False`` when the answer
    must be 304 Not Modified (If-None-Match or If-Modified-Since); ``True`` to go on."""
    seconds = int(modified)
    if_match = headers.get(prefix + "match")
    if_unmodified = headers.get(prefix + "unmodified-since")
    if if_match is not None:
        if not _etag_matches(if_match, etag):
            raise PreconditionFailed(Condition="If-Match")
    elif if_unmodified is not None:
        limit = parse_http_date(if_unmodified)
        if limit is not None and seconds > limit:
            raise PreconditionFailed(Condition="If-Unmodified-Since")
    if_none_match = headers.get(prefix + "none-match")
    if_modified = headers.get(prefix + "modified-since")
    if if_none_match is not None:
        return not _etag_matches(if_none_match, etag)
    if if_modified is not None:
        since = parse_http_date(if_modified)
        if since is not None and seconds <= since:
            return False
    return True
