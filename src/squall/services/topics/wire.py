"""SNS's query-protocol shapes that ``services/query.py`` does not cover: maps
(``Name.entry.N.key``/``value``, message attributes ``Name.entry.N.Name``/``Value.*``), nested batch
entries, and maps rendered as ``<entry><key/><value/></entry>``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from xml.sax.saxutils import escape

from squall.services import query


def nested(params: Mapping[str, str], prefix: str) -> dict[str, str]:
    """The parameters under ``prefix.``, with the prefix taken off."""
    start = prefix + "."
    return {key[len(start) :]: value for key, value in params.items() if key.startswith(start)}


def string_map(params: Mapping[str, str], name: str) -> dict[str, str]:
    """``Name.entry.N.key=...&Name.entry.N.value=...`` as a dict."""
    result: dict[str, str] = {}
    index = 1
    while f"{name}.entry.{index}.key" in params:
        result[params[f"{name}.entry.{index}.key"]] = params.get(f"{name}.entry.{index}.value", "")
        index += 1
    return result


def attribute_map(params: Mapping[str, str], name: str) -> dict[str, dict[str, str]]:
    """MessageAttributes: ``Name.entry.N.Name`` and ``Name.entry.N.Value.DataType/StringValue/BinaryValue``."""
    result: dict[str, dict[str, str]] = {}
    index = 1
    while f"{name}.entry.{index}.Name" in params:
        result[params[f"{name}.entry.{index}.Name"]] = nested(params, f"{name}.entry.{index}.Value")
        index += 1
    return result


def entries(params: Mapping[str, str], name: str) -> list[dict[str, str]]:
    """A list of structures (``Name.member.N.*``), each as its own flat parameter dict."""
    result: list[dict[str, str]] = []
    index = 1
    while True:
        item = nested(params, f"{name}.member.{index}")
        if not item:
            return result
        result.append(item)
        index += 1


def map_xml(name: str, values: Mapping[str, str]) -> str:
    items = "".join(
        f"<entry><key>{escape(key)}</key><value>{escape(value)}</value></entry>" for key, value in values.items()
    )
    return f"<{name}>{items}</{name}>"


def document(action: str, inner: str, request_id: str, xmlns: str) -> bytes:
    """A response whose result is already XML (``inner``)."""
    return (
        f'<{action}Response xmlns="{xmlns}"><{action}Result>{inner}</{action}Result>'
        f"<ResponseMetadata><RequestId>{escape(request_id)}</RequestId></ResponseMetadata></{action}Response>"
    ).encode()


def result_xml(value: Any) -> str:
    return query.to_xml(value)
