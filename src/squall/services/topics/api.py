"""SNS's query-protocol API (form-encoded ``Action=...&Version=2010-03-31``, XML answers)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.types import Receive, Scope, Send

from squall.services import query
from squall.services.topics import messages as msgs
from squall.services.topics import wire
from squall.services.topics.errors import (
    BatchEntryIdsNotDistinct,
    BatchRequestTooLong,
    EmptyBatchRequest,
    InvalidAction,
    InvalidBatchEntryId,
    InvalidParameter,
    ParameterValueInvalid,
    TooManyEntriesInBatchRequest,
)
from squall.services.topics.messages import Message
from squall.services.topics.models import Draft
from squall.services.topics.service import TopicService

XMLNS = "http://sns.amazonaws.com/doc/2010-03-31/"
VERSION = "2010-03-31"
MAX_BATCH = 10
_ENTRY_ID = re.compile(r"[A-Za-z0-9_-]{1,80}")

Params = dict[str, str]
#: An action's handler: parameters -> the XML inside ``<{Action}Result>`` (None: no result element).
Handler = Callable[[Params], Awaitable[str | None]]


def _required(params: Params, name: str) -> str:
    value = params.get(name)
    if value is None:
        # botocore checks required members itself; this answers other clients.
        raise InvalidParameter(f"Invalid parameter: {name}")  # unverified: wording
    return value


def _draft(params: Params) -> Draft:
    """Publish's (or a batch entry's) message, checked as far as it can be without the topic."""
    message = params.get("Message")
    subject = params.get("Subject")
    structure = msgs.check_message(message, params.get("MessageStructure"), subject)
    assert message is not None
    attributes = msgs.message_attributes(wire.attribute_map(params, "MessageAttributes"))
    if msgs.size_of(message, attributes) > msgs.MAX_MESSAGE_BYTES:
        raise InvalidParameter("Invalid parameter: Message too long")
    return Draft(
        message=message,
        subject=subject,
        attributes=attributes,
        structure=structure,
        group_id=params.get("MessageGroupId") or None,
        dedup_id=params.get("MessageDeduplicationId"),
    )


class SnsApi:
    """SNS's ASGI app over a ``TopicService``."""

    def __init__(self, topics: TopicService) -> None:
        self.topics = topics
        self._actions: dict[str, Handler] = {
            "CreateTopic": self.create_topic,
            "DeleteTopic": self.delete_topic,
            "ListTopics": self.list_topics,
            "GetTopicAttributes": self.get_topic_attributes,
            "SetTopicAttributes": self.set_topic_attributes,
            "TagResource": self.tag_resource,
            "UntagResource": self.untag_resource,
            "ListTagsForResource": self.list_tags,
            "Subscribe": self.subscribe,
            "ConfirmSubscription": self.confirm_subscription,
            "Unsubscribe": self.unsubscribe,
            "ListSubscriptions": self.list_subscriptions,
            "ListSubscriptionsByTopic": self.list_subscriptions_by_topic,
            "GetSubscriptionAttributes": self.get_subscription_attributes,
            "SetSubscriptionAttributes": self.set_subscription_attributes,
            "Publish": self.publish,
            "PublishBatch": self.publish_batch,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        params = query.form(scope)
        action = params.get("Action", "")
        handler = self._actions.get(action)
        if handler is None:
            raise InvalidAction(f"Could not find operation {action} for version {params.get('Version', VERSION)}")
        inner = await handler(params)
        request_id = scope.get("squall.request_id", "")
        body = (
            query.render(action, None, request_id, XMLNS)
            if inner is None
            else wire.document(action, inner, request_id, XMLNS)
        )
        await query.send_xml(send, body)

    async def _call(self, function: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(function, *args)

    # --- topics -------------------------------------------------------------------------------------
    async def create_topic(self, params: Params) -> str:
        tags = {tag["Key"]: tag.get("Value", "") for tag in query.members(params, "Tags", ("Key", "Value"))}
        arn = await self._call(
            self.topics.create_topic, _required(params, "Name"), wire.string_map(params, "Attributes"), tags
        )
        return wire.result_xml({"TopicArn": arn})

    async def delete_topic(self, params: Params) -> None:
        await self._call(self.topics.delete_topic, _required(params, "TopicArn"))

    async def list_topics(self, params: Params) -> str:
        arns, token = await self._call(self.topics.list_topics, params.get("NextToken"))
        return wire.result_xml({"Topics": [{"TopicArn": arn} for arn in arns], "NextToken": token})

    async def get_topic_attributes(self, params: Params) -> str:
        attributes = await self._call(self.topics.topic_attributes, _required(params, "TopicArn"))
        return wire.map_xml("Attributes", attributes)

    async def set_topic_attributes(self, params: Params) -> None:
        await self._call(
            self.topics.set_topic_attribute,
            _required(params, "TopicArn"),
            _required(params, "AttributeName"),
            params.get("AttributeValue", ""),
        )

    async def tag_resource(self, params: Params) -> str:
        tags = {tag["Key"]: tag.get("Value", "") for tag in query.members(params, "Tags", ("Key", "Value"))}
        await self._call(self.topics.change_tags, _required(params, "ResourceArn"), tags, [])
        return ""

    async def untag_resource(self, params: Params) -> str:
        keys = query.members(params, "TagKeys")
        await self._call(self.topics.change_tags, _required(params, "ResourceArn"), {}, keys)
        return ""

    async def list_tags(self, params: Params) -> str:
        tags = await self._call(self.topics.tags, _required(params, "ResourceArn"))
        return wire.result_xml({"Tags": [{"Key": key, "Value": value} for key, value in tags.items()]})

    # --- subscriptions ------------------------------------------------------------------------------
    async def subscribe(self, params: Params) -> str:
        subscription = await self._call(
            self.topics.subscribe,
            _required(params, "TopicArn"),
            _required(params, "Protocol"),
            params.get("Endpoint", ""),
            wire.string_map(params, "Attributes"),
        )
        show = subscription.confirmed or params.get("ReturnSubscriptionArn", "").lower() == "true"
        return wire.result_xml({"SubscriptionArn": subscription.arn if show else "pending confirmation"})

    async def confirm_subscription(self, params: Params) -> str:
        arn = await self._call(self.topics.confirm, _required(params, "TopicArn"), _required(params, "Token"))
        return wire.result_xml({"SubscriptionArn": arn})

    async def unsubscribe(self, params: Params) -> None:
        await self._call(self.topics.unsubscribe, _required(params, "SubscriptionArn"))

    async def list_subscriptions(self, params: Params) -> str:
        return await self._subscriptions(None, params.get("NextToken"))

    async def list_subscriptions_by_topic(self, params: Params) -> str:
        return await self._subscriptions(_required(params, "TopicArn"), params.get("NextToken"))

    async def _subscriptions(self, topic_arn: str | None, token: str | None) -> str:
        subscriptions, next_token = await self._call(self.topics.list_subscriptions, topic_arn, token)
        listed = [
            {
                "SubscriptionArn": sub.listed_arn,
                "Owner": sub.owner,
                "Protocol": sub.protocol,
                "Endpoint": sub.endpoint,
                "TopicArn": sub.topic_arn,
            }
            for sub in subscriptions
        ]
        return wire.result_xml({"Subscriptions": listed, "NextToken": next_token})

    async def get_subscription_attributes(self, params: Params) -> str:
        attributes = await self._call(self.topics.subscription_attributes, _required(params, "SubscriptionArn"))
        return wire.map_xml("Attributes", attributes)

    async def set_subscription_attributes(self, params: Params) -> None:
        await self._call(
            self.topics.set_subscription_attribute,
            _required(params, "SubscriptionArn"),
            _required(params, "AttributeName"),
            params.get("AttributeValue", ""),
        )

    # --- publishing ---------------------------------------------------------------------------------
    async def publish(self, params: Params) -> str:
        topic_arn = params.get("TopicArn") or params.get("TargetArn")
        if not topic_arn:
            # unverified: wording
            raise InvalidParameter("Invalid parameter: TopicArn or TargetArn Reason: no value for required parameter")
        field = "TopicArn" if params.get("TopicArn") else "TargetArn"
        self.topics.check_topic_arn(topic_arn, field)
        draft = _draft(params)
        (result,) = await self._call(self.topics.publish, topic_arn, [draft])
        if isinstance(result, Exception):
            raise result
        return wire.result_xml({"MessageId": result.message_id, "SequenceNumber": result.sequence_number})

    async def publish_batch(self, params: Params) -> str:
        topic_arn = _required(params, "TopicArn")
        self.topics.check_topic_arn(topic_arn)
        entries = wire.entries(params, "PublishBatchRequestEntries")
        if not entries:
            raise EmptyBatchRequest("The batch request doesn't contain any entries.")  # unverified: wording
        if len(entries) > MAX_BATCH:
            raise TooManyEntriesInBatchRequest("The batch request contains more entries than permissible.")
        ids = [entry.get("Id", "") for entry in entries]
        if len(set(ids)) != len(ids):
            raise BatchEntryIdsNotDistinct("Two or more batch entries in the request have the same Id.")
        if any(not _ENTRY_ID.fullmatch(entry_id) for entry_id in ids):
            # unverified: wording (SQS's message for the same rule)
            raise InvalidBatchEntryId(
                "A batch entry id can only contain alphanumeric characters, hyphens and underscores. "
                "It can be at most 80 letters long."
            )
        total = sum(len(entry.get("Message", "").encode()) for entry in entries)
        if total > msgs.MAX_MESSAGE_BYTES:
            raise BatchRequestTooLong("The length of all the messages put together is more than the limit.")
        drafts: list[tuple[str, Draft]] = []
        failed: list[dict[str, Any]] = []
        for entry_id, entry in zip(ids, entries, strict=True):
            try:
                drafts.append((entry_id, _draft(entry)))
            except (InvalidParameter, ParameterValueInvalid) as exc:
                failed.append({"Id": entry_id, "Code": exc.code, "Message": exc.message, "SenderFault": True})
        results = await self._call(self.topics.publish, topic_arn, [draft for _, draft in drafts])
        successful: list[dict[str, Any]] = []
        for (entry_id, _), result in zip(drafts, results, strict=True):
            if isinstance(result, Message):
                successful.append(
                    {"Id": entry_id, "MessageId": result.message_id, "SequenceNumber": result.sequence_number}
                )
            else:
                failed.append({"Id": entry_id, "Code": result.code, "Message": result.message, "SenderFault": True})
        order = {entry_id: index for index, entry_id in enumerate(ids)}
        failed.sort(key=lambda item: order[item["Id"]])
        return wire.result_xml({"Successful": successful, "Failed": failed})
