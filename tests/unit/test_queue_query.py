"""The legacy query protocol's flattened parameters, turned into the JSON protocol's shapes."""

from __future__ import annotations

from urllib.parse import urlencode
from xml.etree import ElementTree as ET

from squall.services.queues import query
from squall.services.queues.errors import QueueDoesNotExist


def test_flattened_lists_maps_and_batch_entries() -> None:
    form = urlencode(
        {
            "Action": "SendMessageBatch",
            "Version": "2012-11-05",
            "QueueUrl": "http://h/000000000000/q",
            "SendMessageBatchRequestEntry.2.Id": "second",
            "SendMessageBatchRequestEntry.2.MessageBody": "b",
            "SendMessageBatchRequestEntry.1.Id": "first",
            "SendMessageBatchRequestEntry.1.MessageBody": "a",
            "SendMessageBatchRequestEntry.1.DelaySeconds": "5",
            "SendMessageBatchRequestEntry.1.MessageAttribute.1.Name": "k",
            "SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.DataType": "String",
            "SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.StringValue": "v",
        }
    ).encode()
    action, params = query.parse(form, b"")
    assert action == "SendMessageBatch"
    assert params == {
        "QueueUrl": "http://h/000000000000/q",
        "Entries": [
            {
                "Id": "first",
                "MessageBody": "a",
                "DelaySeconds": 5,
                "MessageAttributes": {"k": {"DataType": "String", "StringValue": "v"}},
            },
            {"Id": "second", "MessageBody": "b"},
        ],
    }
    _, params = query.parse(
        b"",
        b"Action=CreateQueue&QueueName=q&Attribute.1.Name=DelaySeconds&Attribute.1.Value=3&Tag.1.Key=t&Tag.1.Value=v",
    )
    assert params == {"QueueName": "q", "Attributes": {"DelaySeconds": "3"}, "tags": {"t": "v"}}
    _, params = query.parse(
        b"Action=ReceiveMessage&AttributeName.2=SenderId&AttributeName.1=All&MaxNumberOfMessages=3", b""
    )
    assert params == {"AttributeNames": ["All", "SenderId"], "MaxNumberOfMessages": 3}


def test_results_and_errors_as_xml() -> None:
    body = query.render("GetQueueAttributes", {"Attributes": {"VisibilityTimeout": "30"}}, "rid")
    root = ET.fromstring(body)
    ns = {"q": query.XMLNS}
    assert root.findtext("q:GetQueueAttributesResult/q:Attribute/q:Name", namespaces=ns) == "VisibilityTimeout"
    assert root.findtext("q:ResponseMetadata/q:RequestId", namespaces=ns) == "rid"
    assert ET.fromstring(query.render("DeleteQueue", {}, "rid")).find("q:DeleteQueueResult", ns) is None
    error = ET.fromstring(query.render_error(QueueDoesNotExist(), "rid"))
    assert error.findtext("q:Error/q:Code", namespaces=ns) == "AWS.SimpleQueueService.NonExistentQueue"
    assert (
        error.findtext("q:Error/q:Message", namespaces=ns)
        == "The specified queue does not exist for this wsdl version."
    )
