"""The topic service: topics, subscriptions and pending deliveries in a ``TopicStore``.

A publish is committed durably together with one pending delivery per matching confirmed
subscription before it is acknowledged, so a deliverer finds every delivery again after a restart.
Filter policies are applied at publish time. The store is a SQLite file (the embedded tier) or a
PostgreSQL schema that every server of a deployment shares (``postgres.py``); there each delivery is
claimed by one server's deliverer at a time, and a claim whose server died lapses after ``claim_s``.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
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
from squall.services.topics.store import SqliteTopicStore, TopicStore
from squall.stores.sql import Connection

PAGE = 100
MAX_TAGS = 50
DEDUP_WINDOW_S = 300.0
#: How long a deliverer's claim on a delivery holds: longer than any one attempt (HTTP's 15 s timeout).
CLAIM_S = 60.0
_SEQUENCE_BASE = 10**19
_NAME = re.compile(r"[A-Za-z0-9_-]{1,256}")
_FIFO_NAME = re.compile(r"[A-Za-z0-9_-]{1,251}\.fifo")
_ADDED = "deliveries"  # the store's notification: deliveries were added

_SUB_COLUMNS = "arn, topic_arn, protocol, endpoint, attributes, confirmed"


class TopicService:
    """Topics of one account and region, stored in ``store`` (a path: a SQLite file of its own)."""

    def __init__(
        self, store: Path | TopicStore, account_id: str, region: str, endpoint_url: str, claim_s: float = CLAIM_S
    ) -> None:
        self.account_id = account_id
        self.region = region
        self.endpoint_url = endpoint_url.rstrip("/")
        self.claim_s = claim_s
        self.store = SqliteTopicStore(store) if isinstance(store, Path) else store
        #: Names this service's claims on deliveries (one per process, like a server's leases).
        self.owner = uuid.uuid4().hex
        self._listeners: list[Callable[[], None]] = []

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` after a commit that added deliveries: this service's own (from the
        committing thread) and, on a shared store, other servers' (from a thread of the store's)."""
        if not self._listeners:
            self.store.watch(lambda _message: self._notify(), resync=self._notify)
        self._listeners.append(listener)

    def _notify(self) -> None:
        for listener in self._listeners:
            listener()

    def close(self) -> None:
        self.store.close()

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
        with self.store.write() as conn:
            # Insert first: two servers creating one topic at once then meet on its key, and the
            # second (after the first commits) compares with what the first stored.
            if conn.execute(
                "INSERT INTO topics (arn, name, fifo, attributes, tags, created) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (arn, name, int(fifo), json.dumps(stored), json.dumps(tags), time.time()),
            ).rowcount:
                return arn
            row = conn.execute("SELECT attributes, tags FROM topics WHERE arn = ?", (arn,)).fetchone()
            if given and json.loads(row[0]) != stored:
                raise InvalidParameter(
                    "Invalid parameter: Attributes Reason: Topic already exists with different attributes"
                )
            if tags and json.loads(row[1]) != tags:
                # unverified: wording for a re-create with other tags
                raise InvalidParameter("Invalid parameter: Tags Reason: Topic already exists with different tags")
        return arn

    def delete_topic(self, arn: str) -> None:
        """Delete a topic and its subscriptions; deleting a missing topic succeeds, as on SNS."""
        self.check_topic_arn(arn)
        with self.store.write() as conn:
            conn.execute("DELETE FROM topics WHERE arn = ?", (arn,))
            conn.execute("DELETE FROM subscriptions WHERE topic_arn = ?", (arn,))
            conn.execute("DELETE FROM dedup WHERE topic_arn = ?", (arn,))

    def topic(self, arn: str) -> Topic:
        self.check_topic_arn(arn)
        with self.store.read() as conn:
            return self._topic(conn, arn)

    def _topic(self, conn: Connection, arn: str, lock: bool = False) -> Topic:
        """The topic's row; ``lock``: locked until the write transaction ends (on a shared store, the
        other servers' changes to this topic wait for it)."""
        lock_clause = self.store.for_update if lock else ""
        row = conn.execute(
            "SELECT arn, name, fifo, attributes, tags FROM topics WHERE arn = ?" + lock_clause, (arn,)
        ).fetchone()
        if row is None:
            raise NotFound(TOPIC_NOT_FOUND)
        return Topic(row[0], row[1], bool(row[2]), json.loads(row[3]), json.loads(row[4]))

    def list_topics(self, token: str | None) -> tuple[list[str], str | None]:
        with self.store.read() as conn:
            rows = conn.execute(
                "SELECT arn FROM topics WHERE arn >= ? ORDER BY arn LIMIT ?", (_after(token), PAGE + 1)
            ).fetchall()
        arns = [row[0] for row in rows]
        return arns[:PAGE], (_token(arns[PAGE]) if len(arns) > PAGE else None)

    def topic_attributes(self, arn: str) -> dict[str, str]:
        self.check_topic_arn(arn)
        with self.store.read() as conn:
            topic = self._topic(conn, arn)
            confirmed, pending = conn.execute(
                "SELECT COALESCE(SUM(confirmed), 0), COALESCE(SUM(1 - confirmed), 0) FROM subscriptions"
                " WHERE topic_arn = ?",
                (arn,),
            ).fetchone()
            deleted = conn.execute("SELECT deleted_subscriptions FROM topics WHERE arn = ?", (arn,)).fetchone()[0]
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
        with self.store.write() as conn:
            topic = self._topic(conn, arn, lock=True)
            if name not in tattrs.TOPIC_SETTABLE or (name == "ContentBasedDeduplication" and not topic.fifo):
                raise InvalidParameter("Invalid parameter: AttributeName")
            changed = checks.topic_attributes({**topic.attributes, name: value}, topic.fifo)
            conn.execute("UPDATE topics SET attributes = ? WHERE arn = ?", (json.dumps(changed), arn))

    def change_tags(self, arn: str, add: dict[str, str], remove: Sequence[str]) -> None:
        with self.store.write() as conn:
            row = conn.execute("SELECT tags FROM topics WHERE arn = ?" + self.store.for_update, (arn,)).fetchone()
            if row is None:
                raise ResourceNotFound("Resource does not exist")
            tags = {key: value for key, value in json.loads(row[0]).items() if key not in remove}
            tags.update(add)
            if len(tags) > MAX_TAGS:
                raise TagLimitExceeded("Could not complete request: tag quota of per resource exceeded")
            conn.execute("UPDATE topics SET tags = ? WHERE arn = ?", (json.dumps(tags), arn))

    def tags(self, arn: str) -> dict[str, str]:
        with self.store.read() as conn:
            row = conn.execute("SELECT tags FROM topics WHERE arn = ?", (arn,)).fetchone()
        if row is None:
            raise ResourceNotFound("Resource does not exist")
        return dict(json.loads(row[0]))

    # --- subscriptions ------------------------------------------------------------------------------
    def subscribe(self, topic_arn: str, protocol: str, endpoint: str, given: dict[str, str]) -> Subscription:
        """The subscription (an existing one for the same endpoint is returned); HTTP/S ones start
        pending and get a SubscriptionConfirmation delivery."""
        self.check_topic_arn(topic_arn)
        now = time.time()
        with self.store.write() as conn:
            topic = self._topic(conn, topic_arn, lock=True)  # one subscription per endpoint, whoever subscribes
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
            self.store.notify(conn, _ADDED)
        self._notify()
        return subscription

    def confirm(self, topic_arn: str, token: str) -> str:
        self.check_topic_arn(topic_arn)
        with self.store.write() as conn:
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
        with self.store.write() as conn:
            row = conn.execute("SELECT topic_arn FROM subscriptions WHERE arn = ?", (arn,)).fetchone()
            if row is None:
                # AWS documents NotFound, but answers success (getmoto/moto#3000, checked against AWS).
                return
            conn.execute("DELETE FROM subscriptions WHERE arn = ?", (arn,))
            conn.execute("DELETE FROM deliveries WHERE subscription_arn = ?", (arn,))
            conn.execute("UPDATE topics SET deleted_subscriptions = deleted_subscriptions + 1 WHERE arn = ?", (row[0],))

    def subscription(self, arn: str) -> Subscription:
        with self.store.read() as conn:
            return self._subscription(conn, arn)

    def _subscription(self, conn: Connection, arn: str, lock: bool = False) -> Subscription:
        if len(arn.split(":")) != 7:
            raise InvalidParameter("Invalid parameter: SubscriptionArn")  # unverified
        row = conn.execute(
            f"SELECT {_SUB_COLUMNS} FROM subscriptions WHERE arn = ?" + (self.store.for_update if lock else ""), (arn,)
        ).fetchone()
        if row is None:
            raise NotFound(SUBSCRIPTION_NOT_FOUND)
        return _subscription(row, self.account_id)

    def list_subscriptions(self, topic_arn: str | None, token: str | None) -> tuple[list[Subscription], str | None]:
        with self.store.read() as conn:
            if topic_arn is None:
                rows = conn.execute(
                    f"SELECT {_SUB_COLUMNS} FROM subscriptions WHERE arn >= ? ORDER BY arn LIMIT ?",
                    (_after(token), PAGE + 1),
                ).fetchall()
            else:
                self._topic(conn, self.check_topic_arn(topic_arn))
                rows = conn.execute(
                    f"SELECT {_SUB_COLUMNS} FROM subscriptions WHERE topic_arn = ? AND arn >= ? ORDER BY arn LIMIT ?",
                    (topic_arn, _after(token), PAGE + 1),
                ).fetchall()
        subscriptions = [_subscription(row, self.account_id) for row in rows]
        return subscriptions[:PAGE], (_token(subscriptions[PAGE].arn) if len(rows) > PAGE else None)

    def subscription_attributes(self, arn: str) -> dict[str, str]:
        subscription = self.subscription(arn)
        with self.store.read() as conn:
            row = conn.execute("SELECT attributes FROM topics WHERE arn = ?", (subscription.topic_arn,)).fetchone()
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
        with self.store.write() as conn:
            subscription = self._subscription(conn, arn, lock=True)
            if name not in tattrs.SUBSCRIPTION_SETTABLE:
                raise InvalidParameter("Invalid parameter: AttributeName")
            changed = dict(subscription.attributes)
            if name == "FilterPolicy" and value == "":
                changed.pop("FilterPolicy", None)
                changed.pop("FilterPolicyScope", None)
            else:
                changed[name] = value
            stored = checks.subscription_attributes(subscription.protocol, changed)
            conn.execute("UPDATE subscriptions SET attributes = ? WHERE arn = ?", (json.dumps(stored), arn))

    # --- publishing ---------------------------------------------------------------------------------
    def publish(self, topic_arn: str, drafts: Sequence[Draft]) -> list[Message | InvalidParameter]:
        """Accept ``drafts`` in one transaction, each with its deliveries; a FIFO check failing for one
        draft fails that draft only. FIFO duplicates within 5 minutes get the first message's id."""
        self.check_topic_arn(topic_arn)
        now = time.time()
        results: list[Message | InvalidParameter] = []
        added = False
        with self.store.write() as conn:
            # A FIFO topic's publishes take its row lock (its counter and deduplication window), one at
            # a time across servers; its name tells it apart before reading the row.
            topic = self._topic(conn, topic_arn, lock=topic_arn.endswith(".fifo"))
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
                        added = True
            if added:
                self.store.notify(conn, _ADDED)
        self._notify()
        return results

    def _accept(self, conn: Connection, topic: Topic, draft: Draft, now: float) -> tuple[Message, bool]:
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
        """Claim up to ``limit`` deliveries whose time has come for ``claim_s``, except those in ``busy``
        and those another deliverer holds; ones whose subscription is gone are dropped. A FIFO topic's
        subscription gets one delivery at a time, oldest first (a claimed one holds back the rest), so
        its queue receives the messages in order even across retries and servers."""
        with self.store.write() as conn:
            rows = conn.execute(
                "SELECT d.id, d.attempts, d.subscription_arn, d.document, m.body, s.protocol, s.endpoint,"
                " s.attributes, t.attributes FROM deliveries d"
                " LEFT JOIN subscriptions s ON s.arn = d.subscription_arn"
                " LEFT JOIN topics t ON t.arn = s.topic_arn"
                " LEFT JOIN messages m ON m.message_id = d.message_id"
                " WHERE d.due <= ? AND d.claimed_until <= ? AND (t.fifo = 0 OR d.id ="
                " (SELECT MIN(id) FROM deliveries o WHERE o.subscription_arn = d.subscription_arn))"
                " ORDER BY d.due, d.id LIMIT ?" + self.store.claim_lock,
                (now, now, limit + len(busy)),
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
                if len(jobs) == limit:
                    break
            conn.executemany(
                "UPDATE deliveries SET claimed_by = ?, claimed_until = ? WHERE id = ?",
                [(self.owner, now + self.claim_s, job.id) for job in jobs],
            )
        return jobs

    def next_due(self) -> float | None:
        """When the next delivery can be claimed: it is due and nobody's claim on it holds."""
        with self.store.read() as conn:
            row = conn.execute(
                "SELECT MIN(CASE WHEN claimed_until > due THEN claimed_until ELSE due END) FROM deliveries"
            ).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def delivered(self, job_id: int) -> None:
        """The delivery succeeded (or was given up): it is removed, with its message once no other needs it."""
        with self.store.write() as conn:
            self._finish(conn, job_id)

    def _finish(self, conn: Connection, job_id: int) -> None:
        row = conn.execute("DELETE FROM deliveries WHERE id = ? RETURNING message_id", (job_id,)).fetchone()
        if row is not None and row[0] is not None:
            # Locked first: two servers finishing a message's last two deliveries at once would each
            # still see the other's, and neither would remove the message.
            conn.execute("SELECT 1 FROM messages WHERE message_id = ?" + self.store.for_update, (row[0],))
            conn.execute(
                "DELETE FROM messages WHERE message_id = ? AND NOT EXISTS"
                " (SELECT 1 FROM deliveries WHERE message_id = ?)",
                (row[0], row[0]),
            )

    def retry_at(self, job_id: int, due: float) -> None:
        """Try the delivery again at ``due`` (by whichever deliverer claims it then), if this service
        still holds its claim."""
        with self.store.write() as conn:
            conn.execute(
                "UPDATE deliveries SET attempts = attempts + 1, due = ?, claimed_by = NULL, claimed_until = 0"
                " WHERE id = ? AND claimed_by = ?",
                (due, job_id, self.owner),
            )

    def release(self, job_ids: Iterable[int]) -> None:
        """Give up this service's claims on ``job_ids`` (not sent): any deliverer may take them now."""
        with self.store.write() as conn:
            conn.executemany(
                "UPDATE deliveries SET claimed_by = NULL, claimed_until = 0 WHERE id = ? AND claimed_by = ?",
                [(job_id, self.owner) for job_id in job_ids],
            )

    def release_claims(self) -> None:
        """Give up every claim, whoever made it: for a store only this server uses (the embedded tier),
        where a claim left by a previous process would only hold its deliveries back."""
        with self.store.write() as conn:
            conn.execute("UPDATE deliveries SET claimed_by = NULL, claimed_until = 0 WHERE claimed_until > 0")

    def add_to_outbox(
        self, subscription_arn: str, protocol: str, endpoint: str, kind: str, subject: str | None, body: str
    ) -> None:
        """Keep what an sms/email subscriber would have received (durably, before the delivery is done)."""
        with self.store.write() as conn:
            conn.execute(
                "INSERT INTO outbox (subscription_arn, protocol, endpoint, kind, subject, body, created)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (subscription_arn, protocol, endpoint, kind, subject, body, time.time()),
            )

    def outbox(self, since: float = 0.0, limit: int = 1000) -> list[dict[str, Any]]:
        """What the sms/email stand-ins received since ``since``, oldest first."""
        with self.store.read() as conn:
            rows = conn.execute(
                "SELECT id, subscription_arn, protocol, endpoint, kind, subject, body, created FROM outbox"
                " WHERE created >= ? ORDER BY id LIMIT ?",
                (since, limit),
            ).fetchall()
        keys = ("id", "subscription_arn", "protocol", "endpoint", "kind", "subject", "body", "created")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def pending_deliveries(self) -> int:
        with self.store.read() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0])


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
