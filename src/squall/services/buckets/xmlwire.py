"""S3's XML: rendering response documents and reading request documents.

S3 (rest-xml) lists are "flattened": a list member is its element repeated (``<Contents>`` once
per key), unlike the query protocol's ``<member>`` items. Timestamps in bodies are ISO 8601 with
milliseconds; in headers, HTTP dates.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from xml.sax.saxutils import escape

from squall.services.buckets.errors import MalformedXML

XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/"
_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'


def to_xml(value: Any) -> str:
    """Mappings become elements, a list under a name repeats that element; ``None`` is left out."""
    if isinstance(value, Mapping):
        parts: list[str] = []
        for name, item in value.items():
            items = item if isinstance(item, list) else [item]
            parts.extend(f"<{name}>{to_xml(one)}</{name}>" for one in items if one is not None)
        return "".join(parts)
    if isinstance(value, bool):
        return "true" if value else "false"
    return escape(str(value))


def document(root: str, content: Mapping[str, Any]) -> bytes:
    """A whole response body: ``<root xmlns="...">content</root>``."""
    return f'{_DECLARATION}<{root} xmlns="{XMLNS}">{to_xml(content)}</{root}>'.encode()


def parse(body: bytes) -> ET.Element:
    """A request document with namespaces stripped from tag names; MalformedXML when it is not XML."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        raise MalformedXML() from None
    for element in root.iter():
        if "}" in element.tag:
            element.tag = element.tag.split("}", 1)[1]
    return root


def text(element: ET.Element, name: str) -> str | None:
    child = element.find(name)
    return None if child is None else (child.text or "")


def iso(timestamp: float) -> str:
    """``2026-11-29T06:01:38.123Z``: S3's timestamp format in XML bodies."""
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def http_date(timestamp: float) -> str:
    """``Sun, 29 Nov 2026 06:01:38 GMT`` (whole seconds, as ``Last-Modified`` is)."""
    return format_datetime(datetime.fromtimestamp(int(timestamp), UTC), usegmt=True)


def parse_http_date(value: str) -> float | None:
    """Seconds since the epoch of an HTTP date, or ``None`` when it is not one (then ignored, as S3 does)."""
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
