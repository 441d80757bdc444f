"""A bucket's notification configuration (Put/GetBucketNotificationConfiguration): its XML, S3's
checks on it, and which configurations an object event matches.

The configuration is stored as JSON with the bucket (``BucketService.put_notifications``); delivery
is ``squall.sources.objects``. ``CALLER`` carries who made the current S3 request into the writing
thread (``asyncio.to_thread`` copies context), so an event can name its source address.
"""

from __future__ import annotations

import base64
import json
import uuid
import xml.etree.ElementTree as ET
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from typing import Any

from squall.services.buckets.errors import InvalidArgument, MalformedXML
from squall.services.buckets.xmlwire import document, parse, text

#: The event names S3 accepts in a configuration (botocore's ``Event`` enum).
EVENT_NAMES = frozenset(
    {
        "s3:ReducedRedundancyLostObject",
        "s3:ObjectCreated:*",
        "s3:ObjectCreated:Put",
        "s3:ObjectCreated:Post",
        "s3:ObjectCreated:Copy",
        "s3:ObjectCreated:CompleteMultipartUpload",
        "s3:ObjectRemoved:*",
        "s3:ObjectRemoved:Delete",
        "s3:ObjectRemoved:DeleteMarkerCreated",
        "s3:ObjectRestore:*",
        "s3:ObjectRestore:Post",
        "s3:ObjectRestore:Completed",
        "s3:ObjectRestore:Delete",
        "s3:Replication:*",
        "s3:Replication:OperationFailedReplication",
        "s3:Replication:OperationNotTracked",
        "s3:Replication:OperationMissedThreshold",
        "s3:Replication:OperationReplicatedAfterThreshold",
        "s3:LifecycleTransition",
        "s3:IntelligentTiering",
        "s3:ObjectAcl:Put",
        "s3:LifecycleExpiration:*",
        "s3:LifecycleExpiration:Delete",
        "s3:LifecycleExpiration:DeleteMarkerCreated",
        "s3:ObjectTagging:*",
        "s3:ObjectTagging:Put",
        "s3:ObjectTagging:Delete",
        "s3:ObjectAnnotation:*",
        "s3:ObjectAnnotation:Put",
        "s3:ObjectAnnotation:Delete",
        "s3:ObjectRetention:Put",
    }
)
#: kind -> (configuration element, destination element), in the order GET lists them.
ELEMENTS = {
    "topic": ("TopicConfiguration", "Topic"),
    "queue": ("QueueConfiguration", "Queue"),
    "function": ("CloudFunctionConfiguration", "CloudFunction"),
}
#: The legacy (2006-03-01 without filters) spelling of a function configuration.
LEGACY_FUNCTION_ELEMENT = "LambdaFunctionConfiguration"


@dataclass(frozen=True)
class Caller:
    """Who made the S3 request being served: its address, request id and access key."""

    source_ip: str
    request_id: str
    access_key: str | None


CALLER: ContextVar[Caller | None] = ContextVar("squall_s3_caller", default=None)


@dataclass(frozen=True)
class NotificationConfig:
    """One configuration: a destination (``kind`` function, queue or topic, and its ARN), the event
    patterns it wants and the key filter rules (lower-case name, value) in the order given."""

    kind: str
    id: str
    arn: str
    events: tuple[str, ...]
    rules: tuple[tuple[str, str], ...] = ()

    @property
    def prefix(self) -> str:
        return next((value for name, value in self.rules if name == "prefix"), "")

    @property
    def suffix(self) -> str:
        return next((value for name, value in self.rules if name == "suffix"), "")

    def matches(self, event: str, key: str) -> bool:
        """Whether an object event (``ObjectCreated:Put``: S3's name without ``s3:``) on ``key`` is wanted."""
        return (
            any(event_matches(pattern, event) for pattern in self.events)
            and key.startswith(self.prefix)
            and key.endswith(self.suffix)
        )


def event_matches(pattern: str, event: str) -> bool:
    """``s3:ObjectCreated:*`` matches every ``ObjectCreated:...``; other patterns match themselves."""
    if pattern.endswith(":*"):
        return ("s3:" + event).startswith(pattern[:-1])
    return pattern == "s3:" + event


def _patterns_overlap(first: str, second: str) -> bool:
    if first == second:
        return True
    return any(a.endswith(":*") and b.startswith(a[:-1]) for a, b in ((first, second), (second, first)))


def to_json(configs: list[NotificationConfig]) -> str:
    return json.dumps([asdict(config) for config in configs])


def from_json(raw: str) -> list[NotificationConfig]:
    return [
        NotificationConfig(
            item["kind"],
            item["id"],
            item["arn"],
            tuple(item["events"]),
            tuple((name, value) for name, value in item["rules"]),
        )
        for item in json.loads(raw)
    ]


def parse_configuration(body: bytes) -> list[NotificationConfig]:
    """The configurations of a ``NotificationConfiguration`` document, checked as S3 checks them
    (everything but the destinations, which need the services: ``squall.sources.objects``)."""
    root = parse(body) if body.strip() else ET.Element("NotificationConfiguration")
    if root.tag != "NotificationConfiguration":
        raise MalformedXML()
    configs: list[NotificationConfig] = []
    for kind, (element, target) in ELEMENTS.items():
        elements = root.findall(element)
        if kind == "function":
            elements += root.findall(LEGACY_FUNCTION_ELEMENT)
        for item in elements:
            configs.append(_parse_one(kind, item, target))
    _check_overlaps(configs)
    return configs


def _parse_one(kind: str, item: ET.Element, target: str) -> NotificationConfig:
    arn = text(item, target)
    if not arn and kind == "function":
        arn = text(item, "LambdaFunctionArn")
    events = tuple(event.text or "" for event in item.findall("Event"))
    if not arn or not events:
        raise MalformedXML()
    for event in events:
        if event not in EVENT_NAMES:
            # unverified: localstack's and moto's S3 answer to an unknown event name
            raise InvalidArgument(
                "The event is not supported for notifications", ArgumentName="Event", ArgumentValue=event
            )
    rules: list[tuple[str, str]] = []
    for rule in item.findall("Filter/S3Key/FilterRule"):
        name, value = text(rule, "Name") or "", text(rule, "Value") or ""
        if name.lower() not in ("prefix", "suffix"):
            # unverified: moto's wording of S3's answer to a filter rule name other than prefix/suffix
            raise InvalidArgument(
                "filter rule name must be either prefix or suffix", ArgumentName="FilterRule.Name", ArgumentValue=name
            )
        if any(existing == name.lower() for existing, _ in rules):
            # unverified: S3's answer to two rules of one name
            raise InvalidArgument(
                f"Cannot specify more than one {name.lower()} rule in a filter.",
                ArgumentName="FilterRule.Name",
                ArgumentValue=name,
            )
        rules.append((name.lower(), value))
    return NotificationConfig(kind, text(item, "Id") or _new_id(), arn, events, tuple(rules))


def _new_id() -> str:
    """S3 names an unnamed configuration with a base64'd UUID."""
    return base64.b64encode(str(uuid.uuid4()).encode()).decode()


def _check_overlaps(configs: list[NotificationConfig]) -> None:
    """Two configurations may not both fire for one event on one key."""
    for index, first in enumerate(configs):
        for second in configs[index + 1 :]:
            shared = [(a, b) for a in first.events for b in second.events if _patterns_overlap(a, b)]
            if not shared:
                continue
            prefixes_overlap = first.prefix.startswith(second.prefix) or second.prefix.startswith(first.prefix)
            suffixes_overlap = first.suffix.endswith(second.suffix) or second.suffix.endswith(first.suffix)
            if not (prefixes_overlap and suffixes_overlap):
                continue
            if not first.rules and not second.rules:
                # S3's answer, as quoted in minio/minio#2472.
                raise InvalidArgument(
                    "Configurations overlap. Configurations on the same bucket cannot share a common event type.",
                    ArgumentName="Event",
                    ArgumentValue=", ".join(shared[0]),
                )
            # S3's answer, as quoted in aws-solutions/aws-waf-security-automations#49.
            raise InvalidArgument(
                "Configuration is ambiguously defined. Cannot have overlapping suffixes in two rules if the "
                "prefixes are overlapping for the same event type.",
                ArgumentName="Event",  # unverified: the ArgumentName/Value of this answer
                ArgumentValue=", ".join(shared[0]),
            )


def render(configs: list[NotificationConfig]) -> bytes:
    """The ``NotificationConfiguration`` document GetBucketNotificationConfiguration answers."""
    content: dict[str, Any] = {}
    for kind, (element, target) in ELEMENTS.items():
        content[element] = [
            {
                "Id": config.id,
                target: config.arn,
                "Event": list(config.events),
                "Filter": (
                    {"S3Key": {"FilterRule": [{"Name": name, "Value": value} for name, value in config.rules]}}
                    if config.rules
                    else None
                ),
            }
            for config in configs
            if config.kind == kind
        ]
    return document("NotificationConfiguration", content)
