"""CloudWatch Logs' read side over the metadata store's log lines: groups, streams, events.

A log group exists while it holds lines (Lambda creates ``/aws/lambda/<fn>`` with the first one);
its creation time is its oldest line's. Paging tokens are Squall's own but keep AWS's shapes:
GetLogEvents answers ``f/<56 digits>`` and ``b/<56 digits>`` and, at the end of a stream, hands back
the forward token it was given, which is how clients know to stop.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from squall.errors import SquallError
from squall.models import LogEvent
from squall.services.logs.patterns import InvalidParameter, compile_pattern
from squall.stores.base import LogStreamSummary, MetadataStore

#: GetLogEvents and FilterLogEvents answer at most this many bytes of events (26 bytes overhead each).
MAX_RESPONSE_BYTES = 1_048_576
EVENT_OVERHEAD = 26
#: FilterLogEvents reads at most this many lines per call, then hands out a token to go on.
FILTER_SCAN_LIMIT = 50_000
_BATCH = 1000
_EVENT_TOKEN = re.compile(r"^([fb])/(\d{1,56})$")


class ResourceNotFound(SquallError, LookupError):
    code = "ResourceNotFoundException"
    status = 400
    error_type = "User"


def no_group() -> ResourceNotFound:
    return ResourceNotFound("The specified log group does not exist.")


def invalid_token() -> InvalidParameter:
    return InvalidParameter("The specified nextToken is invalid.")


def _encode_offset(offset: int) -> str:
    return base64.urlsafe_b64encode(f"squall:{offset}".encode()).decode()


def _decode_offset(token: str | None) -> int:
    if token is None:
        return 0
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, ValueError):
        raise invalid_token() from None
    prefix, _, number = text.partition(":")
    if prefix != "squall" or not number.isdigit():
        raise invalid_token()
    return int(number)


def _page(items: list[Any], limit: int, token: str | None) -> tuple[list[Any], str | None]:
    start = _decode_offset(token)
    if start > len(items):
        raise invalid_token()
    end = start + limit
    return items[start:end], _encode_offset(end) if end < len(items) else None


def _event_token(direction: str, event_id: int) -> str:
    return f"{direction}/{max(event_id, 0):056d}"


def _within_bytes(rows: list[tuple[int, str, LogEvent]]) -> list[tuple[int, str, LogEvent]]:
    """The leading rows that fit in one response."""
    total = 0
    for index, (_, _, event) in enumerate(rows):
        total += len(event.message.encode()) + EVENT_OVERHEAD
        if total > MAX_RESPONSE_BYTES:
            return rows[: max(index, 1)]
    return rows


class LogsService:
    """DescribeLogGroups, DescribeLogStreams, GetLogEvents, FilterLogEvents, DeleteLogGroup."""

    def __init__(self, store: MetadataStore, account_id: str, region: str) -> None:
        self.store = store
        self.account_id = account_id
        self.region = region

    def group_arn(self, group: str) -> str:
        return f"arn:aws:logs:{self.region}:{self.account_id}:log-group:{group}"

    def describe_log_groups(
        self, prefix: str, limit: int, token: str | None, pattern: str | None = None
    ) -> dict[str, Any]:
        """Groups by name prefix or, with ``pattern``, by a case-insensitive substring of the name."""
        found = self.store.log_groups(prefix)
        if pattern:
            found = [group for group in found if pattern.lower() in group.name.lower()]
        page, next_token = _page(found, limit, token)
        groups = [
            {
                "logGroupName": group.name,
                "creationTime": group.first_timestamp,
                "metricFilterCount": 0,
                "arn": f"{self.group_arn(group.name)}:*",
                "storedBytes": group.stored_bytes,
                "logGroupClass": "STANDARD",
                "logGroupArn": self.group_arn(group.name),
            }
            for group in page
        ]
        return _without_none({"logGroups": groups, "nextToken": next_token})

    def _streams(self, group: str) -> list[LogStreamSummary]:
        streams = self.store.log_streams(group)
        if not streams:
            raise no_group()
        return streams

    def describe_log_streams(
        self, group: str, prefix: str | None, order_by: str, descending: bool, limit: int, token: str | None
    ) -> dict[str, Any]:
        if prefix is not None and order_by == "LastEventTime":
            raise InvalidParameter("Cannot order by LastEventTime with a logStreamNamePrefix.")
        streams = self._streams(group)
        if prefix is not None:
            streams = [stream for stream in streams if stream.name.startswith(prefix)]
        if order_by == "LastEventTime":
            streams.sort(key=lambda stream: (stream.last_timestamp, stream.name))
        if descending:
            streams.reverse()
        page, next_token = _page(streams, limit, token)
        described = [
            {
                "logStreamName": stream.name,
                "creationTime": stream.first_timestamp,
                "firstEventTimestamp": stream.first_timestamp,
                "lastEventTimestamp": stream.last_timestamp,
                "lastIngestionTime": stream.last_timestamp,
                "arn": f"{self.group_arn(group)}:log-stream:{stream.name}",
                "storedBytes": 0,  # deprecated by CloudWatch Logs, which reports 0 too
            }
            for stream in page
        ]
        return _without_none({"logStreams": described, "nextToken": next_token})

    def get_log_events(
        self,
        group: str,
        stream: str,
        start_ms: int | None,
        end_ms: int | None,
        token: str | None,
        limit: int,
        start_from_head: bool,
    ) -> dict[str, Any]:
        if stream not in {s.name for s in self._streams(group)}:
            raise ResourceNotFound("The specified log stream does not exist.")
        direction, cursor = "", 0
        if token is not None:
            match = _EVENT_TOKEN.match(token)
            if match is None:
                raise invalid_token()
            direction, cursor = match.group(1), int(match.group(2))
        streams = [stream]
        if direction == "f" or (not direction and start_from_head):
            rows = self.store.log_event_range(group, streams, start_ms, end_ms, after_id=cursor, limit=limit)
            rows = _within_bytes(rows)
        else:
            before = cursor if direction == "b" else None
            newest = self.store.log_event_range(
                group, streams, start_ms, end_ms, before_id=before, limit=limit, newest_first=True
            )
            rows = list(reversed(_within_bytes(newest)))
        if rows:
            forward, backward = _event_token("f", rows[-1][0]), _event_token("b", rows[0][0])
        elif direction == "b":
            forward, backward = _event_token("f", cursor - 1), _event_token("b", cursor)
        else:
            forward, backward = _event_token("f", cursor), _event_token("b", cursor + 1)
        events = [
            {"timestamp": event.timestamp, "message": event.message, "ingestionTime": event.timestamp}
            for _, _, event in rows
        ]
        return {"events": events, "nextForwardToken": forward, "nextBackwardToken": backward}

    def filter_log_events(
        self,
        group: str,
        stream_names: list[str] | None,
        stream_prefix: str | None,
        start_ms: int | None,
        end_ms: int | None,
        pattern: str | None,
        limit: int,
        token: str | None,
    ) -> dict[str, Any]:
        if stream_names is not None and stream_prefix is not None:
            raise InvalidParameter("logStreamNames and logStreamNamePrefix are mutually exclusive.")
        matches = compile_pattern(pattern)
        streams = self._streams(group)
        selected: list[str] | None = stream_names
        if stream_prefix is not None:
            selected = [stream.name for stream in streams if stream.name.startswith(stream_prefix)]
        after = _decode_offset(token)  # the id of the last line an earlier page read
        found: list[tuple[int, str, LogEvent]] = []
        scanned = 0
        while len(found) < limit and scanned < FILTER_SCAN_LIMIT:
            rows = self.store.log_event_range(group, selected, start_ms, end_ms, after_id=after, limit=_BATCH)
            for row in rows:
                scanned += 1
                after = row[0]
                if matches(row[2].message):
                    found.append(row)
                if len(found) == limit or scanned == FILTER_SCAN_LIMIT:
                    break
            if len(rows) < _BATCH:
                break
        kept = _within_bytes(found)
        if len(kept) < len(found):
            after = kept[-1][0]
        more = bool(self.store.log_event_range(group, selected, start_ms, end_ms, after_id=after, limit=1))
        next_token = _encode_offset(after) if more else None
        events = [
            {
                "logStreamName": stream,
                "timestamp": event.timestamp,
                "message": event.message,
                "ingestionTime": event.timestamp,
                "eventId": f"{event_id:056d}",
            }
            for event_id, stream, event in kept
        ]
        return _without_none({"events": events, "searchedLogStreams": [], "nextToken": next_token})

    def delete_log_group(self, group: str) -> None:
        if not self.store.delete_log_group(group):
            raise no_group()


def _without_none(body: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if value is not None}
