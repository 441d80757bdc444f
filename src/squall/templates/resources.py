"""The resource types ``squall deploy`` can create, one small class each, through Squall's own AWS APIs.

Each type turns a resource's resolved CloudFormation properties into API calls (boto3 against the
server, as CloudFormation would call AWS) and says what ``Ref`` and ``Fn::GetAtt`` give. A property a
type cannot honour is an error that names the resource and the property; nothing is silently dropped.
Types without an in-place update are replaced (deleted, then created) when their properties change.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import msgspec

from squall.templates.errors import TemplateError


class Deployed(msgspec.Struct, kw_only=True):
    """One resource as it stands after a deployment: its ids, and the properties it was made from."""

    type: str
    physical_id: str
    ref: Any
    attributes: dict[str, Any] = msgspec.field(default_factory=dict)
    digest: str = ""
    properties: dict[str, Any] = msgspec.field(default_factory=dict)


class Context:
    """What resource types need: API clients, the stack's name, names for unnamed resources, code."""

    def __init__(
        self,
        client: Callable[[str], Any],
        stack: str,
        name_for: Callable[[str, int], str],
        package: Callable[[Mapping[str, Any], str], bytes],
        region: str,
        account: str,
    ) -> None:
        self.client = client
        self.stack = stack
        self.name_for = name_for
        self.package = package
        self.region = region
        self.account = account


class ResourceType(ABC):
    """How one CloudFormation resource type is created, updated and deleted."""

    type_name: ClassVar[str]
    #: Properties this type understands; any other is refused with the resource's name.
    known: ClassVar[frozenset[str]]
    #: Said once in the deploy output whenever the resource is created or updated (what Squall does not do).
    notice: ClassVar[str] = ""

    def check(self, logical: str, props: Mapping[str, Any]) -> None:
        unknown = sorted(set(props) - self.known)
        if unknown:
            raise TemplateError(
                f"Resource {logical} ({self.type_name}): Squall does not support the propert"
                f"{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown)}"
            )

    @abstractmethod
    def create(self, logical: str, props: dict[str, Any], ctx: Context) -> Deployed:
        """Make the resource."""

    def update(self, logical: str, old: Deployed, props: dict[str, Any], ctx: Context) -> Deployed:
        """Change the resource to ``props``; by default it is replaced."""
        self.delete(old, ctx)
        return self.create(logical, props, ctx)

    @abstractmethod
    def delete(self, old: Deployed, ctx: Context) -> None:
        """Remove the resource; one that is gone already is not an error."""


def _missing_ok(call: Callable[..., Any], **kwargs: Any) -> None:
    from botocore.exceptions import ClientError

    try:
        call(**kwargs)
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in (
            "ResourceNotFoundException",
            "NoSuchEntity",
            "AWS.SimpleQueueService.NonExistentQueue",
            "QueueDoesNotExist",
        ):
            raise


def _text(value: Any) -> str:
    """A property as the APIs' string attributes take it: JSON for objects, lower-case booleans."""
    if isinstance(value, dict | list):
        return json.dumps(value)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _tags(props: Mapping[str, Any]) -> dict[str, str]:
    return {str(t["Key"]): str(t["Value"]) for t in props.get("Tags") or []}


class Role(ResourceType):
    """AWS::IAM::Role: stored by Squall's IAM (not enforced), so functions can name it."""

    type_name = "AWS::IAM::Role"
    known = frozenset(
        {"RoleName", "AssumeRolePolicyDocument", "ManagedPolicyArns", "Policies", "Path", "Description", "Tags"}
    )

    def create(self, logical: str, props: dict[str, Any], ctx: Context) -> Deployed:
        iam = ctx.client("iam")
        name = props.get("RoleName") or ctx.name_for(logical, 64)
        role = iam.create_role(
            RoleName=name,
            AssumeRolePolicyDocument=json.dumps(props.get("AssumeRolePolicyDocument") or {}),
            Path=props.get("Path", "/"),
            Description=props.get("Description", ""),
        )["Role"]
        for arn in props.get("ManagedPolicyArns") or []:
            iam.attach_role_policy(RoleName=name, PolicyArn=arn)
        for policy in props.get("Policies") or []:
            iam.put_role_policy(
                RoleName=name, PolicyName=policy["PolicyName"], PolicyDocument=json.dumps(policy["PolicyDocument"])
            )
        return Deployed(type=self.type_name, physical_id=name, ref=name, attributes={"Arn": role["Arn"]})

    def delete(self, old: Deployed, ctx: Context) -> None:
        iam = ctx.client("iam")
        for arn in old.properties.get("ManagedPolicyArns") or []:
            _missing_ok(iam.detach_role_policy, RoleName=old.physical_id, PolicyArn=arn)
        for policy in old.properties.get("Policies") or []:
            _missing_ok(iam.delete_role_policy, RoleName=old.physical_id, PolicyName=policy["PolicyName"])
        _missing_ok(iam.delete_role, RoleName=old.physical_id)


class Function(ResourceType):
    """AWS::Lambda::Function, updated in place (code, then configuration) like CloudFormation does."""

    type_name = "AWS::Lambda::Function"
    _config = (
        "Runtime",
        "Handler",
        "Role",
        "Timeout",
        "MemorySize",
        "Environment",
        "Layers",
        "Description",
        "EphemeralStorage",
        "DeadLetterConfig",
        "LoggingConfig",
    )
    known = frozenset({*_config, "FunctionName", "Code", "Tags", "Architectures", "ReservedConcurrentExecutions",
                       "TracingConfig", "PackageType"})  # fmt: skip

    def create(self, logical: str, props: dict[str, Any], ctx: Context) -> Deployed:
        if props.get("PackageType", "Zip") != "Zip":
            raise TemplateError(f"Resource {logical}: Squall runs zip packages only (PackageType Zip)")
        lam = ctx.client("lambda")
        name = props.get("FunctionName") or ctx.name_for(logical, 64)
        config = lam.create_function(
            FunctionName=name,
            Code={"ZipFile": ctx.package(props["Code"], logical)},
            Tags=_tags(props),
            **self._configuration(props),
            **({"Architectures": props["Architectures"]} if "Architectures" in props else {}),
        )
        lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 600})
        self._concurrency(lam, name, props)
        return self._deployed(name, config["FunctionArn"])

    def update(self, logical: str, old: Deployed, props: dict[str, Any], ctx: Context) -> Deployed:
        if props.get("FunctionName", old.physical_id) != old.physical_id:
            return super().update(logical, old, props, ctx)
        lam, name = ctx.client("lambda"), old.physical_id
        waiter = lam.get_waiter("function_updated_v2")
        # The same bytes again change nothing (same CodeSha256); new bytes are a code update.
        lam.update_function_code(FunctionName=name, ZipFile=ctx.package(props["Code"], logical))
        waiter.wait(FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 600})
        lam.update_function_configuration(FunctionName=name, **self._configuration(props))
        waiter.wait(FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 600})
        self._concurrency(lam, name, props)
        arn = lam.get_function_configuration(FunctionName=name)["FunctionArn"]
        return self._deployed(name, arn)

    def _configuration(self, props: Mapping[str, Any]) -> dict[str, Any]:
        return {key: props[key] for key in self._config if key in props}

    def _concurrency(self, lam: Any, name: str, props: Mapping[str, Any]) -> None:
        if "ReservedConcurrentExecutions" in props:
            lam.put_function_concurrency(
                FunctionName=name, ReservedConcurrentExecutions=int(props["ReservedConcurrentExecutions"])
            )
        else:
            lam.delete_function_concurrency(FunctionName=name)

    def _deployed(self, name: str, arn: str) -> Deployed:
        return Deployed(type=self.type_name, physical_id=name, ref=name, attributes={"Arn": arn})

    def delete(self, old: Deployed, ctx: Context) -> None:
        _missing_ok(ctx.client("lambda").delete_function, FunctionName=old.physical_id)


class Version(ResourceType):
    """AWS::Lambda::Version: a published version; replaced (a new one published) when it changes."""

    type_name = "AWS::Lambda::Version"
    known = frozenset({"FunctionName", "Description", "CodeSha256"})

    def create(self, logical: str, props: dict[str, Any], ctx: Context) -> Deployed:
        kwargs = {k: props[k] for k in ("Description", "CodeSha256") if k in props}
        published = ctx.client("lambda").publish_version(FunctionName=props["FunctionName"], **kwargs)
        return Deployed(
            type=self.type_name,
            physical_id=published["FunctionArn"],
            ref=published["FunctionArn"],
            attributes={"Version": published["Version"], "FunctionArn": published["FunctionArn"]},
        )

    def delete(self, old: Deployed, ctx: Context) -> None:
        name, _, version = old.physical_id.rpartition(":")
        lam = ctx.client("lambda")
        from botocore.exceptions import ClientError

        try:
            lam.delete_function(FunctionName=name, Qualifier=version)
        except ClientError as exc:  # gone with its function, or still behind an alias being replaced
            if exc.response["Error"]["Code"] not in ("ResourceNotFoundException", "ResourceConflictException"):
                raise


class Alias(ResourceType):
    """AWS::Lambda::Alias, updated in place."""

    type_name = "AWS::Lambda::Alias"
    known = frozenset({"FunctionName", "Name", "FunctionVersion", "Description", "RoutingConfig"})

    def create(self, logical: str, props: dict[str, Any], ctx: Context) -> Deployed:
        alias = ctx.client("lambda").create_alias(**props)
        return Deployed(type=self.type_name, physical_id=alias["AliasArn"], ref=alias["AliasArn"])

    def update(self, logical: str, old: Deployed, props: dict[str, Any], ctx: Context) -> Deployed:
        if (props["FunctionName"], props["Name"]) != (old.properties["FunctionName"], old.properties["Name"]):
            return super().update(logical, old, props, ctx)
        alias = ctx.client("lambda").update_alias(**{"RoutingConfig": {}, **props})
        return Deployed(type=self.type_name, physical_id=alias["AliasArn"], ref=alias["AliasArn"])

    def delete(self, old: Deployed, ctx: Context) -> None:
        function, _, name = old.physical_id.rpartition(":")
        _missing_ok(ctx.client("lambda").delete_alias, FunctionName=function, Name=name)


class Permission(ResourceType):
    """AWS::Lambda::Permission: a statement of the function's resource policy (stored, not enforced)."""

    type_name = "AWS::Lambda::Permission"
    known = frozenset(
        {"FunctionName", "Action", "Principal", "SourceArn", "SourceAccount", "EventSourceToken", "PrincipalOrgID",
         "FunctionUrlAuthType", "InvokedViaFunctionUrl"}
    )  # fmt: skip

    def create(self, logical: str, props: dict[str, Any], ctx: Context) -> Deployed:
        statement = ctx.name_for(logical, 100)
        ctx.client("lambda").add_permission(StatementId=statement, **props)
        return Deployed(type=self.type_name, physical_id=statement, ref=statement)

    def delete(self, old: Deployed, ctx: Context) -> None:
        _missing_ok(
            ctx.client("lambda").remove_permission,
            FunctionName=old.properties["FunctionName"],
            StatementId=old.physical_id,
        )


class EventSourceMapping(ResourceType):
    """AWS::Lambda::EventSourceMapping, updated in place where Lambda allows it."""

    type_name = "AWS::Lambda::EventSourceMapping"
    _fixed = ("EventSourceArn", "StartingPosition", "StartingPositionTimestamp")
    known = frozenset(
        {*_fixed, "FunctionName", "BatchSize", "MaximumBatchingWindowInSeconds", "Enabled", "ParallelizationFactor",
         "BisectBatchOnFunctionError", "MaximumRetryAttempts", "MaximumRecordAgeInSeconds", "DestinationConfig",
         "FunctionResponseTypes", "TumblingWindowInSeconds", "FilterCriteria", "ScalingConfig"}
    )  # fmt: skip

    def create(self, logical: str, props: dict[str, Any], ctx: Context) -> Deployed:
        mapping = ctx.client("lambda").create_event_source_mapping(**props)
        return Deployed(type=self.type_name, physical_id=mapping["UUID"], ref=mapping["UUID"])

    def update(self, logical: str, old: Deployed, props: dict[str, Any], ctx: Context) -> Deployed:
        if any(props.get(k) != old.properties.get(k) for k in self._fixed):
            return super().update(logical, old, props, ctx)
        changes = {k: v for k, v in props.items() if k not in self._fixed}
        ctx.client("lambda").update_event_source_mapping(UUID=old.physical_id, **changes)
        return Deployed(type=self.type_name, physical_id=old.physical_id, ref=old.physical_id)

    def delete(self, old: Deployed, ctx: Context) -> None:
        _missing_ok(ctx.client("lambda").delete_event_source_mapping, UUID=old.physical_id)


class LayerVersion(ResourceType):
    """AWS::Lambda::LayerVersion: a new version is published whenever it changes."""

    type_name = "AWS::Lambda::LayerVersion"
    known = frozenset(
        {"LayerName", "Content", "CompatibleRuntimes", "CompatibleArchitectures", "Description", "LicenseInfo"}
    )

    def create(self, logical: str, props: dict[str, Any], ctx: Context) -> Deployed:
        name = props.get("LayerName") or ctx.name_for(logical, 64)
        kwargs = {k: props[k] for k in ("CompatibleRuntimes", "CompatibleArchitectures", "Description", "LicenseInfo")
                  if k in props}  # fmt: skip
        layer = ctx.client("lambda").publish_layer_version(
            LayerName=name, Content={"ZipFile": ctx.package(props["Content"], logical)}, **kwargs
        )
        return Deployed(type=self.type_name, physical_id=layer["LayerVersionArn"], ref=layer["LayerVersionArn"])

    def delete(self, old: Deployed, ctx: Context) -> None:
        name, _, number = old.physical_id.rpartition(":")
        _missing_ok(ctx.client("lambda").delete_layer_version, LayerName=name, VersionNumber=int(number))


class EventInvokeConfig(ResourceType):
    """AWS::Lambda::EventInvokeConfig: async retries and destinations of a version or alias."""

    type_name = "AWS::Lambda::EventInvokeConfig"
    known = frozenset({"FunctionName", "Qualifier", "MaximumRetryAttempts", "MaximumEventAgeInSeconds",
                       "DestinationConfig"})  # fmt: skip

    def create(self, logical: str, props: dict[str, Any], ctx: Context) -> Deployed:
        ctx.client("lambda").put_function_event_invoke_config(**props)
        physical = f"{props['FunctionName']}:{props['Qualifier']}"
        return Deployed(type=self.type_name, physical_id=physical, ref=physical)

    def delete(self, old: Deployed, ctx: Context) -> None:
        name, _, qualifier = old.physical_id.rpartition(":")
        _missing_ok(ctx.client("lambda").delete_function_event_invoke_config, FunctionName=name, Qualifier=qualifier)


class Stream(ResourceType):
    """AWS::Kinesis::Stream."""

    type_name = "AWS::Kinesis::Stream"
    known = frozenset({"Name", "ShardCount", "StreamModeDetails", "RetentionPeriodHours", "Tags",
                       "StreamEncryption"})  # fmt: skip

    def create(self, logical: str, props: dict[str, Any], ctx: Context) -> Deployed:
        kinesis = ctx.client("kinesis")
        name = props.get("Name") or ctx.name_for(logical, 128)
        kwargs: dict[str, Any] = {"StreamName": name}
        if "StreamModeDetails" in props:
            kwargs["StreamModeDetails"] = props["StreamModeDetails"]
        if props.get("StreamModeDetails", {}).get("StreamMode") != "ON_DEMAND":
            kwargs["ShardCount"] = int(props.get("ShardCount", 1))
        kinesis.create_stream(**kwargs)
        kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 300})
        if "RetentionPeriodHours" in props and int(props["RetentionPeriodHours"]) != 24:
            kinesis.increase_stream_retention_period(
                StreamName=name, RetentionPeriodHours=int(props["RetentionPeriodHours"])
            )
        if props.get("Tags"):
            kinesis.add_tags_to_stream(StreamName=name, Tags=_tags(props))
        arn = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
        return Deployed(type=self.type_name, physical_id=name, ref=name, attributes={"Arn": arn})

    def delete(self, old: Deployed, ctx: Context) -> None:
        _missing_ok(ctx.client("kinesis").delete_stream, StreamName=old.physical_id, EnforceConsumerDeletion=True)


class Table(ResourceType):
    """AWS::DynamoDB::Table."""

    type_name = "AWS::DynamoDB::Table"
    _create = ("AttributeDefinitions", "KeySchema", "BillingMode", "ProvisionedThroughput", "GlobalSecondaryIndexes",
               "LocalSecondaryIndexes", "StreamSpecification")  # fmt: skip
    known = frozenset({*_create, "TableName", "TimeToLiveSpecification", "Tags", "SSESpecification",
                       "PointInTimeRecoverySpecification"})  # fmt: skip

    def create(self, logical: str, props: dict[str, Any], ctx: Context) -> Deployed:
        dynamodb = ctx.client("dynamodb")
        name = props.get("TableName") or ctx.name_for(logical, 255)
        kwargs = {k: props[k] for k in self._create if k in props}
        if kwargs.get("StreamSpecification") and "StreamEnabled" not in kwargs["StreamSpecification"]:
            kwargs["StreamSpecification"] = {"StreamEnabled": True, **kwargs["StreamSpecification"]}
        if props.get("Tags"):
            kwargs["Tags"] = props["Tags"]
        table = dynamodb.create_table(TableName=name, **kwargs)["TableDescription"]
        dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 300})
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
        attributes = {"Arn": table["TableArn"]}
        if table.get("LatestStreamArn"):
            attributes["StreamArn"] = table["LatestStreamArn"]
        return Deployed(type=self.type_name, physical_id=name, ref=name, attributes=attributes)

    def delete(self, old: Deployed, ctx: Context) -> None:
        _missing_ok(ctx.client("dynamodb").delete_table, TableName=old.physical_id)


class Queue(ResourceType):
    """AWS::SQS::Queue: attributes are changed in place; a new name (or FIFO-ness) replaces it."""

    type_name = "AWS::SQS::Queue"
    _attributes = ("DelaySeconds", "MaximumMessageSize", "MessageRetentionPeriod", "ReceiveMessageWaitTimeSeconds",
                   "VisibilityTimeout", "RedrivePolicy", "RedriveAllowPolicy", "FifoQueue", "ContentBasedDeduplication",
                   "DeduplicationScope", "FifoThroughputLimit", "SqsManagedSseEnabled")  # fmt: skip
    known = frozenset({*_attributes, "QueueName", "Tags", "KmsMasterKeyId", "KmsDataKeyReusePeriodSeconds"})

    def _wire(self, props: Mapping[str, Any]) -> dict[str, str]:
        return {key: _text(props[key]) for key in self._attributes if key in props}

    def create(self, logical: str, props: dict[str, Any], ctx: Context) -> Deployed:
        sqs = ctx.client("sqs")
        fifo = str(props.get("FifoQueue", "")).lower() == "true"
        name = props.get("QueueName") or ctx.name_for(logical, 75 if fifo else 80) + (".fifo" if fifo else "")
        url = sqs.create_queue(QueueName=name, Attributes=self._wire(props), tags=_tags(props))["QueueUrl"]
        return self._deployed(sqs, url, name)

    def update(self, logical: str, old: Deployed, props: dict[str, Any], ctx: Context) -> Deployed:
        if props.get("QueueName") != old.properties.get("QueueName") or props.get("FifoQueue") != old.properties.get(
            "FifoQueue"
        ):
            return super().update(logical, old, props, ctx)
        sqs = ctx.client("sqs")
        sqs.set_queue_attributes(QueueUrl=old.physical_id, Attributes=self._wire(props))
        return self._deployed(sqs, old.physical_id, old.attributes["QueueName"])

    def _deployed(self, sqs: Any, url: str, name: str) -> Deployed:
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return Deployed(
            type=self.type_name,
            physical_id=url,
            ref=url,
            attributes={"Arn": arn, "QueueName": name, "QueueUrl": url},
        )

    def delete(self, old: Deployed, ctx: Context) -> None:
        _missing_ok(ctx.client("sqs").delete_queue, QueueUrl=old.physical_id)


#: The Lambda, IAM and data-service types; ``catalog.TYPES`` adds the other modules' types.
CORE_TYPES: tuple[ResourceType, ...] = (
    Role(),
    Function(),
    Version(),
    Alias(),
    Permission(),
    EventSourceMapping(),
    LayerVersion(),
    EventInvokeConfig(),
    Stream(),
    Table(),
    Queue(),
)
