"""Lambda's wire format: request validation with AWS's exact messages, and response shapes.

Model constraints (ranges, patterns, enums) fail as ``ValidationException`` with the
"N validation error(s) detected: ..." text AWS builds; service rules fail as
``InvalidParameterValueException``. Everything else the API does lives in ``lambda_api``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any, NamedTuple
from urllib.parse import unquote

from squall import config as limits
from squall.api.validation import Violations as Violations  # re-exported: wire.Violations
from squall.errors import InvalidParameterValue, InvalidRequestContent, ValidationError
from squall.logs.format import log_group_name
from squall.models import LATEST, Alias, FunctionConfig
from squall.runtime import runtimes

FUNCTION_NAME_PATTERN = (
    r"(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\d{1}:)?(\d{12}:)?"
    r"(function:)?([a-zA-Z0-9-_]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?"
)
_FUNCTION_NAME_RE = re.compile(FUNCTION_NAME_PATTERN)
ROLE_PATTERN = r"arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+"
_ROLE_RE = re.compile(ROLE_PATTERN)
_ENV_NAME_RE = re.compile(r"[a-zA-Z]([a-zA-Z0-9_])+")
_QUALIFIER_RE = re.compile(r"(|[a-zA-Z0-9$_-]+)")
ALIAS_PATTERN = r"(?!^[0-9]+$)([a-zA-Z0-9-_]+)"
_ALIAS_RE = re.compile(ALIAS_PATTERN)
VERSION_PATTERN = r"(\$LATEST|[0-9]+)"
_VERSION_RE = re.compile(VERSION_PATTERN)
_WEIGHT_CONSTRAINT = (
    "Map value must satisfy constraint: [Member must have value less than or equal to 1.0, "
    "Member must have value greater than or equal to 0.0, Member must not be null]"
)
_WEIGHT_KEY_CONSTRAINT = (
    "Map keys must satisfy constraint: [Member must have length less than or equal to 1024, "
    "Member must have length greater than or equal to 1, Member must satisfy regular expression "
    "pattern: [0-9]+, Member must not be null]"
)
RUNTIMES = [
    "nodejs",
    "nodejs4.3",
    "nodejs6.10",
    "nodejs8.10",
    "nodejs10.x",
    "nodejs12.x",
    "nodejs14.x",
    "nodejs16.x",
    "java8",
    "java8.al2",
    "java11",
    "python2.7",
    "python3.6",
    "python3.7",
    "python3.8",
    "python3.9",
    "dotnetcore1.0",
    "dotnetcore2.0",
    "dotnetcore2.1",
    "dotnetcore3.1",
    "dotnet6",
    "dotnet8",
    "nodejs4.3-edge",
    "go1.x",
    "ruby2.5",
    "ruby2.7",
    "provided",
    "provided.al2",
    "nodejs18.x",
    "python3.10",
    "java17",
    "ruby3.2",
    "ruby3.3",
    "ruby3.4",
    "python3.11",
    "nodejs20.x",
    "provided.al2023",
    "python3.12",
    "java21",
    "python3.13",
    "nodejs22.x",
    "nodejs24.x",
    "python3.14",
    "java25",
    "dotnet10",
]
SUPPORTED_RUNTIMES = runtimes.names()
RESERVED_ENV = frozenset(
    {
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
    }
)


def parse_body(body: bytes) -> dict[str, Any]:
    """A JSON object body, or InvalidRequestContentException."""
    if not body:
        return {}
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise InvalidRequestContent(f"Could not parse request body into json: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidRequestContent("Could not parse request body into json: expected an object")
    return data


def split_function_name(
    raw: str, qualifier: str | None = None, member: str = "functionName", max_len: int = 170
) -> tuple[str, str | None]:
    """A FunctionName (name, partial or full ARN, maybe ``:qualifier``) -> (name, qualifier)."""
    v = Violations()
    v.length(raw, member, max_len, 1)
    v.pattern(raw, member, _FUNCTION_NAME_RE, FUNCTION_NAME_PATTERN)
    if qualifier is not None:
        v.length(qualifier, "qualifier", 128, 1)
        v.pattern(qualifier, "qualifier", _QUALIFIER_RE, "(|[a-zA-Z0-9$_-]+)")
    v.raise_if_any()
    match = _FUNCTION_NAME_RE.fullmatch(raw)
    assert match is not None
    name, in_name = match.group(7), match.group(9)
    if len(name) > 64:
        raise ValidationError(
            f"1 validation error detected: Value '{raw}' at '{member}' failed to satisfy "
            "constraint: Member must have length less than or equal to 64"
        )
    if in_name and qualifier and in_name != qualifier:
        raise InvalidParameterValue(
            "The derived qualifier from the function name does not match the specified qualifier."
        )
    return name, in_name or qualifier


def validate_settings(data: dict[str, Any], v: Violations) -> None:
    """The members CreateFunction and UpdateFunctionConfiguration share."""
    v.at_least(data.get("Timeout"), "timeout", limits.TIMEOUT_MIN_S)
    v.at_most(data.get("Timeout"), "timeout", limits.TIMEOUT_MAX_S)
    v.at_least(data.get("MemorySize"), "memorySize", limits.MEMORY_MIN_MB)
    v.at_most(data.get("MemorySize"), "memorySize", limits.MEMORY_MAX_MB)
    v.length(data.get("Description"), "description", 256)
    v.length(data.get("Handler"), "handler", 128)
    if data.get("Handler") is not None and not re.fullmatch(r"[^\s]+", data["Handler"]):
        v.add(data["Handler"], "handler", r"Member must satisfy regular expression pattern: [^\s]+")
    v.enum(data.get("Runtime"), "runtime", RUNTIMES)
    v.pattern(data.get("Role"), "role", _ROLE_RE, ROLE_PATTERN)
    storage = data.get("EphemeralStorage")
    if isinstance(storage, dict):
        v.at_least(storage.get("Size"), "ephemeralStorage.size", limits.EPHEMERAL_MIN_MB)
        v.at_most(storage.get("Size"), "ephemeralStorage.size", limits.EPHEMERAL_MAX_MB)
    tracing = data.get("TracingConfig")
    if isinstance(tracing, dict):
        v.enum(tracing.get("Mode"), "tracingConfig.mode", ["Active", "PassThrough"])
    variables = (data.get("Environment") or {}).get("Variables") or {}
    if any(not _ENV_NAME_RE.fullmatch(str(key)) for key in variables):
        # AWS names no value for map-key violations.
        v.items.append(
            "Value at 'environment.variables' failed to satisfy constraint: Map keys must satisfy "
            "constraint: [Member must satisfy regular expression pattern: [a-zA-Z]([a-zA-Z0-9_])+]"
        )


def check_runtime_supported(runtime: str | None) -> None:
    if runtime is not None and runtime not in SUPPORTED_RUNTIMES:
        raise InvalidParameterValue(
            f"The runtime parameter of {runtime} is not supported by this Squall server yet. "
            f"Supported runtimes: {', '.join(SUPPORTED_RUNTIMES)}."
        )


def check_environment(data: dict[str, Any]) -> dict[str, str] | None:
    """Environment.Variables, checked for reserved keys and Lambda's 4 KB limit."""
    env = data.get("Environment")
    if env is None:
        return None
    variables = env.get("Variables") or {}
    reserved = sorted(k for k in variables if k in RESERVED_ENV)
    if reserved:
        raise InvalidParameterValue(
            "Lambda was unable to configure your environment variables because the environment variables "
            "you have provided contains reserved keys that are currently not supported for modification. "
            f"Reserved keys used in this request: {', '.join(reserved)}"
        )
    measured = json.dumps(variables, separators=(",", ":"))
    if len(measured.encode()) > limits.ENV_VARS_LIMIT:
        raise InvalidParameterValue(
            "Lambda was unable to configure your environment variables because the environment variables "
            f"you have provided exceeded the 4KB limit. String measured: {measured}"
        )
    return {str(k): str(val) for k, val in variables.items()}


def decode_zip(value: Any, member: str = "ZipFile") -> bytes:
    if not isinstance(value, str):
        raise InvalidParameterValue(f"{member} must be a base64-encoded zip file.")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequestContent(f"Could not parse request body into json: {member} is not valid base64") from None


def settings_from(data: dict[str, Any]) -> dict[str, Any]:
    """FunctionConfig fields from the request members present in ``data``."""
    fields: dict[str, Any] = {}
    simple = {
        "Role": "role",
        "Handler": "handler",
        "Description": "description",
        "Timeout": "timeout",
        "MemorySize": "memory_size",
        "Runtime": "runtime",
        "KMSKeyArn": "kms_key_arn",
        "Layers": "layers",
    }
    for member, field in simple.items():
        if member in data and data[member] is not None:
            fields[field] = data[member]
    env = check_environment(data)
    if env is not None:
        fields["environment"] = env
    if isinstance(data.get("EphemeralStorage"), dict):
        fields["ephemeral_storage"] = data["EphemeralStorage"]["Size"]
    if isinstance(data.get("TracingConfig"), dict) and data["TracingConfig"].get("Mode"):
        fields["tracing_mode"] = data["TracingConfig"]["Mode"]
    if isinstance(data.get("DeadLetterConfig"), dict):
        fields["dead_letter_target"] = data["DeadLetterConfig"].get("TargetArn") or None
    if isinstance(data.get("LoggingConfig"), dict):
        fields["logging_config"] = {k: str(val) for k, val in data["LoggingConfig"].items()}
    return fields


def function_configuration(config: FunctionConfig, arn: str) -> dict[str, Any]:
    """FunctionConfiguration as Lambda returns it (``arn`` is qualified for numbered versions)."""
    body: dict[str, Any] = {
        "FunctionName": config.name,
        "FunctionArn": arn,
        "Runtime": config.runtime,
        "Role": config.role,
        "Handler": config.handler,
        "CodeSize": config.code_size,
        "Description": config.description,
        "Timeout": config.timeout,
        "MemorySize": config.memory_size,
        "LastModified": config.last_modified,
        "CodeSha256": config.code_sha256,
        "Version": config.version,
        "TracingConfig": {"Mode": config.tracing_mode},
        "RevisionId": config.revision_id,
        "Layers": [{"Arn": ref.arn, "CodeSize": ref.code_size} for ref in config.layer_refs] or None,
        "State": config.state,
        "StateReason": config.state_reason,
        "StateReasonCode": config.state_reason_code,
        "LastUpdateStatus": config.last_update_status,
        "LastUpdateStatusReason": config.last_update_status_reason,
        "LastUpdateStatusReasonCode": config.last_update_status_reason_code,
        "PackageType": config.package_type,
        "Architectures": config.architectures,
        "EphemeralStorage": {"Size": config.ephemeral_storage},
        "SnapStart": {"ApplyOn": "None", "OptimizationStatus": "Off"},
        "LoggingConfig": {
            "LogFormat": config.logging_config.get("LogFormat", "Text"),
            "LogGroup": config.logging_config.get("LogGroup", log_group_name(config.name)),
            **{k: val for k, val in config.logging_config.items() if k in ("ApplicationLogLevel", "SystemLogLevel")},
        },
    }
    if config.environment:
        body["Environment"] = {"Variables": config.environment}
    if config.dead_letter_target:
        body["DeadLetterConfig"] = {"TargetArn": config.dead_letter_target}
    if config.kms_key_arn:
        body["KMSKeyArn"] = config.kms_key_arn
    return {k: val for k, val in body.items() if val is not None}


def qualified_arn(base_arn: str, config: FunctionConfig) -> str:
    return base_arn if config.version == LATEST else f"{base_arn}:{config.version}"


def validate_alias(data: dict[str, Any], v: Violations) -> None:
    """The members of CreateAlias and UpdateAlias (and an alias name in a path)."""
    name = data.get("Name")
    v.length(name, "name", 128, 1)
    v.pattern(name, "name", _ALIAS_RE, ALIAS_PATTERN)
    version = data.get("FunctionVersion")
    v.length(version, "functionVersion", 1024, 1)
    v.pattern(version, "functionVersion", _VERSION_RE, VERSION_PATTERN)
    v.length(data.get("Description"), "description", 256)
    routing = data.get("RoutingConfig")
    weights = routing.get("AdditionalVersionWeights") if isinstance(routing, dict) else None
    if isinstance(weights, dict):
        shown = "{" + ", ".join(f"{k}={val}" for k, val in weights.items()) + "}"
        member = "routingConfig.additionalVersionWeights"
        if any(not re.fullmatch(r"[0-9]+", str(k)) or len(str(k)) > 1024 for k in weights):
            v.add(shown, member, _WEIGHT_KEY_CONSTRAINT)
        elif any(not isinstance(val, int | float) or not 0.0 <= val <= 1.0 for val in weights.values()):
            v.add(shown, member, _WEIGHT_CONSTRAINT)


def routing_weights(data: dict[str, Any]) -> dict[str, float]:
    """RoutingConfig.AdditionalVersionWeights of a validated request ({} when absent)."""
    routing = data.get("RoutingConfig")
    weights = routing.get("AdditionalVersionWeights") if isinstance(routing, dict) else None
    return {str(k): float(val) for k, val in (weights or {}).items()}


def alias_configuration(alias: Alias, arn: str) -> dict[str, Any]:
    """AliasConfiguration as Lambda returns it."""
    body: dict[str, Any] = {
        "AliasArn": arn,
        "Name": alias.name,
        "FunctionVersion": alias.function_version,
        "Description": alias.description,
        "RevisionId": alias.revision_id,
    }
    if alias.weights:
        body["RoutingConfig"] = {"AdditionalVersionWeights": alias.weights}
    return body


class InvokeParameters(NamedTuple):
    """What an Invoke-like request names: the function, its qualifier, invocation and log types."""

    name: str
    qualifier: str | None
    invocation_type: str
    log_type: str


def invoke_parameters(
    name_in_path: str, query: dict[str, str], headers: dict[str, str], invocation_types: list[str]
) -> InvokeParameters:
    """Invoke's (or InvokeWithResponseStream's) path, ``Qualifier`` and ``X-Amz-*`` headers, validated."""
    name, qualifier = split_function_name(unquote(name_in_path), query.get("Qualifier"))
    invocation_type = headers.get("x-amz-invocation-type", "RequestResponse")
    log_type = headers.get("x-amz-log-type", "None")
    v = Violations()
    v.enum(invocation_type, "invocationType", invocation_types)
    v.enum(log_type, "logType", ["None", "Tail"])
    v.raise_if_any()
    return InvokeParameters(name, qualifier, invocation_type, log_type)
