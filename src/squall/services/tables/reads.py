"""Query and Scan: the SQL that walks a table or an index in key order, and a page of its items.

A Query walks one partition key in sort key order; a Scan walks items in the order of a 32-bit hash of
the partition key (``h``), which is also how Segment/TotalSegments divide a table. A page is read in
chunks of at most ``CHUNK`` rows, each chunk starting after the last row of the one before (by the
columns the walk is ordered by), so a database that hands over a whole result at once (PostgreSQL)
never reads more of a large table than the page needs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from squall.services.tables import schema
from squall.services.tables.errors import Validation
from squall.services.tables.evaluator import matches, project
from squall.services.tables.expressions import Condition
from squall.services.tables.expressions import Path as DocPath
from squall.services.tables.schema import IndexDef, TableDef
from squall.services.tables.types import Item, Value, encode_key

MAX_PAGE_BYTES = 1024 * 1024
HASH_SPACE = 1 << 32
#: Rows asked of the database at a time while filling a page.
CHUNK = 1000
#: Runs one read statement: its rows (``SqlDatabase.query``).
Query = Callable[[str, Sequence[Any]], list[Any]]


@dataclass
class RangeCondition:
    """The range-key part of a key condition: ``op`` is a comparator, BETWEEN or begins_with."""

    op: str
    values: list[Value]


@dataclass
class ReadSpec:
    """A Query (``hash_value`` set) or Scan over a table or one of its indexes."""

    table: str
    index: str | None = None
    hash_value: Value | None = None
    range_condition: RangeCondition | None = None
    forward: bool = True
    limit: int | None = None
    start_key: Item | None = None
    filter: Condition | None = None
    segment: int | None = None
    total_segments: int | None = None


@dataclass
class ReadResult:
    items: list[Item]
    scanned: int
    last_key: Item | None


def hash_of(pk: bytes) -> int:
    return int.from_bytes(hashlib.md5(pk, usedforsecurity=False).digest()[:4], "big")


def key_bytes(table: TableDef, key: Item) -> tuple[bytes, bytes]:
    """The partition and sort key bytes of an item's key (the sort key's empty without a range key)."""
    pk = encode_key(key[table.hash.name])
    sk = encode_key(key[table.range.name]) if table.range is not None else b""
    return pk, sk


@dataclass
class _Walk:
    """The SQL of one Query or Scan: its rows, its fixed conditions, the columns it is ordered by."""

    source: str
    args: list[Any]
    order: list[str]
    direction: str
    start: list[Any] | None

    def chunk(self, start: list[Any] | None, limit: int) -> tuple[str, list[Any]]:
        """The SQL of ``limit`` rows (item, size) after ``start``."""
        where, args = self.source, list(self.args)
        if start is not None:
            comparison = ">" if self.direction == "ASC" else "<"
            where += f" AND ({', '.join(self.order)}) {comparison} ({', '.join('?' * len(self.order))})"
            args.extend(start)
        order = ", ".join(f"{c} {self.direction}" for c in self.order)
        return f"{where} ORDER BY {order} LIMIT ?", [*args, limit]


def page(query: Query, table: TableDef, index: IndexDef | None, spec: ReadSpec) -> ReadResult:
    """A page of a Query or Scan: items (index projection and filter applied), scanned count, last key."""
    walk = _walk(table, index, spec)
    items: list[Item] = []
    scanned = 0
    read_bytes = 0
    key_names = list(table.key_names()) + [
        n for n in (index.key_names() if index else ()) if n not in table.key_names()
    ]
    start = walk.start
    while True:
        limit = CHUNK if spec.limit is None else min(CHUNK, spec.limit - scanned)
        rows = query(*walk.chunk(start, limit))
        stored: Item = {}
        for text, size in rows:
            stored = json.loads(text)
            scanned += 1
            read_bytes += size
            item = _index_projection(index, table, stored) if index is not None else stored
            if spec.filter is None or matches(spec.filter, item):
                items.append(item)
            if (spec.limit is not None and scanned >= spec.limit) or read_bytes >= MAX_PAGE_BYTES:
                return ReadResult(items, scanned, {n: item[n] for n in key_names})
        if len(rows) < limit:
            return ReadResult(items, scanned, None)
        position = _position(table, index, stored)
        start = position[len(position) - len(walk.order) :]  # a Query's hash columns are fixed


def _walk(table: TableDef, index: IndexDef | None, spec: ReadSpec) -> _Walk:
    if index is None:
        source = "SELECT t.item, t.size FROM items t WHERE t.tbl = ?"
        hash_col, sort_cols = "t.pk", ["t.sk"]
        args: list[Any] = [table.name]
    else:
        source = (
            "SELECT t.item, t.size FROM index_items i JOIN items t ON t.tbl = i.tbl AND t.pk = i.pk "
            "AND t.sk = i.sk WHERE i.tbl = ? AND i.idx = ?"
        )
        hash_col, sort_cols = "i.ipk", ["i.isk", "i.pk", "i.sk"]
        args = [table.name, index.name]
    start = _start_columns(table, index, spec.start_key) if spec.start_key is not None else None
    if spec.hash_value is not None:
        source += f" AND {hash_col} = ?"
        args.append(encode_key(spec.hash_value))
        if spec.range_condition is not None:
            clause, values = _range_sql(sort_cols[0], spec.range_condition)
            source += f" AND {clause}"
            args.extend(values)
        order = sort_cols
        if start is not None:
            # The hash (and, on a table, the partition key) is fixed by the query.
            start = start[2:]
    else:
        h_col = "i.h" if index is not None else "t.h"
        order = [h_col, hash_col, *sort_cols]
        if spec.total_segments:
            assert spec.segment is not None
            source += f" AND {h_col} >= ? AND {h_col} < ?"
            args += [
                spec.segment * HASH_SPACE // spec.total_segments,
                (spec.segment + 1) * HASH_SPACE // spec.total_segments,
            ]
    return _Walk(source, args, order, "ASC" if spec.forward else "DESC", start)


def _start_columns(table: TableDef, index: IndexDef | None, start: Item) -> list[Any]:
    """The sort columns (hash first) of ExclusiveStartKey, in the order the read walks."""
    names = set(table.key_names()) | (set(index.key_names()) if index else set())
    problem = "The provided starting key is invalid: The provided key element does not match the schema"
    if set(start) != names:
        raise Validation(problem)
    try:
        schema.check_key(table, {n: start[n] for n in table.key_names()})
    except Validation:
        raise Validation(problem) from None
    if index is not None and schema.index_key_problem(index, start) is not None:
        raise Validation(problem)
    return _position(table, index, start)


def _position(table: TableDef, index: IndexDef | None, item: Item) -> list[Any]:
    """Where an item (or a start key) stands in a walk: its sort columns, hash first."""
    pk, sk = key_bytes(table, item)
    if index is None:
        return [hash_of(pk), pk, sk]
    ipk = encode_key(item[index.hash.name])
    isk = encode_key(item[index.range.name]) if index.range is not None else b""
    return [hash_of(ipk), ipk, isk, pk, sk]


def _range_sql(column: str, condition: RangeCondition) -> tuple[str, list[Any]]:
    values = [encode_key(v) for v in condition.values]
    if condition.op == "BETWEEN":
        return f"{column} BETWEEN ? AND ?", values
    if condition.op == "begins_with":
        # The keys with a prefix are the range from it to the next prefix of its length.
        prefix = values[0]
        end = _after_prefix(prefix)
        if end is None:
            return f"{column} >= ?", [prefix]
        return f"{column} >= ? AND {column} < ?", [prefix, end]
    return f"{column} {condition.op} ?", values


def _after_prefix(prefix: bytes) -> bytes | None:
    """The least byte string greater than every string starting with ``prefix`` (None: there is none)."""
    stem = prefix.rstrip(b"\xff")
    if not stem:
        return None
    return stem[:-1] + bytes([stem[-1] + 1])


def _index_projection(index: IndexDef, table: TableDef, item: Item) -> Item:
    kind = index.projection.get("ProjectionType", "ALL")
    if kind == "ALL":
        return item
    keep = set(table.key_names()) | set(index.key_names())
    if kind == "INCLUDE":
        keep |= set(index.projection.get("NonKeyAttributes") or [])
    return project(item, [DocPath((name,)) for name in keep])
