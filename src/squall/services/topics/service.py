"""The topic service: topics, subscriptions and pending deliveries on SQLite.

A publish is committed (``synchronous=FULL``) together with one pending delivery per matching
confirmed subscription before it is acknowledged, so the deliverer finds every delivery again
after a restart. Filter policies are applied at publish time.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import msgspec

from squall.services.topics import attributes as tattrs
from squall.services.topics import checks, events
from squall.services.topics.errors import (
    SUBSCRIPTION_NOT_FOUND,
    TOPIC_NOT_FOUND,
    InvalidParameter,
    NotFound,
    ResourceNotFound,
    TagLimitExceeded,
)
from squall.services.topics.messages import Message
from squall.services.topics.models import Draft, Job, Subscription, Topic
from squall.stores.sqlite_file import open_durable, write_transaction

PAGE = 100
MAX_TAGS = 50
DEDUP_WINDOW_S = 300.0
_SEQUENCE_BASE = 10**19
_NAME = re.compile(r"[A-Za-z0-9_-]{1,256}")
_FIFO_NAME = re.compile(r"[A-Za-z0-9_-]{1,251}\.fifo")

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS topics (
        arn TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, fifo INTEGER NOT NULL, attributes TEXT NOT NULL,
        tags TEXT NOT NULL, created REAL NOT NULL, counter INTEGER NOT NULL DEFAULT 0,
        deleted_subscriptions INTEGER NOT NULL DEFAULT 0)""",
    """CREATE TABLE IF NOT EXISTS subscriptions (
        arn TEXT PRIMARY KEY, topic_arn TEXT NOT NULL, protocol TEXT NOT NULL, endpoint TEXT NOT NULL,
        attributes TEXT NOT NULL, confirmed INTEGER NOT NULL, token TEXT, created REAL NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS subscriptions_topic ON subscriptions (topic_arn)",
    """CREATE TABLE IF NOT EXISTS messages (message_id TEXT PRIMARY KEY, body BLOB NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS deliveries (
        id INTEGER PRIMARY KEY AUTOINCREMENT, subscription_arn TEXT NOT NULL, message_id TEXT,
        document TEXT, attempts INTEGER NOT NULL DEFAULT 0, due REAL NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (due)",
    "CREATE INDEX IF NOT EXISTS deliveries_subscription ON deliveries (subscription_arn, id)",
    # The sms/email stand-in: what would have been sent, kept for `squall outbox`.
    """CREATE TABLE IF NOT EXISTS outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT, subscription_arn TEXT NOT NULL, protocol TEXT NOT NULL,
        endpoint TEXT NOT NULL, kind TEXT NOT NULL, subject TEXT, body TEXT NOT NULL, created REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS dedup (
        topic_arn TEXT NOT NULL, key TEXT NOT NULL, message_id TEXT NOT NULL, sequence_number TEXT,
        expires REAL NOT NULL, PRIMARY KEY (topic_arn, key))""",
]
_SUB_COLUMNS = "arn, topic_arn, protocol, endpoint, attributes, confirmed"


class TopicService:
    """Topics of one account and region, stored in ``path``."""

    def __init__(self, path: Path, account_id: str, region: str, endpoint_url: str) -> None:
        self.account_id = account_id
        self.region = region
        self.endpoint_url = endpoint_url.rstrip("/")
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []
        self._conn = open_durable(path, _SCHEMA, "topic store")

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return write_transaction(self._conn, self._lock, "Topic store")

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` after a commit that added deliveries."""
        self._listeners.append(listener)

    def _notify(self) -> None:
        for listener in self._listeners:
            listener()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # --- ARNs ---------------------------------------------------------------------------------------
    def topic_arn(self, name: str) -> str:
        return f"arn:aws:sns:{self.region}:{self.account_id}:{name}"

    @staticmethod
    def check_topic_arn(arn: str | None, field: str = "TopicArn") -> str:
        parts = (arn or "").split(":")
        if len(parts) != 6 or parts[0] != "arn" or parts[2] != "sns" or not parts[5]:
            # unverified: SNS adds a reason for some malformed ARNs
            raise InvalidParameter(f"Invalid parameter: {field}")
        return str(arn)

    # --- topics -------------------------------------------------------------------------------------
    def create_topic(self, name: str, given: dict[str, str], tags: dict[str, str]) -> str:
        """The topic's ARN; creating an existing topic with the same settings returns it again."""
        fifo = given.get("FifoTopic", "false").lower() == "true"
        if fifo and not _FIFO_NAME.fullmatch(name):
            raise InvalidParameter(
                "Invalid parameter: Fifo Topic names must end with .fifo and must be made up of only uppercase and "
                "lowercase ASCII letters, numbers, underscores, and hyphens, and must be between 1 and 256 "
                "characters long."
            )
        if not fifo and not _NAME.fullmatch(name):
            raise InvalidParameter("Invalid parameter: Topic Name")
        stored = checks.topic_attributes(given, fifo)
        if len(tags) > MAX_TAGS:
            raise TagLimitExceeded("Could not complete request: tag quota of per resource exceeded")
        arn = self.topic_arn(name)
        with self._tx() as conn:
            row = conn.execute("SELECT attributes, tags FROM topics WHERE arn = ?", (arn,)).fetchone()
            if row is not None:
                if given and json.loads(row[0]) != stored:
                    raise InvalidParameter(
                        "Invalid parameter: Attributes Reason: Topic already exists with different attributes"
                    )
                if tags and json.loads(row[1]) != tags:
                    # unverified: wording for a re-create with other tags
                    raise InvalidParameter("Invalid parameter: Tags Reason: Topic already exists with different tags")
                return arn
            conn.execute(
                "INSERT INTO topics (arn, name, fifo, attributes, tags, created) VALUES (?, ?, ?, ?, ?, ?)",
                (arn, name, int(fifo), json.dumps(stored), json.dumps(tags), time.time()),
            )
        return arn

    def delete_topic(self, arn: str) -> None:
        """Delete a topic and its subscriptions; deleting a missing topic succeeds, as on SNS."""
        self.check_topic_arn(arn)
        with self._tx() as conn:
            conn.execute("DELETE FROM topics WHERE arn = ?", (arn,))
            conn.execute("DELETE FROM subscriptions WHERE topic_arn = ?", (arn,))
            conn.execute("DELETE FROM dedup WHERE topic_arn = ?", (arn,))

    def topic(self, arn: str) -> Topic:
        self.check_topic_arn(arn)
        with self._lock:
            return self._topic(self._conn, arn)

    @staticmethod
    def _topic(conn: sqlite3.Connection, arn: str) -> Topic:
        row = conn.execute("SELECT arn, name, fifo, attributes, tags FROM topics WHERE arn = ?", (arn,)).fetchone()
        if row is None:
            raise NotFound(TOPIC_NOT_FOUND)
        return Topic(row[0], row[1], bool(row[2]), json.loads(row[3]), json.loads(row[4]))

    def list_topics(self, token: str | None) -> tuple[list[str], str | None]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT arn FROM topics WHERE arn >= ? ORDER BY arn LIMIT ?", (_after(token), PAGE + 1)
            ).fetchall()
        arns = [row[0] for row in rows]
        return arns[:PAGE], (_token(arns[PAGE]) if len(arns) > PAGE else None)

    def topic_attributes(self, arn: str) -> dict[str, str]:
        self.check_topic_arn(arn)
        with self._lock:
            topic = self._topic(self._conn, arn)
            confirmed, pending = self._conn.execute(
                "SELECT COALESCE(SUM(confirmed), 0), COALESCE(SUM(1 - confirmed), 0) FROM subscriptions"
                " WHERE topic_arn = ?",
                (arn,),
            ).fetchone()
            deleted = self._conn.execute("SELECT deleted_subscriptions FROM topics WHERE arn = ?", (arn,)).fetchone()[0]
        result = {
            "TopicArn": arn,
            "Owner": self.account_id,
            "Policy": tattrs.default_topic_policy(arn, self.account_id),
            "DisplayName": "",
            "SubscriptionsConfirmed": str(confirmed),
            "SubscriptionsPending": str(pending),
            "SubscriptionsDeleted": str(deleted),
            "EffectiveDeliveryPolicy": tattrs.effective_topic_delivery_policy(topic.attributes.get("DeliveryPolicy")),
        }
        result.update(topic.attributes)
        return result

    def set_topic_attribute(self, arn: str, name: str, value: str) -> None:
        self.check_topic_arn(arn)
        with self._tx() as conn:
            topic = self._topic(conn, arn)
            if name not in tattrs.TOPIC_SETTABLE or (name == "ContentBasedDeduplication" and not topic.fifo):
                raise InvalidParameter("Invalid parameter: AttributeName")
            changed = checks.topic_attributes({**topic.attributes, name: value}, topic.fifo)
            conn.execute("UPDATE topics SET attributes = ? WHERE arn = ?", (json.dumps(changed), arn))

    def change_tags(self, arn: str, add: dict[str, str], remove: Sequence[str]) -> None:
        with self._tx() as conn:
            row = conn.execute("SELECT tags FROM topics WHERE arn = ?", (arn,)).fetchone()
            if row is None:
                raise ResourceNotFound("Resource does not exist")
            tags = {key: value for key, value in json.loads(row[0]).items() if key not in remove}
            tags.update(add)
            if len(tags) > MAX_TAGS:
                raise TagLimitExceeded("Could not complete request: tag quota of per resource exceeded")
            conn.execute("UPDATE topics SET tags = ? WHERE arn = ?", (json.dumps(tags), arn))

    def tags(self, arn: str) -> dict[str, str]:
        with self._lock:
            row = self._conn.execute("SELECT tags FROM topics WHERE arn = ?", (arn,)).fetchone()
        if row is None:
            raise ResourceNotFound("Resource does not exist")
        return dict(json.loads(row[0]))

    # --- subscriptions ------------------------------------------------------------------------------
    def subscribe(self, topic_arn: str, protocol: str, endpoint: str, given: dict[str, str]) -> Subscription:
        """The subscription (an existing one for the same endpoint is returned); HTTP/S ones start
        pending and get a SubscriptionConfirmation delivery."""
        self.check_topic_arn(topic_arn)
        now = time.time()
        with self._tx() as conn:
            topic = self._topic(conn, topic_arn)
            checks.check_endpoint(topic, protocol, endpoint)
            stored = checks.subscription_attributes(protocol, given)
            row = conn.execute(
                f"SELECT {_SUB_COLUMNS} FROM subscriptions WHERE topic_arn = ? AND protocol = ? AND endpoint = ?",
                (topic_arn, protocol, endpoint),
            ).fetchone()
            if row is not None:
                existing = _subscription(row, self.account_id)
                if given and existing.attributes != stored:
                    raise InvalidParameter(
                        "Invalid parameter: Attributes Reason: Subscription already exists with different attributes"
                    )
                if existing.confirmed:
                    return existing
                arn = existing.arn
                token: str | None = secrets.token_hex(64)
                conn.execute("UPDATE subscriptions SET token = ? WHERE arn = ?", (token, arn))
                subscription = existing
            else:
                arn = f"{topic_arn}:{uuid.uuid4()}"
                pending = protocol in checks.CONFIRMED_BY_SUBSCRIBER
                token = secrets.token_hex(64) if pending else None
                conn.execute(
                    "INSERT INTO subscriptions (arn, topic_arn, protocol, endpoint, attributes, confirmed, token,"
                    " created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (arn, topic_arn, protocol, endpoint, json.dumps(stored), int(not pending), token, now),
                )
                subscription = Subscription(arn, topic_arn, protocol, endpoint, self.account_id, stored, not pending)
                if not pending:
                    return subscription
            assert token is not None
            document = events.confirmation(topic_arn, token, str(uuid.uuid4()), now, self.endpoint_url)
            conn.execute(
                "INSERT INTO deliveries (subscription_arn, document, due) VALUES (?, ?, ?)",
                (arn, json.dumps(document), now),
            )
        self._notify()
        return subscription

    def confirm(self, topic_arn: str, token: str) -> str:
        self.check_topic_arn(topic_arn)
        with self._tx() as conn:
            self._topic(conn, topic_arn)
            row = conn.execute(
                "SELECT arn FROM subscriptions WHERE topic_arn = ? AND token = ?", (topic_arn, token)
            ).fetchone()
            if row is None:
                raise InvalidParameter("Invalid token")
            conn.execute("UPDATE subscriptions SET confirmed = 1 WHERE arn = ?", (row[0],))
            return str(row[0])

    def unsubscribe(self, arn: str) -> None:
        """Delete a subscription and its pending deliveries; a missing one is no error."""
        if len(arn.split(":")) != 7:
            raise InvalidParameter("Invalid parameter: SubscriptionArn")  # unverified
        with self._tx() as conn:
            row = conn.execute("SELECT topic_arn FROM subscriptions WHERE arn = ?", (arn,)).fetchone()
            if row is None:
                # AWS documents NotFound, but answers success (getmoto/moto#3000, checked against AWS).
                return
            conn.execute("DELETE FROM subscriptions WHERE arn = ?", (arn,))
            conn.execute("DELETE FROM deliveries WHERE subscription_arn = ?", (arn,))
            conn.execute("UPDATE topics SET deleted_subscriptions = deleted_subscriptions + 1 WHERE arn = ?", (row[0],))

    def subscription(self, arn: str) -> Subscription:
        if len(arn.split(":")) != 7:
            raise InvalidParameter("Invalid parameter: SubscriptionArn")  # unverified
        with self._lock:
            row = self._conn.execute(f"SELECT {_SUB_COLUMNS} FROM subscriptions WHERE arn = ?", (arn,)).fetchone()
        if row is None:
            raise NotFound(SUBSCRIPTION_NOT_FOUND)
        return _subscription(row, self.account_id)

    def list_subscriptions(self, topic_arn: str | None, token: str | None) -> tuple[list[Subscription], str | None]:
        with self._lock:
            if topic_arn is None:
                rows = self._conn.execute(
                    f"SELECT {_SUB_COLUMNS} FROM subscriptions WHERE arn >= ? ORDER BY arn LIMIT ?",
                    (_after(token), PAGE + 1),
                ).fetchall()
            else:
                self._topic(self._conn, self.check_topic_arn(topic_arn))
                rows = self._conn.execute(
                    f"SELECT {_SUB_COLUMNS} FROM subscriptions WHERE topic_arn = ? AND arn >= ? ORDER BY arn LIMIT ?",
                    (topic_arn, _after(token), PAGE + 1),
                ).fetchall()
        subscriptions = [_subscription(row, self.account_id) for row in rows]
        return subscriptions[:PAGE], (_token(subscriptions[PAGE].arn) if len(rows) > PAGE else None)

    def subscription_attributes(self, arn: str) -> dict[str, str]:
        subscription = self.subscription(arn)
        with self._lock:
            row = self._conn.execute(
                "SELECT attributes FROM topics WHERE arn = ?", (subscription.topic_arn,)
            ).fetchone()
        topic_policy = json.loads(row[0]).get("DeliveryPolicy") if row else None
        result = {
            "SubscriptionArn": subscription.arn,
            "TopicArn": subscription.topic_arn,
            "Owner": self.account_id,
            "Protocol": subscription.protocol,
            "Endpoint": subscription.endpoint,
            "ConfirmationWasAuthenticated": "true" if subscription.confirmed else "false",
            "PendingConfirmation": "false" if subscription.confirmed else "true",
            "RawMessageDelivery": "false",
            "SubscriptionPrincipal": f"arn:aws:iam::{self.account_id}:root",
        }
        if subscription.protocol in ("http", "https"):
            policy = tattrs.retry_policy(
                subscription.protocol, subscription.attributes.get("DeliveryPolicy"), topic_policy
            )
            result["EffectiveDeliveryPolicy"] = tattrs.effective_subscription_delivery_policy(policy)
        result.update(subscription.attributes)
        if "FilterPolicy" in subscription.attributes:
            result.setdefault("FilterPolicyScope", "MessageAttributes")
        return result

    def set_subscription_attribute(self, arn: str, name: str, value: str) -> None:
        subscription = self.subscription(arn)
        if name not in tattrs.SUBSCRIPTION_SETTABLE:
            raise InvalidParameter("Invalid parameter: AttributeName")
        changed = dict(subscription.attributes)
        if name == "FilterPolicy" and value == "":
            changed.pop("FilterPolicy", None)
            changed.pop("FilterPolicyScope", None)
        else:
            changed[name] = value
        stored = checks.subscription_attributes(subscription.protocol, changed)
        with self._tx() as conn:
            if (
                conn.execute(
                    "UPDATE subscriptions SET attributes = ? WHERE arn = ?", (json.dumps(stored), arn)
                ).rowcount
                == 0
            ):
                raise NotFound(SUBSCRIPTION_NOT_FOUND)

    # --- publishing ---------------------------------------------------------------------------------
    def publish(self, topic_arn: str, drafts: Sequence[Draft]) -> list[Message | InvalidParameter]:
        """Accept ``drafts`` in one transaction, each with its deliveries; a FIFO check failing for one
        draft fails that draft only. FIFO duplicates within 5 minutes get the first message's id."""
        self.check_topic_arn(topic_arn)
        now = time.time()
        results: list[Message | InvalidParameter] = []
        with self._tx() as conn:
            topic = self._topic(conn, topic_arn)
            rows = conn.execute(
                f"SELECT {_SUB_COLUMNS} FROM subscriptions WHERE topic_arn = ? AND confirmed = 1", (topic_arn,)
            ).fetchall()
            subscriptions = [_subscription(row, self.account_id) for row in rows]
            policies = {sub.arn: checks.filter_policy(sub) for sub in subscriptions}
            if topic.fifo:
                conn.execute("DELETE FROM dedup WHERE topic_arn = ? AND expires < ?", (topic_arn, now))
            for draft in drafts:
                try:
                    message, fresh = self._accept(conn, topic, draft, now)
                except InvalidParameter as exc:
                    results.append(exc)
                    continue
                results.append(message)
                if not fresh:  # a FIFO duplicate: acknowledged, not delivered again
                    continue
                conn.execute(
                    "INSERT INTO messages (message_id, body) VALUES (?, ?)",
                    (message.message_id, msgspec.json.encode(message)),
                )
                for sub in subscriptions:
                    if checks.passes(policies[sub.arn], sub, message):
                        conn.execute(
                            "INSERT INTO deliveries (subscription_arn, message_id, due) VALUES (?, ?, ?)",
                            (sub.arn, message.message_id, now),
                        )
        self._notify()
        return results

    def _accept(self, conn: sqlite3.Connection, topic: Topic, draft: Draft, now: float) -> tuple[Message, bool]:
        """The message ``draft`` becomes, and whether it is new (not a FIFO duplicate)."""
        if not topic.fifo:
            if draft.dedup_id is not None:
                raise InvalidParameter(
                    "Invalid parameter: MessageDeduplicationId Reason: The request includes MessageDeduplicationId "
                    "parameter that is not valid for this topic type"
                )
            message = Message(
                str(uuid.uuid4()), topic.arn, draft.message, draft.subject, draft.attributes, now, draft.structure
            )
            return message, True
        if not draft.group_id:
            raise InvalidParameter("Invalid parameter: The MessageGroupId parameter is required for FIFO topics")
        dedup = draft.dedup_id
        if not dedup:
            if topic.attributes.get("ContentBasedDeduplication") != "true":
                raise InvalidParameter(
                    "Invalid parameter: The topic should either have ContentBasedDeduplication enabled or "
                    "MessageDeduplicationId provided explicitly"
                )
            dedup = hashlib.sha256(draft.message.encode()).hexdigest()
        key = f"{draft.group_id}\n{dedup}" if topic.attributes.get("FifoThroughputScope") == "MessageGroup" else dedup
        seen = conn.execute(
            "SELECT message_id, sequence_number FROM dedup WHERE topic_arn = ? AND key = ?", (topic.arn, key)
        ).fetchone()
        if seen is not None:
            duplicate = Message(
                seen[0], topic.arn, draft.message, draft.subject, draft.attributes, now, sequence_number=seen[1]
            )
            return duplicate, False
        counter = conn.execute(
            "UPDATE topics SET counter = counter + 1 WHERE arn = ? RETURNING counter", (topic.arn,)
        ).fetchone()[0]
        message = Message(
            str(uuid.uuid4()),
            topic.arn,
            draft.message,
            draft.subject,
            draft.attributes,
            now,
            draft.structure,
            draft.group_id,
            dedup,
            str(_SEQUENCE_BASE + counter),
        )
        conn.execute(
            "INSERT INTO dedup VALUES (?, ?, ?, ?, ?)",
            (topic.arn, key, message.message_id, message.sequence_number, now + DEDUP_WINDOW_S),
        )
        return message, True

    # --- deliveries ---------------------------------------------------------------------------------
    def due(self, now: float, limit: int, busy: set[int]) -> list[Job]:
        """Deliveries whose time has come, except those in ``busy``; ones whose subscription is gone
        are dropped. A FIFO topic's subscription gets one delivery at a time, oldest first, so its
        queue receives the messages in order even across retries."""
        with self._tx() as conn:
            rows = conn.execute(
                "SELECT d.id, d.attempts, d.subscription_arn, d.document, m.body, s.protocol, s.endpoint,"
                " s.attributes, t.attributes FROM deliveries d"
                " LEFT JOIN subscriptions s ON s.arn = d.subscription_arn"
                " LEFT JOIN topics t ON t.arn = s.topic_arn"
                " LEFT JOIN messages m ON m.message_id = d.message_id"
                " WHERE d.due <= ? AND (t.fifo = 0 OR d.id ="
                " (SELECT MIN(id) FROM deliveries o WHERE o.subscription_arn = d.subscription_arn))"
                " ORDER BY d.due, d.id LIMIT ?",
                (now, limit + len(busy)),
            ).fetchall()
            jobs = []
            for row in rows:
                if row[0] in busy:
                    continue
                if row[5] is None or (row[3] is None and row[4] is None):
                    self._finish(conn, row[0])
                    continue
                sub_attrs = json.loads(row[7])
                topic_policy = json.loads(row[8]).get("DeliveryPolicy") if row[8] else None
                jobs.append(
                    Job(
                        id=row[0],
                        attempts=row[1],
                        subscription_arn=row[2],
                        protocol=row[5],
                        endpoint=row[6],
                        raw=sub_attrs.get("RawMessageDelivery") == "true",
                        retry_policy=tattrs.retry_policy(row[5], sub_attrs.get("DeliveryPolicy"), topic_policy),
                        message=None if row[4] is None else msgspec.json.decode(row[4], type=Message),
                        document=None if row[3] is None else json.loads(row[3]),
                    )
                )
        return jobs[:limit]

    def next_due(self) -> float | None:
        with self._lock:
            row = self._conn.execute("SELECT MIN(due) FROM deliveries").fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def delivered(self, job_id: int) -> None:
        """The delivery succeeded (or was given up): it is removed, with its message once no other needs it."""
        with self._tx() as conn:
            self._finish(conn, job_id)

    @staticmethod
    def _finish(conn: sqlite3.Connection, job_id: int) -> None:
        row = conn.execute("DELETE FROM deliveries WHERE id = ? RETURNING message_id", (job_id,)).fetchone()
        if row is not None and row[0] is not None:
            conn.execute(
                "DELETE FROM messages WHERE message_id = ? AND NOT EXISTS"
                " (SELECT 1 FROM deliveries WHERE message_id = ?)",
                (row[0], row[0]),
            )

    def retry_at(self, job_id: int, due: float) -> None:
        with self._tx() as conn:
            conn.execute("UPDATE deliveries SET attempts = attempts + 1, due = ? WHERE id = ?", (due, job_id))

    def add_to_outbox(
        self, subscription_arn: str, protocol: str, endpoint: str, kind: str, subject: str | None, body: str
    ) -> None:
        """Keep what an sms/email subscriber would have received (durably, before the delivery is done)."""
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO outbox (subscription_arn, protocol, endpoint, kind, subject, body, created)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (subscription_arn, protocol, endpoint, kind, subject, body, time.time()),
            )

    def outbox(self, since: float = 0.0, limit: int = 1000) -> list[dict[str, Any]]:
        """What the sms/email stand-ins received since ``since``, oldest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, subscription_arn, protocol, endpoint, kind, subject, body, created FROM outbox"
                " WHERE created >= ? ORDER BY id LIMIT ?",
                (since, limit),
            ).fetchall()
        keys = ("id", "subscription_arn", "protocol", "endpoint", "kind", "subject", "body", "created")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def pending_deliveries(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0])


def _after(token: str | None) -> str:
    if not token:
        return ""
    try:
        return bytes.fromhex(token).decode()
    except ValueError:
        raise InvalidParameter("Invalid parameter: NextToken") from None  # unverified


def _token(arn: str) -> str:
    return arn.encode().hex()


def _subscription(row: Any, owner: str) -> Subscription:
    return Subscription(row[0], row[1], row[2], row[3], owner, json.loads(row[4]), bool(row[5]))
