"""``squall deploy``'s types for the services around functions: topics, buckets, rules, schedules, URLs.

Each type calls Squall's own SNS, S3, EventBridge, Scheduler and Lambda APIs with boto3, as
CloudFormation would call AWS, and gives the ``Ref`` and ``Fn::GetAtt`` values AWS documents for it.
Nested properties are checked too: a member Squall cannot honour (an S3 ``EventBridgeConfiguration``,
a rule target's ``InputTransformer``...) stops the deploy with an error naming the resource and the
property path. The three policy types are deployed, but Squall does not enforce them: each says so
in the deploy output (``ResourceType.notice``).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from squall.templates.errors import TemplateError
from squall.templates.resources import Context, Deployed, ResourceType, _text

_GONE = frozenset({"ResourceNotFoundException", "NotFound", "NotFoundException", "NoSuchBucket",
                   "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})  # fmt: skip


def _gone_ok(call: Callable[..., Any], **kwargs: Any) -> None:
    """Make an API call for which "it is not there" is success (deletes are idempotent)."""
    from botocore.exceptions import ClientError

    try:
        call(**kwargs)
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in _GONE:
            raise


def _true(value: Any) -> bool:
    return str(value).lower() == "true"


def _refuse(kind: ResourceType, logical: str, path: str) -> TemplateError:
    return TemplateError(f"Resource {logical} ({kind.type_name}): Squall does not support the property {path}")


def _check_members(kind: ResourceType, logical: str, path: str, value: Any, allowed: Iterable[str]) -> None:
    """Refuse any member of the mapping ``value`` (at ``path``) that is not in ``allowed``."""
    if not isinstance(value, dict):
        raise TemplateError(f"Resource {logical} ({kind.type_name}): {path} must be an object")
    for member in sorted(set(value) - set(allowed)):
        raise _refuse(kind, logical, f"{path}.{member}")


def _changed(old: Mapping[str, Any], new: Mapping[str, Any], keys: Iterable[str]) -> bool:
    return any(old.get(key) != new.get(key) for key in keys)


# --- SNS ----------------------------------------------------------------------------------------
class Topic(ResourceType):
    """AWS::SNS::Topic: attributes, inline subscriptions and tags change in place; a new name replaces it."""

    type_name = "AWS::SNS::Topic"
    _attributes = ("DisplayName", "ContentBasedDeduplication", "KmsMasterKeyId", "SignatureVersion", "TracingConfig",
                   "FifoThroughputScope", "ArchivePolicy", "DataProtectionPolicy")  # fmt: skip
    _fixed = ("TopicName", "FifoTopic")
    known = frozenset({*_attributes, *_fixed, "Subscription", "Tags"})

    def check(self, logical: str, props: Mapping[str, Any]) -> None:
        super().check(logical, props)
        for i, subscription in enumerate(props.get("Subscription") or []):
            _check_members(self, logical, f"Subscription[{i}]", subscription, ("Endpoint", "Protocol"))

    def create(self, logical: str, props: dict[str, Any], ctx: Context) -> Deployed:
        sns = ctx.client("sns")
        fifo = _true(props.get("FifoTopic"))
        name = props.get("TopicName") or ctx.name_for(logical, 251 if fifo else 256) + (".fifo" if fifo else "")
        attributes = {key: _text(props[key]) for key in self._attributes if key in props}
        if fifo:
            attributes["FifoTopic"] = "true"
        kwargs = {"Tags": props["Tags"]} if props.get("Tags") else {}
        arn = sns.create_topic(Name=name, Attributes=attributes, **kwargs)["TopicArn"]
        self._subscribe(sns, arn, props.get("Subscription") or [])
        return Deployed(type=self.type_name, physical_id=arn, ref=arn, attributes={"TopicArn": arn, "TopicName": name})

    def update(self, logical: str, old: Deployed, props: dict[str, Any], ctx: Context) -> Deployed:
        dropped = [key for key in self._attributes if key in old.properties and key not in props]
        if _changed(old.properties, props, self._fixed) or set(dropped) - {"DisplayName"}:
            return super().update(logical, old, props, ctx)
        sns, arn = ctx.client("sns"), old.physical_id
        for key in self._attributes:
            if key in props and props[key] != old.properties.get(key):
                sns.set_topic_attributes(TopicArn=arn, AttributeName=key, AttributeValue=_text(props[key]))
        if dropped:  # only DisplayName can be cleared; dropping another attribute replaces the topic
            sns.set_topic_attributes(TopicArn=arn, AttributeName="DisplayName", AttributeValue="")
        wanted = [(str(s["Protocol"]), str(s["Endpoint"])) for s in props.get("Subscription") or []]
        had = [(str(s["Protocol"]), str(s["Endpoint"])) for s in old.properties.get("Subscription") or []]
        listed = sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=arn)
        for page in listed:
            for sub in page["Subscriptions"]:
                pair = (sub["Protocol"], sub["Endpoint"])
                if pair in had and pair not in wanted and sub["SubscriptionArn"].startswith("arn:"):
                    sns.unsubscribe(SubscriptionArn=sub["SubscriptionArn"])
        self._subscribe(sns, arn, [{"Protocol": p, "Endpoint": e} for p, e in wanted if (p, e) not in had])
        old_tags = {t["Key"]: t["Value"] for t in old.properties.get("Tags") or []}
        new_tags = {t["Key"]: t["Value"] for t in props.get("Tags") or []}
        if set(old_tags) - set(new_tags):
            sns.untag_resource(ResourceArn=arn, TagKeys=sorted(set(old_tags) - set(new_tags)))
        if new_tags and new_tags != old_tags:
            sns.tag_resource(ResourceArn=arn, Tags=[{"Key": k, "Value": v} for k, v in new_tags.items()])
        return Deployed(type=self.type_name, physical_id=arn, ref=arn, attributes=dict(old.attributes))

    def _subscribe(self, sns: Any, arn: str, subscriptions: Iterable[Mapping[str, Any]]) -> None:
        for sub in subscriptions:
            sns.subscribe(TopicArn=arn, Protocol=sub["Protocol"], Endpoint=sub["Endpoint"], ReturnSubscriptionArn=True)

    def delete(self, old: Deployed, ctx: Context) -> None:
        _gone_ok(ctx.client("sns").delete_topic, TopicArn=old.physical_id)


class Subscription(ResourceType):
    """AWS::SNS::Subscription: its attributes change in place; a new topic, protocol or endpoint replaces it."""

    type_name = "AWS::SNS::Subscription"
    _fixed = ("TopicArn", "Protocol", "Endpoint", "Region")
    _attributes = ("FilterPolicy", "FilterPolicyScope", "RawMessageDelivery", "DeliveryPolicy", "RedrivePolicy",
                   "ReplayPolicy", "SubscriptionRoleArn")  # fmt: skip
    #: What an attribute is set to when the template drops it; dropping any other replaces the subscription.
    _cleared = {"FilterPolicy": "", "RawMessageDelivery": "false"}
    known = frozenset({*_fixed, *_attributes})

    def create(self, logical: str, props: dict[str, Any], ctx: Context) -> Deployed:
        if props.get("Region", ctx.region) != ctx.region:
            raise TemplateError(
                f"Resource {logical} ({self.type_name}): Region {props['Region']} is not this server's "
                f"region ({ctx.region}); Squall has one region"
            )
        attributes = {key: _text(props[key]) for key in self._attributes if key in props}
        arn = ctx.client("sns").subscribe(
            TopicArn=props["TopicArn"],
            Protocol=props["Protocol"],
            Endpoint=props["Endpoint"],
            Attributes=attributes,
            ReturnSubscriptionArn=True,
        )["SubscriptionArn"]
        return Deployed(type=self.type_name, physical_id=arn, ref=arn)

    def update(self, logical: str, old: Deployed, props: dict[str, Any], ctx: Context) -> Deployed:
        dropped = {key for key in self._attributes if key in old.properties and key not in props}
        if _changed(old.properties, props, self._fixed) or dropped - set(self._cleared):
            return super().update(logical, old, props, ctx)
        sns = ctx.client("sns")
        for key in dropped:
            sns.set_subscription_attributes(
                SubscriptionArn=old.physical_id, AttributeName=key, AttributeValue=self._cleared[key]
            )
        for key in self._attributes:
            if key in props and props[key] != old.properties.get(key):
                value = _text(props[key])
                sns.set_subscription_attributes(
                    SubscriptionArn=old.physical_id, AttributeName=key, AttributeValue=value
                )
        return Deployed(type=self.type_name, physical_id=old.physical_id, ref=old.physical_id)

    def delete(self, old: Deployed, ctx: Context) -> None:
        _gone_ok(ctx.client("sns").unsubscribe, SubscriptionArn=old.physical_id)


# --- S3 -----------------------------------------------------------------------------------------
#: CloudFormation's notification lists, and the S3 API's names for them and for their target.
_NOTIFICATIONS = {
    "LambdaConfigurations": ("LambdaFunctionConfigurations", "Function", "LambdaFunctionArn"),
    "QueueConfigurations": ("QueueConfigurations", "Queue", "QueueArn"),
    "TopicConfigurations": ("TopicConfigurations", "Topic", "TopicArn"),
}


class Bucket(ResourceType):
    """AWS::S3::Bucket: notifications and website change in place; a new name replaces it.

    Deleting a bucket that still holds objects fails, as on CloudFormation (``DeletionPolicy: Retain``
    keeps it instead). S3 tags are not served by Squall, so ``Tags`` is refused.
    """

    type_name = "AWS::S3::Bucket"
    known = frozenset({"BucketName", "NotificationConfiguration", "WebsiteConfiguration"})

    def check(self, logical: str, props: Mapping[str, Any]) -> None:
        super().check(logical, props)
        if "NotificationConfiguration" in props:
            notification = props["NotificationConfiguration"]
            _check_members(self, logical, "NotificationConfiguration", notification, _NOTIFICATIONS)
            for member, (_, target, _) in _NOTIFICATIONS.items():
                for i, config in enumerate(notification.get(member) or []):
                    path = f"NotificationConfiguration.{member}[{i}]"
                    _check_members(self, logical, path, config, ("Event", target, "Filter"))
                    if "Filter" in config:
                        _check_members(self, logical, f"{path}.Filter", config["Filter"], ("S3Key",))
                        _check_members(self, logical, f"{path}.Filter.S3Key", config["Filter"]["S3Key"], ("Rules",))
        if "WebsiteConfiguration" in props:
            allowed = ("IndexDocument", "ErrorDocument", "RedirectAllRequestsTo")
            _check_members(self, logical, "WebsiteConfiguration", props["WebsiteConfiguration"], allowed)

    def create(self, logical: str, props: dict[str, Any], ctx: Context) -> Deployed:
        s3 = ctx.client("s3")
        name = props.get("BucketName") or ctx.name_for(logical, 63).lower()
        kwargs = {} if ctx.region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": ctx.region}}
        s3.create_bucket(Bucket=name, **kwargs)
        self._configure(s3, name, props, {})
        return self._deployed(name, ctx)

    def update(self, logical: str, old: Deployed, props: dict[str, Any], ctx: Context) -> Deployed:
        if props.get("BucketName") != old.properties.get("BucketName"):
            return super().update(logical, old, props, ctx)
        self._configure(ctx.client("s3"), old.physical_id, props, old.properties)
        return self._deployed(old.physical_id, ctx)

    def _configure(self, s3: Any, name: str, props: Mapping[str, Any], old: Mapping[str, Any]) -> None:
        if props.get("NotificationConfiguration") != old.get("NotificationConfiguration"):
            s3.put_bucket_notification_configuration(
                Bucket=name, NotificationConfiguration=_notification(props.get("NotificationConfiguration") or {})
            )
        website = props.get("WebsiteConfiguration")
        if website != old.get("WebsiteConfiguration"):
            if website is None:
                s3.delete_bucket_website(Bucket=name)
            else:
                s3.put_bucket_website(Bucket=name, WebsiteConfiguration=_website(website))

    def _deployed(self, name: str, ctx: Context) -> Deployed:
        port = _gateway_port(ctx.client("s3").meta.endpoint_url)
        attributes = {
            "Arn": f"arn:aws:s3:::{name}",
            "DomainName": f"{name}.s3.amazonaws.com",
            "DualStackDomainName": f"{name}.s3.dualstack.{ctx.region}.amazonaws.com",
            "RegionalDomainName": f"{name}.s3.{ctx.region}.amazonaws.com",
            "WebsiteURL": f"http://{name}.s3-website-{ctx.region}.localhost:{port}",
        }
        return Deployed(type=self.type_name, physical_id=name, ref=name, attributes=attributes)

    def delete(self, old: Deployed, ctx: Context) -> None:
        from botocore.exceptions import ClientError

        try:
            ctx.client("s3").delete_bucket(Bucket=old.physical_id)
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            if code == "BucketNotEmpty":
                raise TemplateError(
                    f"The bucket you tried to delete is not empty: {old.physical_id} still holds objects "
                    "(delete them, or give the bucket DeletionPolicy: Retain)"
                ) from exc
            if code not in _GONE:
                raise


def _gateway_port(endpoint_url: str) -> int:
    """The port of the gateway that serves website endpoints, as the server at ``endpoint_url``
    says; the settings' (SQUALL_GATEWAY_PORT, default 8991) when it does not answer."""
    from squall.config import Settings

    try:
        with urllib.request.urlopen(endpoint_url.rstrip("/") + "/_squall/gateway", timeout=10) as answer:
            return int(json.loads(answer.read())["port"])
    except (OSError, ValueError, KeyError, TypeError):
        return Settings.load().gateway_port


def _notification(config: Mapping[str, Any]) -> dict[str, Any]:
    """CloudFormation's NotificationConfiguration in the S3 API's shape."""
    out: dict[str, Any] = {}
    for member, (api_member, target, api_target) in _NOTIFICATIONS.items():
        converted = []
        for item in config.get(member) or []:
            entry: dict[str, Any] = {api_target: item[target], "Events": [item["Event"]]}
            rules = ((item.get("Filter") or {}).get("S3Key") or {}).get("Rules")
            if rules:
                entry["Filter"] = {"Key": {"FilterRules": [{"Name": r["Name"], "Value": r["Value"]} for r in rules]}}
            converted.append(entry)
        if converted:
            out[api_member] = converted
    return out


def _website(config: Mapping[str, Any]) -> dict[str, Any]:
    """CloudFormation's WebsiteConfiguration in the S3 API's shape."""
    out: dict[str, Any] = {}
    if "IndexDocument" in config:
        out["IndexDocument"] = {"Suffix": config["IndexDocument"]}
    if "ErrorDocument" in config:
        out["ErrorDocument"] = {"Key": config["ErrorDocument"]}
    if "RedirectAllRequestsTo" in config:
        out["RedirectAllRequestsTo"] = config["RedirectAllRequestsTo"]
    return out


# --- EventBridge and Scheduler ------------------------------------------------------------------
class Rule(ResourceType):
    """AWS::Events::Rule on the default bus: changed in place (targets too); a new name replaces it.

    A rule with an ``EventPattern`` is stored as EventBridge stores it; Squall has no event traffic to
    match it against, so only scheduled rules fire (``docs/schedules.md``).
    """

    type_name = "AWS::Events::Rule"
    _fixed = ("Name", "EventBusName")
    known = frozenset({*_fixed, "Description", "ScheduleExpression", "EventPattern", "State", "Targets", "RoleArn"})

    def check(self, logical: str, props: Mapping[str, Any]) -> None:
        super().check(logical, props)
        if props.get("EventBusName", "default") != "default":
            raise TemplateError(f"Resource {logical} ({self.type_name}): EventBusName: Squall has the default bus only")
        for i, target in enumerate(props.get("Targets") or []):
            _check_members(self, logical, f"Targets[{i}]", target, ("Id", "Arn", "Input", "InputPath"))

    def create(self, logical: str, props: dict[str, Any], ctx: Context) -> Deployed:
        name = props.get("Name") or ctx.name_for(logical, 64)
        arn = self._put(logical, name, props, {}, ctx)
        return Deployed(type=self.type_name, physical_id=name, ref=name, attributes={"Arn": arn})

    def update(self, logical: str, old: Deployed, props: dict[str, Any], ctx: Context) -> Deployed:
        if _changed(old.properties, props, self._fixed):
            return super().update(logical, old, props, ctx)
        arn = self._put(logical, old.physical_id, props, old.properties, ctx)
        return Deployed(type=self.type_name, physical_id=old.physical_id, ref=old.physical_id, attributes={"Arn": arn})

    def _put(self, logical: str, name: str, props: Mapping[str, Any], old: Mapping[str, Any], ctx: Context) -> str:
        events = ctx.client("events")
        kwargs = {key: props[key] for key in ("Description", "ScheduleExpression", "State", "RoleArn") if key in props}
        if "EventPattern" in props:
            kwargs["EventPattern"] = _text(props["EventPattern"])
        arn: str = events.put_rule(Name=name, **kwargs)["RuleArn"]
        targets = props.get("Targets") or []
        stale = {t["Id"] for t in old.get("Targets") or []} - {t["Id"] for t in targets}
        if stale:
            events.remove_targets(Rule=name, Ids=sorted(stale))
        if targets:
            failed = events.put_targets(Rule=name, Targets=targets)["FailedEntries"]
            if failed:
                problems = "; ".join(f"{f['TargetId']}: {f['ErrorMessage']}" for f in failed)
                raise TemplateError(f"Resource {logical} ({self.type_name}): Targets refused: {problems}")
        return arn

    def delete(self, old: Deployed, ctx: Context) -> None:
        from botocore.exceptions import ClientError

        events = ctx.client("events")
        try:
            ids = [t["Id"] for t in events.list_targets_by_rule(Rule=old.physical_id)["Targets"]]
        except ClientError as exc:
            if exc.response["Error"]["Code"] in _GONE:
                return
            raise
        if ids:
            events.remove_targets(Rule=old.physical_id, Ids=ids)
        _gone_ok(events.delete_rule, Name=old.physical_id)


class Schedule(ResourceType):
    """AWS::Scheduler::Schedule: updated in place; a new name or group replaces it."""

    type_name = "AWS::Scheduler::Schedule"
    _fixed = ("Name", "GroupName")
    _settings = ("ScheduleExpression", "ScheduleExpressionTimezone", "FlexibleTimeWindow", "StartDate", "EndDate",
                 "State", "Target", "Description")  # fmt: skip
    known = frozenset({*_fixed, *_settings})

    def check(self, logical: str, props: Mapping[str, Any]) -> None:
        super().check(logical, props)
        if "Target" in props:
            _check_members(self, logical, "Target", props["Target"], ("Arn", "RoleArn", "Input"))
        if "FlexibleTimeWindow" in props:
            allowed = ("Mode", "MaximumWindowInMinutes")
            _check_members(self, logical, "FlexibleTimeWindow", props["FlexibleTimeWindow"], allowed)

    def create(self, logical: str, props: dict[str, Any], ctx: Context) -> Deployed:
        name = props.get("Name") or ctx.name_for(logical, 64)
        arn = ctx.client("scheduler").create_schedule(Name=name, **self._request(props))["ScheduleArn"]
        return Deployed(type=self.type_name, physical_id=name, ref=name, attributes={"Arn": arn})

    def update(self, logical: str, old: Deployed, props: dict[str, Any], ctx: Context) -> Deployed:
        if _changed(old.properties, props, self._fixed):
            return super().update(logical, old, props, ctx)
        arn = ctx.client("scheduler").update_schedule(Name=old.physical_id, **self._request(props))["ScheduleArn"]
        return Deployed(type=self.type_name, physical_id=old.physical_id, ref=old.physical_id, attributes={"Arn": arn})

    def _request(self, props: Mapping[str, Any]) -> dict[str, Any]:
        return {key: props[key] for key in (*self._settings, "GroupName") if key in props}

    def delete(self, old: Deployed, ctx: Context) -> None:
        group = {"GroupName": old.properties["GroupName"]} if "GroupName" in old.properties else {}
        _gone_ok(ctx.client("scheduler").delete_schedule, Name=old.physical_id, **group)


# --- Lambda function URLs -----------------------------------------------------------------------
class Url(ResourceType):
    """AWS::Lambda::Url: auth type, CORS and invoke mode change in place; a new target replaces it."""

    type_name = "AWS::Lambda::Url"
    _fixed = ("TargetFunctionArn", "Qualifier")
    known = frozenset({*_fixed, "AuthType", "Cors", "InvokeMode"})

    def create(self, logical: str, props: dict[str, Any], ctx: Context) -> Deployed:
        kwargs = {key: props[key] for key in ("Qualifier", "Cors", "InvokeMode") if key in props}
        config = ctx.client("lambda").create_function_url_config(
            FunctionName=props["TargetFunctionArn"], AuthType=props["AuthType"], **kwargs
        )
        return self._deployed(config)

    def update(self, logical: str, old: Deployed, props: dict[str, Any], ctx: Context) -> Deployed:
        if _changed(old.properties, props, self._fixed):
            return super().update(logical, old, props, ctx)
        qualifier = {"Qualifier": props["Qualifier"]} if "Qualifier" in props else {}
        config = ctx.client("lambda").update_function_url_config(
            FunctionName=props["TargetFunctionArn"],
            AuthType=props["AuthType"],
            Cors=props.get("Cors", {}),
            InvokeMode=props.get("InvokeMode", "BUFFERED"),
            **qualifier,
        )
        return self._deployed(config)

    def _deployed(self, config: Mapping[str, Any]) -> Deployed:
        arn = config["FunctionArn"]
        return Deployed(
            type=self.type_name,
            physical_id=arn,
            ref=arn,
            attributes={"FunctionArn": arn, "FunctionUrl": config["FunctionUrl"]},
        )

    def delete(self, old: Deployed, ctx: Context) -> None:
        qualifier = {"Qualifier": old.properties["Qualifier"]} if "Qualifier" in old.properties else {}
        target = old.properties["TargetFunctionArn"]
        _gone_ok(ctx.client("lambda").delete_function_url_config, FunctionName=target, **qualifier)


# --- resource policies: stored where an API exists, never enforced ------------------------------
class _Policy(ResourceType):
    """A resource policy over a list of resources; ``Ref`` and ``GetAtt Id`` are a generated id (as for
    CloudFormation's queue and topic policies)."""

    members: str

    def check(self, logical: str, props: Mapping[str, Any]) -> None:
        super().check(logical, props)
        for required in (self.members, "PolicyDocument"):
            if required not in props:
                raise TemplateError(f"Resource {logical} ({self.type_name}): {required} is required")

    def create(self, logical: str, props: dict[str, Any], ctx: Context) -> Deployed:
        self.apply(self._targets(props), _text(props["PolicyDocument"]), ctx)
        physical = ctx.name_for(logical, 128)
        return Deployed(type=self.type_name, physical_id=physical, ref=physical, attributes={"Id": physical})

    def update(self, logical: str, old: Deployed, props: dict[str, Any], ctx: Context) -> Deployed:
        after = self._targets(props)
        self.clear([target for target in self._targets(old.properties) if target not in after], ctx)
        return self.create(logical, props, ctx)

    def delete(self, old: Deployed, ctx: Context) -> None:
        self.clear(self._targets(old.properties), ctx)

    def _targets(self, props: Mapping[str, Any]) -> list[str]:
        value = props[self.members]
        return [str(item) for item in value] if isinstance(value, list) else [str(value)]

    def apply(self, targets: list[str], document: str, ctx: Context) -> None:
        """Store ``document`` as each target's policy."""

    def clear(self, targets: list[str], ctx: Context) -> None:
        """Give each target back the policy it had without this resource."""


class QueuePolicy(_Policy):
    """AWS::SQS::QueuePolicy: stored as each queue's ``Policy`` attribute, not enforced."""

    type_name = "AWS::SQS::QueuePolicy"
    members = "Queues"
    known = frozenset({"Queues", "PolicyDocument"})
    notice = "Squall stores this queue policy (the queues' Policy attribute) but does not enforce it"

    def apply(self, targets: list[str], document: str, ctx: Context) -> None:
        for url in targets:
            ctx.client("sqs").set_queue_attributes(QueueUrl=url, Attributes={"Policy": document})

    def clear(self, targets: list[str], ctx: Context) -> None:
        for url in targets:
            _gone_ok(ctx.client("sqs").set_queue_attributes, QueueUrl=url, Attributes={"Policy": ""})


class TopicPolicy(_Policy):
    """AWS::SNS::TopicPolicy: stored as each topic's ``Policy`` attribute, not enforced."""

    type_name = "AWS::SNS::TopicPolicy"
    members = "Topics"
    known = frozenset({"Topics", "PolicyDocument"})
    notice = "Squall stores this topic policy (the topics' Policy attribute) but does not enforce it"

    def apply(self, targets: list[str], document: str, ctx: Context) -> None:
        for arn in targets:
            ctx.client("sns").set_topic_attributes(TopicArn=arn, AttributeName="Policy", AttributeValue=document)

    def clear(self, targets: list[str], ctx: Context) -> None:
        from squall.services.topics.attributes import default_topic_policy

        for arn in targets:  # as on AWS, the topic goes back to its default policy
            policy = default_topic_policy(arn, ctx.account)
            _gone_ok(
                ctx.client("sns").set_topic_attributes, TopicArn=arn, AttributeName="Policy", AttributeValue=policy
            )


class BucketPolicy(_Policy):
    """AWS::S3::BucketPolicy: Squall's S3 has no bucket policies, so it is kept in the stack record only."""

    type_name = "AWS::S3::BucketPolicy"
    members = "Bucket"
    known = frozenset({"Bucket", "PolicyDocument"})
    notice = "Squall's S3 has no bucket policies: this one is kept in the stack record only and not enforced"

    def create(self, logical: str, props: dict[str, Any], ctx: Context) -> Deployed:
        self.apply(self._targets(props), _text(props["PolicyDocument"]), ctx)
        # A bucket policy is known by its bucket (CloudFormation documents no attributes for it).
        return Deployed(type=self.type_name, physical_id=str(props["Bucket"]), ref=str(props["Bucket"]))

    def apply(self, targets: list[str], document: str, ctx: Context) -> None:
        from botocore.exceptions import ClientError

        for bucket in targets:
            try:
                ctx.client("s3").head_bucket(Bucket=bucket)
            except ClientError as exc:
                raise TemplateError(f"{self.type_name}: bucket {bucket} does not exist") from exc


#: Every type of this module; ``catalog.TYPES`` joins them with the others.
SERVICE_TYPES: tuple[ResourceType, ...] = (
    Topic(),
    Subscription(),
    Bucket(),
    Rule(),
    Schedule(),
    Url(),
    QueuePolicy(),
    TopicPolicy(),
    BucketPolicy(),
)
