"""How the metadata stores encode models and decode their rows, shared by the SQLite and PostgreSQL stores.

Both stores keep the same columns; only their SQL dialects differ, so the column lists, the JSON
codecs, the row decoders and the queries whose SQL both dialects take live here once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from squall.errors import StoreUnavailable
from squall.models import Alias, AsyncEvent, FunctionConfig, LogEvent, UsageRecord

USAGE_COLUMNS = (
    "function_name, version, request_id, start, duration_ms, billed_ms, memory_mb, gb_seconds,"
    " max_memory_mb, cold, init_ms, outcome, trigger, architecture"
)
EVENT_COLUMNS = "id, request_id, function_name, qualifier, payload, enqueued_at, attempts, not_before"

encode = msgspec.json.Encoder().encode
_decode_config = msgspec.json.Decoder(FunctionConfig).decode
_decode_alias = msgspec.json.Decoder(Alias).decode


def config(text: str) -> FunctionConfig:
    """A stored function configuration; an unreadable one means the store is damaged."""
    try:
        return _decode_config(text)
    except msgspec.MsgspecError as exc:
        raise StoreUnavailable(f"Metadata store holds an unreadable function configuration: {exc}") from exc


def alias(text: str) -> Alias:
    """A stored alias."""
    try:
        return _decode_alias(text)
    except msgspec.MsgspecError as exc:
        raise StoreUnavailable(f"Metadata store holds an unreadable alias: {exc}") from exc


def event(row: tuple[Any, ...]) -> AsyncEvent:
    """An async event from a row of ``EVENT_COLUMNS``."""
    return AsyncEvent(
        id=int(row[0]),
        request_id=row[1],
        function_name=row[2],
        qualifier=row[3],
        payload=bytes(row[4]),
        enqueued_at=row[5],
        attempts=row[6],
        not_before=row[7],
    )


def usage(row: tuple[Any, ...]) -> UsageRecord:
    """A usage record from a row of ``USAGE_COLUMNS``."""
    return UsageRecord(
        function_name=row[0],
        version=row[1],
        request_id=row[2],
        start=row[3],
        duration_ms=row[4],
        billed_ms=int(row[5]),
        memory_mb=row[6],
        gb_seconds=row[7],
        max_memory_mb=row[8],
        cold=bool(row[9]),
        init_ms=row[10],
        outcome=row[11],
        trigger=row[12],
        architecture=row[13],
    )


def usage_row(record: UsageRecord) -> tuple[Any, ...]:
    """A usage record as a row of ``USAGE_COLUMNS``."""
    r = record
    return (r.function_name, r.version, r.request_id, r.start, r.duration_ms, r.billed_ms, r.memory_mb,
            r.gb_seconds, r.max_memory_mb, r.cold, r.init_ms, r.outcome, r.trigger, r.architecture)  # fmt: skip


# --- queries both stores run, written once with ``?`` placeholders ------------------------------------
def usage_query(since: float, until: float | None, function_name: str | None) -> tuple[str, list[Any]]:
    """The usage records with ``since <= start < until`` (of one function), oldest first."""
    sql = f"SELECT {USAGE_COLUMNS} FROM usage WHERE start >= ?"
    params: list[Any] = [since]
    for clause, value in (("start < ?", until), ("function_name = ?", function_name)):
        if value is not None:
            sql += f" AND {clause}"
            params.append(value)
    return sql + " ORDER BY start, id", params


def log_range_query(
    group: str,
    streams: Sequence[str] | None,
    start_ms: int | None,
    end_ms: int | None,
    after_id: int,
    before_id: int | None,
    limit: int,
    newest_first: bool,
) -> tuple[str, list[Any]] | None:
    """A log group's lines (id, stream, timestamp, message) in id order; None when ``streams`` is empty."""
    sql = "SELECT id, stream, timestamp, message FROM log_events WHERE log_group = ? AND id > ?"
    params: list[Any] = [group, after_id]
    if streams is not None:
        if not streams:
            return None
        sql += f" AND stream IN ({', '.join('?' * len(streams))})"
        params.extend(streams)
    for clause, value in (("id < ?", before_id), ("timestamp >= ?", start_ms), ("timestamp < ?", end_ms)):
        if value is not None:
            sql += f" AND {clause}"
            params.append(value)
    params.append(max(limit, 0))
    return sql + f" ORDER BY id {'DESC' if newest_first else 'ASC'} LIMIT ?", params


def log_line(row: tuple[Any, ...]) -> tuple[int, str, LogEvent]:
    return int(row[0]), row[1], LogEvent(timestamp=int(row[2]), message=row[3])
