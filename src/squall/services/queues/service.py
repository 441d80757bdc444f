"""The queue service: queues and their messages on SQLite, with SQS's visibility semantics.

Every change a client sees acknowledged (a send, a delete, a visibility change) is committed with
``synchronous=FULL`` first, and a message's visibility is a stored instant (``visible_at``), so a
restart finds messages that were in flight still hidden until their timeout ends.

A message is *visible* when ``visible_at <= now``; an invisible one that was never received is
*delayed*, one that was is *in flight*. Each receive gives the message a new random nonce; its receipt
handle names the queue incarnation, the message's row and that nonce.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from squall.errors import StoreUnavailable
from squall.services.queues import attributes as qattrs
from squall.services.queues import checksums, messages, receipts
from squall.services.queues.errors import (
    InvalidParameterValue,
    PurgeQueueInProgress,
    QueueDoesNotExist,
    QueueNameExists,
    ReceiptHandleIsInvalid,
)
from squall.services.queues.models import Counts, Outgoing, Queue, Received, Sent
from squall.stores.sqlite_file import open_durable, write_transaction

DEDUP_WINDOW_S = 300.0
PURGE_INTERVAL_S = 60.0
_SEQUENCE_BASE = 10**19
#: Rows one UPDATE or DELETE names (well below SQLite's limit of bound parameters).
_ROWS_PER_STATEMENT = 500

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS queues (
        id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, fifo INTEGER NOT NULL,
        attributes TEXT NOT NULL, tags TEXT NOT NULL, created REAL NOT NULL, modified REAL NOT NULL,
        purged REAL, counter INTEGER NOT NULL DEFAULT 0)""",
    """CREATE TABLE IF NOT EXISTS messages (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, queue_id INTEGER NOT NULL, message_id TEXT NOT NULL,
        body TEXT NOT NULL, attributes TEXT NOT NULL, system_attributes TEXT NOT NULL, sent REAL NOT NULL,
        visible_at REAL NOT NULL, receive_count INTEGER NOT NULL DEFAULT 0, first_receive REAL,
        receipt TEXT, group_id TEXT, dedup_id TEXT, sequence_number TEXT, sender_id TEXT NOT NULL,
        dlq_source TEXT)""",
    # Receives walk a queue's messages in order and skip the invisible ones within the index: an
    # index led by visible_at would make each receive sort every visible message of the queue.
    "CREATE INDEX IF NOT EXISTS messages_order ON messages (queue_id, seq, visible_at)",
    "DROP INDEX IF EXISTS messages_ready",
    "CREATE INDEX IF NOT EXISTS messages_age ON messages (queue_id, sent)",
    """CREATE TABLE IF NOT EXISTS dedup (
        queue_id INTEGER NOT NULL, key TEXT NOT NULL, message_id TEXT NOT NULL, sequence_number TEXT,
        expires REAL NOT NULL, PRIMARY KEY (queue_id, key))""",
]
_QUEUE_COLUMNS = "id, name, fifo, attributes, tags, created, modified, purged"
_MESSAGE_COLUMNS = (
    "seq, message_id, body, attributes, system_attributes, sent, receive_count, first_receive, "
    "group_id, dedup_id, sequence_number, sender_id, dlq_source, visible_at"
)


class QueueService:
    """Queues of one account and region, stored in ``path``."""

    def __init__(self, path: Path, account_id: str, region: str) -> None:
        self.account_id = account_id
        self.region = region
        self._lock = threading.Lock()
        self._listeners: list[Callable[[str], None]] = []
        self._conn = open_durable(path, _SCHEMA, "queue store")

    def _tx(self, durable: bool = True) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """A write transaction; ``durable=False`` for changes whose loss in a power cut only repeats
        a delivery (receives, deletes, visibility changes, expiry), which SQS's at-least-once allows."""
        return write_transaction(self._conn, self._lock, "Queue store", durable)

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """The connection for a read outside a transaction, with driver errors translated."""
        with self._lock:
            try:
                yield self._conn
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"Queue store failure: {exc}") from exc

    def add_listener(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(queue name)`` after a commit that may have made messages visible."""
        self._listeners.append(listener)

    def _notify(self, names: Sequence[str]) -> None:
        for name in dict.fromkeys(names):
            for listener in self._listeners:
                listener(name)

    def arn(self, name: str) -> str:
        return f"arn:aws:sqs:{self.region}:{self.account_id}:{name}"

    def name_of_arn(self, arn: str) -> str | None:
        parts = arn.split(":")
        if len(parts) != 6 or parts[2] != "sqs" or parts[4] != self.account_id:
            return None
        return parts[5]

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # --- queues -------------------------------------------------------------------------------------
    def kind_of(self, arn: str) -> bool | None:
        """Whether the queue at ``arn`` is FIFO; ``None`` when there is none."""
        name = self.name_of_arn(arn)
        if name is None:
            return None
        with self._read() as conn:
            row = conn.execute("SELECT fifo FROM queues WHERE name = ?", (name,)).fetchone()
        return None if row is None else bool(row[0])

    def create_queue(self, name: str, fifo: bool, given: dict[str, str], tags: dict[str, str]) -> Queue:
        """Create a queue, or return the existing one if every given attribute matches it."""
        now = time.time()
        with self._tx() as conn:
            row = conn.execute("SELECT name FROM queues WHERE name = ?", (name,)).fetchone()
            if row is not None:
                existing = self._queue(conn, name)
                current = {**existing.attributes, "FifoQueue": "true" if existing.fifo else "false"}
                for key, value in given.items():
                    if current.get(key, "") != value:
                        raise QueueNameExists(
                            f"A queue already exists with the same name and a different value for attribute {key}"
                        )
                return existing
            stored = {**qattrs.DEFAULTS, **(qattrs.FIFO_DEFAULTS if fifo else {}), **given}
            stored.pop("FifoQueue", None)
            if not stored.get("RedrivePolicy"):
                stored.pop("RedrivePolicy", None)
            conn.execute(
                "INSERT INTO queues (name, fifo, attributes, tags, created, modified) VALUES (?, ?, ?, ?, ?, ?)",
                (name, int(fifo), json.dumps(stored), json.dumps(tags), now, now),
            )
            return self._queue(conn, name)

    def delete_queue(self, name: str) -> None:
        with self._tx() as conn:
            queue = self._queue(conn, name)
            for table in ("messages", "dedup"):
                conn.execute(f"DELETE FROM {table} WHERE queue_id = ?", (queue.id,))
            conn.execute("DELETE FROM queues WHERE id = ?", (queue.id,))

    def queue(self, name: str) -> Queue:
        with self._read() as conn:
            return self._queue(conn, name)

    def _queue(self, conn: sqlite3.Connection, name: str) -> Queue:
        row = conn.execute(f"SELECT {_QUEUE_COLUMNS} FROM queues WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise QueueDoesNotExist()
        return _queue_of(row)

    def list_queues(self, prefix: str) -> list[str]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT name FROM queues WHERE substr(name, 1, ?) = ? ORDER BY name", (len(prefix), prefix)
            ).fetchall()
        return [r[0] for r in rows]

    def dead_letter_sources(self, name: str) -> list[str]:
        """Queues whose redrive policy targets ``name``."""
        target = self.arn(self.queue(name).name)
        with self._read() as conn:
            queues = [_queue_of(r) for r in conn.execute(f"SELECT {_QUEUE_COLUMNS} FROM queues")]
        return sorted(q.name for q in queues if (q.redrive() or ("", 0))[0] == target)

    def set_attributes(self, name: str, changes: dict[str, str]) -> None:
        with self._tx() as conn:
            queue = self._queue(conn, name)
            merged = {**queue.attributes, **changes}
            if not merged.get("RedrivePolicy"):
                merged.pop("RedrivePolicy", None)
            conn.execute(
                "UPDATE queues SET attributes = ?, modified = ? WHERE id = ?",
                (json.dumps(merged), time.time(), queue.id),
            )

    def change_tags(self, name: str, add: dict[str, str], remove: Sequence[str]) -> None:
        with self._tx() as conn:
            queue = self._queue(conn, name)
            tags = {k: v for k, v in {**queue.tags, **add}.items() if k not in remove}
            conn.execute("UPDATE queues SET tags = ? WHERE id = ?", (json.dumps(tags), queue.id))

    def purge(self, name: str) -> None:
        now = time.time()
        with self._tx() as conn:
            queue = self._queue(conn, name)
            if queue.purged is not None and now - queue.purged < PURGE_INTERVAL_S:
                raise PurgeQueueInProgress(
                    f"Only one PurgeQueue operation on {name} is allowed every {int(PURGE_INTERVAL_S)} seconds."
                )
            conn.execute("DELETE FROM messages WHERE queue_id = ? AND sent <= ?", (queue.id, now))
            conn.execute("UPDATE queues SET purged = ? WHERE id = ?", (now, queue.id))

    def counts(self, name: str) -> Counts:
        now = time.time()
        with self._tx(durable=False) as conn:
            queue = self._queue(conn, name)
            self._expire(conn, queue, now)
            row = conn.execute(
                "SELECT COALESCE(SUM(visible_at <= ?1), 0),"
                " COALESCE(SUM(visible_at > ?1 AND receive_count > 0), 0),"
                " COALESCE(SUM(visible_at > ?1 AND receive_count = 0), 0) FROM messages WHERE queue_id = ?2",
                (now, queue.id),
            ).fetchone()
        return Counts(visible=row[0], in_flight=row[1], delayed=row[2])

    def next_visible(self, name: str) -> float | None:
        """When the earliest hidden message of the queue becomes visible (epoch seconds), if any."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT MIN(m.visible_at) FROM messages m JOIN queues q ON q.id = m.queue_id"
                " WHERE q.name = ? AND m.visible_at > ?",
                (name, time.time()),
            ).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    @staticmethod
    def _expire(conn: sqlite3.Connection, queue: Queue, now: float) -> None:
        """Drop messages older than the retention period (counted from their first enqueue)."""
        conn.execute(
            "DELETE FROM messages WHERE queue_id = ? AND sent < ?",
            (queue.id, now - queue.number("MessageRetentionPeriod")),
        )

    # --- messages -----------------------------------------------------------------------------------
    def send(self, name: str, batch: Sequence[Outgoing], sender_id: str) -> list[Sent]:
        """Enqueue ``batch`` in one transaction; FIFO duplicates within the window are acknowledged, not stored."""
        now = time.time()
        results: list[Sent] = []
        with self._tx() as conn:
            queue = self._queue(conn, name)
            if queue.fifo:
                conn.execute("DELETE FROM dedup WHERE queue_id = ? AND expires < ?", (queue.id, now))
            for message in batch:
                md5_attrs = (
                    checksums.md5_of_attributes(messages.decoded(message.attributes)) if message.attributes else None
                )
                md5_system = (
                    checksums.md5_of_attributes(messages.decoded(message.system_attributes))
                    if message.system_attributes
                    else None
                )
                md5_body = checksums.md5_of_body(message.body)
                sequence_number = None
                if queue.fifo:
                    key = message.dedup_id or ""
                    if queue.attributes.get("DeduplicationScope") == "messageGroup":
                        key = f"{message.group_id}\n{key}"
                    seen = conn.execute(
                        "SELECT message_id, sequence_number FROM dedup WHERE queue_id = ? AND key = ?",
                        (queue.id, key),
                    ).fetchone()
                    if seen is not None:
                        results.append(Sent(seen[0], md5_body, md5_attrs, md5_system, seen[1]))
                        continue
                    counter = conn.execute(
                        "UPDATE queues SET counter = counter + 1 WHERE id = ? RETURNING counter", (queue.id,)
                    ).fetchone()[0]
                    sequence_number = str(_SEQUENCE_BASE + counter)
                message_id = str(uuid.uuid4())
                if queue.fifo:
                    conn.execute(
                        "INSERT INTO dedup VALUES (?, ?, ?, ?, ?)",
                        (queue.id, key, message_id, sequence_number, now + DEDUP_WINDOW_S),
                    )
                conn.execute(
                    "INSERT INTO messages (queue_id, message_id, body, attributes, system_attributes, sent,"
                    " visible_at, group_id, dedup_id, sequence_number, sender_id)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        queue.id,
                        message_id,
                        message.body,
                        json.dumps(message.attributes),
                        json.dumps(message.system_attributes),
                        now,
                        now + message.delay,
                        message.group_id,
                        message.dedup_id,
                        sequence_number,
                        sender_id,
                    ),
                )
                results.append(Sent(message_id, md5_body, md5_attrs, md5_system, sequence_number))
        self._notify([name])
        return results

    def receive(self, name: str, limit: int, visibility: int | None, max_bytes: int | None = None) -> list[Received]:
        """Hand out up to ``limit`` visible messages, hidden for ``visibility`` seconds (the queue's
        VisibilityTimeout by default). Messages received more often than the redrive policy allows
        move to the dead-letter queue instead. FIFO: in order per group, and never from a group that
        has a message in flight. With ``max_bytes``, no message is handed out that would take the
        bodies and attributes past that many bytes (the first always is): an event source mapping's
        6 MB batch is taken in one receive, without receiving what it would then have to give back."""
        now = time.time()
        moved_to: list[str] = []
        out: list[Received] = []
        with self._tx(durable=False) as conn:
            queue = self._queue(conn, name)
            self._expire(conn, queue, now)
            hide_for = queue.number("VisibilityTimeout") if visibility is None else visibility
            dlq = self._dead_letter_queue(conn, queue)
            blocked: set[str | None] = set()
            if queue.fifo:
                blocked = {
                    r[0]
                    for r in conn.execute(
                        "SELECT DISTINCT group_id FROM messages WHERE queue_id = ? AND visible_at > ?",
                        (queue.id, now),
                    )
                }
            after = 0
            taken = 0
            return_early = False
            # One nonce per receive: it tells this receive's handles from earlier ones, and the row
            # in each handle keeps them apart, so all rows are updated by one statement below.
            nonce = receipts.new_nonce()
            handed: list[int] = []
            while len(out) < limit and not return_early:
                rows = conn.execute(
                    f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE queue_id = ? AND visible_at <= ? AND seq > ?"
                    " ORDER BY seq LIMIT ?",
                    (queue.id, now, after, 100),
                ).fetchall()
                if not rows:
                    break
                after = rows[-1][0]
                for row in rows:
                    if len(out) >= limit:
                        break
                    seq, group, count = row[0], row[8], row[6]
                    if queue.fifo and group in blocked:
                        continue
                    if dlq is not None and count >= dlq[1]:
                        conn.execute(
                            "UPDATE messages SET queue_id = ?, visible_at = ?, receipt = NULL, dlq_source = ?"
                            " WHERE seq = ?",
                            (dlq[0].id, now, self.arn(queue.name), seq),
                        )
                        moved_to.append(dlq[0].name)
                        continue
                    if max_bytes is not None:
                        weight = len(row[2]) + len(row[3])  # body and attributes (JSON) as stored
                        if out and taken + weight > max_bytes:
                            return_early = True
                            break
                        taken += weight
                    first = row[7] if row[7] is not None else now
                    out.append(self._received(queue, row, nonce, first))
                    handed.append(seq)
            for start in range(0, len(handed), _ROWS_PER_STATEMENT):
                seqs = handed[start : start + _ROWS_PER_STATEMENT]
                conn.execute(
                    "UPDATE messages SET receive_count = receive_count + 1, first_receive = COALESCE(first_receive, ?),"
                    f" visible_at = ?, receipt = ? WHERE seq IN ({','.join('?' * len(seqs))})",
                    (now, now + hide_for, nonce, *seqs),
                )
        if moved_to:
            self._notify(moved_to)
        return out

    def _dead_letter_queue(self, conn: sqlite3.Connection, queue: Queue) -> tuple[Queue, int] | None:
        policy = queue.redrive()
        if policy is None:
            return None
        name = self.name_of_arn(policy[0])
        if name is None or name == queue.name:
            return None
        try:
            return self._queue(conn, name), policy[1]
        except QueueDoesNotExist:
            return None  # messages stay where they are until the dead-letter queue exists

    def _received(self, queue: Queue, row: Any, nonce: str, first: float) -> Received:
        return Received(
            message_id=str(row[1]),
            receipt_handle=receipts.encode(queue.id, row[0], nonce),
            body=str(row[2]),
            attributes=json.loads(str(row[3])),
            system_attributes=json.loads(str(row[4])),
            sent=row[5],
            receive_count=row[6] + 1,
            first_receive=first,
            group_id=row[8],
            dedup_id=row[9],
            sequence_number=row[10],
            sender_id=str(row[11]),
            dlq_source=row[12],
        )

    def _locate(self, conn: sqlite3.Connection, queue: Queue, handle: str) -> tuple[int, str, float] | None:
        """The row, current nonce and visibility of the message a receipt handle names; ``None`` if
        the message is gone. ReceiptHandleIsInvalid for a handle this queue never issued."""
        receipt = self._receipt_of(queue, handle)
        row = conn.execute(
            "SELECT receipt, visible_at FROM messages WHERE seq = ? AND queue_id = ?", (receipt.row, queue.id)
        ).fetchone()
        if row is None:
            return None
        if queue.fifo and (row[0] != receipt.nonce or row[1] <= time.time()):
            raise InvalidParameterValue(
                f"Value {handle} for parameter ReceiptHandle is invalid. Reason: The receipt handle has expired."
            )
        return receipt.row, str(row[0]), float(row[1])

    @staticmethod
    def _receipt_of(queue: Queue, handle: str) -> receipts.Receipt:
        """A handle of ``queue``, decoded; ReceiptHandleIsInvalid for any other handle."""
        receipt = receipts.decode(handle)
        if receipt.queue_id != queue.id:
            raise receipts.invalid(handle)
        return receipt

    def delete(self, name: str, handles: Sequence[str]) -> list[Exception | None]:
        """Delete the messages the handles name (one result per handle: ``None`` or its error).
        A handle of a message already deleted succeeds, as in SQS."""
        results: list[Exception | None] = []
        with self._tx(durable=False) as conn:
            queue = self._queue(conn, name)
            if not queue.fifo:
                # Any handle this queue issued deletes its message, however old the receive: no
                # need to read the rows first.
                rows: list[int] = []
                for handle in handles:
                    try:
                        rows.append(self._receipt_of(queue, handle).row)
                        results.append(None)
                    except ReceiptHandleIsInvalid as exc:
                        results.append(exc)
                for start in range(0, len(rows), _ROWS_PER_STATEMENT):
                    chunk = rows[start : start + _ROWS_PER_STATEMENT]
                    # ``+queue_id``: look the rows up by seq, not through an index on the queue.
                    conn.execute(
                        f"DELETE FROM messages WHERE +queue_id = ? AND seq IN ({','.join('?' * len(chunk))})",
                        (queue.id, *chunk),
                    )
                return results
            for handle in handles:
                try:
                    found = self._locate(conn, queue, handle)
                except (ReceiptHandleIsInvalid, InvalidParameterValue) as exc:
                    results.append(exc)
                    continue
                if found is not None:
                    conn.execute("DELETE FROM messages WHERE seq = ?", (found[0],))
                results.append(None)
        return results

    def change_visibility(self, name: str, changes: Sequence[tuple[str, int]]) -> list[Exception | None]:
        """Hide the messages ``(handle, seconds)`` name for that long from now (0: visible at once)."""
        now = time.time()
        results: list[Exception | None] = []
        with self._tx(durable=False) as conn:
            queue = self._queue(conn, name)
            for handle, seconds in changes:
                try:
                    found = self._locate(conn, queue, handle)
                except (ReceiptHandleIsInvalid, InvalidParameterValue) as exc:
                    results.append(exc)
                    continue
                if found is None:
                    # unverified: SQS's answer for the handle of a message that was deleted
                    results.append(receipts.invalid(handle))
                    continue
                conn.execute("UPDATE messages SET visible_at = ? WHERE seq = ?", (now + seconds, found[0]))
                results.append(None)
        self._notify([name])
        return results


def _queue_of(row: Any) -> Queue:
    return Queue(
        id=row[0],
        name=row[1],
        fifo=bool(row[2]),
        attributes=json.loads(row[3]),
        tags=json.loads(row[4]),
        created=row[5],
        modified=row[6],
        purged=row[7],
    )
