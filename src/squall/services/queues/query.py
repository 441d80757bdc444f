"""SQS's legacy query protocol (form-encoded ``Action=...``, XML answers), for SDKs older than SQS's
move to JSON. Requests are translated into the JSON protocol's parameters and the handlers' results
back into the query protocol's XML, so both protocols share one implementation.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl
from xml.etree import ElementTree as ET

from squall.errors import SquallError
from squall.services.queues.errors import QueueDoesNotExist

XMLNS = "http://queue.amazonaws.com/doc/2012-11-05/"
CONTENT_TYPE = b"text/xml"
_LISTS = {
    "AttributeName": "AttributeNames",
    "MessageAttributeName": "MessageAttributeNames",
    "MessageSystemAttributeName": "MessageSystemAttributeNames",
    "TagKey": "TagKeys",
}
_INTEGERS = {"MaxNumberOfMessages", "VisibilityTimeout", "WaitTimeSeconds", "DelaySeconds", "MaxResults"}
_ENTRY_SUFFIX = "RequestEntry"
_ENTRY_RESULTS = {
    "SendMessageBatch": "SendMessageBatchResultEntry",
    "DeleteMessageBatch": "DeleteMessageBatchResultEntry",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibilityBatchResultEntry",
}


def is_query(headers: dict[str, str], query_string: bytes) -> bool:
    if "x-amz-target" in headers:
        return False
    return headers.get("content-type", "").startswith("application/x-www-form-urlencoded") or (
        b"Action=" in query_string
    )


def parse(body: bytes, query_string: bytes) -> tuple[str, dict[str, Any]]:
    """The action and its parameters in the JSON protocol's shape."""
    pairs = parse_qsl(query_string.decode("utf-8", "replace"), keep_blank_values=True)
    pairs += parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    tree: dict[str, Any] = {}
    for key, value in pairs:
        node = tree
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        else:
            node[last] = value
    action = str(tree.pop("Action", ""))
    tree.pop("Version", None)
    return action, _shape(tree, action)


def _ordered(numbered: Any) -> list[Any]:
    if not isinstance(numbered, dict):
        return [numbered]
    return [numbered[k] for k in sorted(numbered, key=lambda k: int(k) if k.isdigit() else 0)]


def _shape(tree: dict[str, Any], action: str) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for key, value in tree.items():
        if key == "Attribute":
            params["Attributes"] = {a.get("Name"): a.get("Value", "") for a in _ordered(value)}
        elif key == "Tag":
            params["tags" if action == "CreateQueue" else "Tags"] = {
                t.get("Key"): t.get("Value", "") for t in _ordered(value)
            }
        elif key in ("MessageAttribute", "MessageSystemAttribute"):
            params[key + "s"] = {a.get("Name"): a.get("Value", {}) for a in _ordered(value)}
        elif key in _LISTS:
            params[_LISTS[key]] = _ordered(value)
        elif key.endswith(_ENTRY_SUFFIX):
            params["Entries"] = [_shape(entry, action) for entry in _ordered(value)]
        elif key in _INTEGERS and isinstance(value, str) and value.lstrip("-").isdigit():
            params[key] = int(value)
        else:
            params[key] = value
    return params


def render(action: str, result: dict[str, Any], request_id: str) -> bytes:
    root = ET.Element(f"{action}Response", xmlns=XMLNS)
    if result:
        _fill(ET.SubElement(root, f"{action}Result"), result, action)
    ET.SubElement(ET.SubElement(root, "ResponseMetadata"), "RequestId").text = request_id
    return _bytes(root)


def _fill(parent: ET.Element, values: dict[str, Any], action: str) -> None:
    for key, value in values.items():
        if key == "Attributes":
            for name, text in value.items():
                item = ET.SubElement(parent, "Attribute")
                ET.SubElement(item, "Name").text = name
                ET.SubElement(item, "Value").text = str(text)
        elif key == "Tags":
            for name, text in value.items():
                item = ET.SubElement(parent, "Tag")
                ET.SubElement(item, "Key").text = name
                ET.SubElement(item, "Value").text = str(text)
        elif key == "MessageAttributes":
            for name, attribute in value.items():
                item = ET.SubElement(parent, "MessageAttribute")
                ET.SubElement(item, "Name").text = name
                _fill(ET.SubElement(item, "Value"), attribute, action)
        elif key in ("QueueUrls", "queueUrls"):
            for url in value:
                ET.SubElement(parent, "QueueUrl").text = url
        elif key == "Messages":
            for message in value:
                _fill(ET.SubElement(parent, "Message"), message, action)
        elif key in ("Successful", "Failed"):
            tag = _ENTRY_RESULTS.get(action, "ResultEntry") if key == "Successful" else "BatchResultErrorEntry"
            for entry in value:
                _fill(ET.SubElement(parent, tag), entry, action)
        elif isinstance(value, bool):
            ET.SubElement(parent, key).text = "true" if value else "false"
        else:
            ET.SubElement(parent, key).text = str(value)


def render_error(exc: SquallError, request_id: str) -> bytes:
    root = ET.Element("ErrorResponse", xmlns=XMLNS)
    error = ET.SubElement(root, "Error")
    ET.SubElement(error, "Type").text = "Sender" if exc.status < 500 else "Receiver"
    ET.SubElement(error, "Code").text = str(getattr(exc, "query_code", exc.code))
    message = exc.message
    if isinstance(exc, QueueDoesNotExist):
        # What real SQS says on the query protocol (its JSON answer drops "for this wsdl version").
        message = "The specified queue does not exist for this wsdl version."
    ET.SubElement(error, "Message").text = message
    ET.SubElement(error, "Detail")
    ET.SubElement(root, "RequestId").text = request_id
    return _bytes(root)


def _bytes(root: ET.Element) -> bytes:
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data
