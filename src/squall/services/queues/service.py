"""The queue service: queues and their messages, with SQS's visibility semantics.

The rows live in a ``QueueStore``: a SQLite file (embedded tier) or PostgreSQL shared by several
servers (scale-out tier); the SQL and the logic here are the same for both. Every change a client sees
acknowledged (a send, a delete, a visibility change) is committed first, and a message's visibility
is a stored instant (``visible_at``), so a restart (or another server) finds messages that were in
flight still hidden until their timeout ends.

A message is *visible* when ``visible_at <= now``; an invisible one that was never received is
*delayed*, one that was is *in flight*. Each receive gives the message a new random nonce; its receipt
handle names the queue incarnation, the message's row and that nonce.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import msgspec

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
from squall.services.queues.store import QueueStore, SqliteQueueStore
from squall.stores.sql import Connection

DEDUP_WINDOW_S = 300.0
PURGE_INTERVAL_S = 60.0
_SEQUENCE_BASE = 10**19
#: Rows one UPDATE or DELETE names (well below SQLite's limit of bound parameters).
_ROWS_PER_STATEMENT = 500
#: Messages a receive reads at a time while it looks for ones it may hand out.
_PAGE = 100
#: A message's attributes to and from their stored JSON (msgspec: several times faster than ``json`` per message).
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode

_QUEUE_COLUMNS = "id, name, fifo, attributes, tags, created, modified, purged"
_MESSAGE_COLUMNS = (
    "seq, message_id, body, attributes, system_attributes, sent, receive_count, first_receive, "
    "group_id, dedup_id, sequence_number, sender_id, dlq_source, visible_at"
)


class QueueService:
    """Queues of one account and region, stored in ``store`` (a path: a SQLite file of its own)."""

    def __init__(self, store: Path | QueueStore, account_id: str, region: str) -> None:
        self.account_id = account_id
        self.region = region
        self.db = SqliteQueueStore(store) if isinstance(store, Path) else store
        self._listeners: list[Callable[[str], None]] = []

    def _tx(self, durable: bool = True) -> AbstractContextManager[Connection]:
        """A write transaction; ``durable=False`` for changes whose loss in a power cut only repeats
        a delivery (receives, deletes, visibility changes, expiry), which SQS's at-least-once allows."""
        return self.db.write(durable)

    def add_listener(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(queue name)`` after a commit that may have made messages visible: this
        service's own (from the committing thread) and, on a shared store, other servers' (from a
        thread of the store's)."""
        if not self._listeners:
            self.db.watch(self._heard)
        self._listeners.append(listener)

    def _heard(self, name: str) -> None:
        # No resync: sends missed while not listening wait only until long polls end and idle pollers look.
        for listener in self._listeners:
            listener(name)

    def _announce(self, conn: Connection, names: Sequence[str]) -> None:
        """Inside a write transaction: tell the other servers of the store once it commits."""
        for name in dict.fromkeys(names):
            self.db.notify(conn, name)

    def _notify(self, names: Sequence[str]) -> None:
        for name in dict.fromkeys(names):
            self._heard(name)

    def arn(self, name: str) -> str:
        return f"arn:aws:sqs:{self.region}:{self.account_id}:{name}"

    def name_of_arn(self, arn: str) -> str | None:
        parts = arn.split(":")
        if len(parts) != 6 or parts[2] != "sqs" or parts[4] != self.account_id:
            return None
        return parts[5]

    def close(self) -> None:
        self.db.close()

    # --- queues -------------------------------------------------------------------------------------
    def kind_of(self, arn: str) -> bool | None:
        """Whether the queue at ``arn`` is FIFO; ``None`` when there is none."""
        name = self.name_of_arn(arn)
        if name is None:
            return None
        with self.db.read() as conn:
            row = conn.execute("SELECT fifo FROM queues WHERE name = ?", (name,)).fetchone()
        return None if row is None else bool(row[0])

    def create_queue(self, name: str, fifo: bool, given: dict[str, str], tags: dict[str, str]) -> Queue:
        """Create a queue, or return the existing one if every given attribute matches it."""
        now = time.time()
        stored = {**qattrs.DEFAULTS, **(qattrs.FIFO_DEFAULTS if fifo else {}), **given}
        stored.pop("FifoQueue", None)
        if not stored.get("RedrivePolicy"):
            stored.pop("RedrivePolicy", None)
        with self._tx() as conn:
            # ON CONFLICT: a server creating the same queue at the same moment made it first.
            created = conn.execute(
                "INSERT INTO queues (name, fifo, attributes, tags, created, modified) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (name) DO NOTHING",
                (name, int(fifo), json.dumps(stored), json.dumps(tags), now, now),
            ).rowcount
            existing = self._queue(conn, name)
            if created:
                return existing
            current = {**existing.attributes, "FifoQueue": "true" if existing.fifo else "false"}
            for key, value in given.items():
                if current.get(key, "") != value:
                    raise QueueNameExists(
                        f"A queue already exists with the same name and a different value for attribute {key}"
                    )
            return existing

    def delete_queue(self, name: str) -> None:
        with self._tx() as conn:
            queue = self._queue(conn, name)
            for table in ("messages", "dedup"):
                conn.execute(f"DELETE FROM {table} WHERE queue_id = ?", (queue.id,))
            conn.execute("DELETE FROM queues WHERE id = ?", (queue.id,))

    def queue(self, name: str) -> Queue:
        with self.db.read() as conn:
            return self._queue(conn, name)

    def _queue(self, conn: Connection, name: str, lock: bool = False) -> Queue:
        """The queue ``name``; with ``lock``, its row stays locked until the transaction ends (a FIFO
        queue's sends and receives take it, so that one server at a time orders its messages)."""
        suffix = self.db.for_update if lock else ""
        row = conn.execute(f"SELECT {_QUEUE_COLUMNS} FROM queues WHERE name = ?{suffix}", (name,)).fetchone()
        if row is None:
            raise QueueDoesNotExist()
        return _queue_of(row)

    def list_queues(self, prefix: str) -> list[str]:
        with self.db.read() as conn:
            rows = conn.execute(
                "SELECT name FROM queues WHERE substr(name, 1, ?) = ? ORDER BY name", (len(prefix), prefix)
            ).fetchall()
        return [r[0] for r in rows]

    def dead_letter_sources(self, name: str) -> list[str]:
        """Queues whose redrive policy targets ``name``."""
        target = self.arn(self.queue(name).name)
        with self.db.read() as conn:
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
        """The queue's messages by state. Counted in a read transaction, which does not hold up the
        queue's consumers, unless messages past the retention period have to be dropped first."""
        now = time.time()
        with self.db.read() as conn:
            queue = self._queue(conn, name)
            if not self._has_expired(conn, queue, now):
                return self._count(conn, queue, now)
        with self._tx(durable=False) as conn:
            queue = self._queue(conn, name)
            self._expire(conn, queue, now)
            return self._count(conn, queue, now)

    @staticmethod
    def _count(conn: Connection, queue: Queue, now: float) -> Counts:
        row = conn.execute(
            "SELECT COALESCE(SUM(CASE WHEN visible_at <= ? THEN 1 ELSE 0 END), 0),"
            " COALESCE(SUM(CASE WHEN visible_at > ? AND receive_count > 0 THEN 1 ELSE 0 END), 0),"
            " COALESCE(SUM(CASE WHEN visible_at > ? AND receive_count = 0 THEN 1 ELSE 0 END), 0)"
            " FROM messages WHERE queue_id = ?",
            (now, now, now, queue.id),
        ).fetchone()
        return Counts(visible=int(row[0]), in_flight=int(row[1]), delayed=int(row[2]))

    @staticmethod
    def _has_expired(conn: Connection, queue: Queue, now: float) -> bool:
        row = conn.execute(
            "SELECT 1 FROM messages WHERE queue_id = ? AND sent < ? LIMIT 1",
            (queue.id, now - queue.number("MessageRetentionPeriod")),
        ).fetchone()
        return row is not None

    def next_visible(self, name: str) -> float | None:
        """When the earliest hidden message of the queue becomes visible (epoch seconds), if any."""
        with self.db.read() as conn:
            row = conn.execute(
                "SELECT MIN(m.visible_at) FROM messages m JOIN queues q ON q.id = m.queue_id"
                " WHERE q.name = ? AND m.visible_at > ?",
                (name, time.time()),
            ).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def _expire(self, conn: Connection, queue: Queue, now: float) -> None:
        """Drop messages older than the retention period (counted from their first enqueue); one that
        another server is taking right now goes on a later pass."""
        conn.execute(
            "DELETE FROM messages WHERE seq IN"
            f" (SELECT seq FROM messages WHERE queue_id = ? AND sent < ?{self.db.skip_locked})",
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
                # Sends to one FIFO queue take turns (across servers too): a deduplication id is
                # looked up after the previous send that may have stored it committed.
                queue = self._queue(conn, name, lock=True)
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
                        _encode(message.attributes).decode(),
                        _encode(message.system_attributes).decode(),
                        now,
                        now + message.delay,
                        message.group_id,
                        message.dedup_id,
                        sequence_number,
                        sender_id,
                    ),
                )
                results.append(Sent(message_id, md5_body, md5_attrs, md5_system, sequence_number))
            self._announce(conn, [name])
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
            if queue.fifo:
                # One receive at a time per FIFO queue (across servers too), so that the groups in
                # flight it reads below are all there are.
                queue = self._queue(conn, name, lock=True)
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
                # A standard queue's receive reads (and, on a shared store, locks) only as many rows
                # as it still needs, so a receive on another server passes over no more than that.
                page = _PAGE if queue.fifo else min(_PAGE, limit - len(out))
                rows = conn.execute(
                    f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE queue_id = ? AND visible_at <= ? AND seq > ?"
                    f" ORDER BY seq LIMIT ?{self.db.skip_locked}",
                    (queue.id, now, after, page),
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
            self._announce(conn, moved_to)
        if moved_to:
            self._notify(moved_to)
        return out

    def _dead_letter_queue(self, conn: Connection, queue: Queue) -> tuple[Queue, int] | None:
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
            attributes=_decode(row[3]),
            system_attributes=_decode(row[4]),
            sent=row[5],
            receive_count=row[6] + 1,
            first_receive=first,
            group_id=row[8],
            dedup_id=row[9],
            sequence_number=row[10],
            sender_id=str(row[11]),
            dlq_source=row[12],
        )

    def _locate(self, conn: Connection, queue: Queue, handle: str) -> tuple[int, str, float] | None:
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
            self._announce(conn, [name])
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
