"""Squall's event-stream encoder read back by botocore's own decoder (what boto3 parses with)."""

from __future__ import annotations

import json
import os

from botocore.eventstream import EventStreamBuffer

from squall.api import eventstream


def test_messages_decode_with_botocore() -> None:
    payload = os.urandom(70_000)
    complete = json.dumps({"ErrorCode": "Error", "ErrorDetails": "boom"}).encode()
    data = eventstream.event("PayloadChunk", payload) + eventstream.event(
        "InvokeComplete", complete, "application/json"
    )
    buffer = EventStreamBuffer()
    # Fed in odd pieces, as they come off a socket.
    for start in range(0, len(data), 1000):
        buffer.add_data(data[start : start + 1000])
    messages = list(buffer)
    assert [m.headers for m in messages] == [
        {":event-type": "PayloadChunk", ":content-type": "application/octet-stream", ":message-type": "event"},
        {":event-type": "InvokeComplete", ":content-type": "application/json", ":message-type": "event"},
    ]
    assert [m.payload for m in messages] == [payload, complete]


def test_an_empty_payload() -> None:
    buffer = EventStreamBuffer()
    buffer.add_data(eventstream.message([], b""))
    (only,) = list(buffer)
    assert (only.headers, only.payload) == ({}, b"")
