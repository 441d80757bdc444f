"""Tags, resource policies and exact round-tripping of settings, through boto3 against a live server."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import make_zip

from .conftest import error_of as aws_error

pytestmark = pytest.mark.e2e

FN_ARN = "arn:aws:lambda:us-east-1:000000000000:function:"
PACKAGE = make_zip({"app.py": "def handler(event, context):\n    return event\n"})
NOT_FOUND = "The resource you requested does not exist."


def error_of(call: Any, **kwargs: Any) -> tuple[str, str, int]:
    return aws_error(call, **kwargs)[:3]


@pytest.fixture(scope="module")
def raw(squall: Any) -> Any:
    """A client that sends what it is given, so the server's own checks are reached."""
    return squall.client("lambda", parameter_validation=False)


# --- tags -------------------------------------------------------------------------------------------
def test_tag_untag_list(lam: Any, make_function: Any) -> None:
    make_function("tagged-fn", PACKAGE, Tags={"team": "core", "env": "dev"})
    arn = FN_ARN + "tagged-fn"
    assert lam.list_tags(Resource=arn)["Tags"] == {"team": "core", "env": "dev"}
    revision = lam.get_function(FunctionName="tagged-fn")["Configuration"]["RevisionId"]

    tagged = lam.tag_resource(Resource=arn, Tags={"env": "prod", "cost": "42"})
    assert tagged["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert lam.list_tags(Resource=arn)["Tags"] == {"team": "core", "env": "prod", "cost": "42"}
    got = lam.get_function(FunctionName="tagged-fn")
    assert got["Tags"] == {"team": "core", "env": "prod", "cost": "42"}
    assert got["Configuration"]["RevisionId"] == revision  # tags are not configuration

    untagged = lam.untag_resource(Resource=arn, TagKeys=["team", "cost", "absent"])
    assert untagged["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert lam.list_tags(Resource=arn)["Tags"] == {"env": "prod"}
    lam.untag_resource(Resource=arn, TagKeys=["env"])
    assert lam.list_tags(Resource=arn)["Tags"] == {}
    assert "Tags" not in lam.get_function(FunctionName="tagged-fn")

    # Published versions report the function's tags.
    lam.tag_resource(Resource=arn, Tags={"k": "v"})
    version = lam.publish_version(FunctionName="tagged-fn")["Version"]
    assert lam.get_function(FunctionName="tagged-fn", Qualifier=version)["Tags"] == {"k": "v"}


def test_tag_errors(lam: Any, raw: Any, make_function: Any) -> None:
    missing = FN_ARN + "no-such-fn"
    for call, kwargs in (
        (lam.list_tags, {}),
        (lam.tag_resource, {"Tags": {"a": "b"}}),
        (lam.untag_resource, {"TagKeys": ["a"]}),
    ):
        assert error_of(call, Resource=missing, **kwargs) == (
            "ResourceNotFoundException",
            f"Function not found: {missing}",
            404,
        )
    code, message, status = error_of(lam.list_tags, Resource="not-an-arn")
    assert (code, status) == ("ValidationException", 400)
    assert message.startswith("1 validation error detected: Value 'not-an-arn' at 'resource' failed to satisfy")

    make_function("tag-bounds-fn", PACKAGE)
    arn = FN_ARN + "tag-bounds-fn"
    code, message, _ = error_of(lam.list_tags, Resource=arn + ":1")
    assert (code, message) == (
        "InvalidParameterValueException",
        "Tags on function aliases and versions are not supported. Please specify a function ARN.",
    )
    # Keys 1..128 characters, values 0..256.
    lam.tag_resource(Resource=arn, Tags={"k" * 128: "v" * 256, "empty": ""})
    assert lam.list_tags(Resource=arn)["Tags"] == {"k" * 128: "v" * 256, "empty": ""}
    code, message, _ = error_of(lam.tag_resource, Resource=arn, Tags={"k" * 129: "v"})
    assert code == "ValidationException" and "Map keys must satisfy constraint" in message
    code, message, _ = error_of(lam.tag_resource, Resource=arn, Tags={"k": "v" * 257})
    assert code == "ValidationException" and "Map value must satisfy constraint" in message
    code, message, _ = error_of(raw.tag_resource, Resource=arn, Tags={"": "v"})
    assert code == "ValidationException"
    code, message, _ = error_of(
        lam.create_function,
        FunctionName="bad-tags-fn",
        Runtime="python3.11",
        Role="arn:aws:iam::000000000000:role/r",
        Handler="app.handler",
        Code={"ZipFile": PACKAGE},
        Tags={"k" * 129: "v"},
    )
    assert code == "ValidationException" and "Map keys must satisfy constraint" in message
    code, message, _ = error_of(raw.untag_resource, Resource=arn, TagKeys=[])
    assert code == "ValidationException" and "at 'tagKeys'" in message


# --- resource policies ------------------------------------------------------------------------------
def test_add_get_remove_permission(lam: Any, make_function: Any) -> None:
    make_function("policy-fn", PACKAGE)
    assert error_of(lam.get_policy, FunctionName="policy-fn") == ("ResourceNotFoundException", NOT_FOUND, 404)

    added = lam.add_permission(
        FunctionName="policy-fn",
        StatementId="s3-invoke",
        Action="lambda:InvokeFunction",
        Principal="s3.amazonaws.com",
        SourceArn="arn:aws:s3:::my-bucket",
        SourceAccount="123456789012",
    )
    assert added["ResponseMetadata"]["HTTPStatusCode"] == 201
    statement = json.loads(added["Statement"])
    assert statement == {
        "Sid": "s3-invoke",
        "Effect": "Allow",
        "Principal": {"Service": "s3.amazonaws.com"},
        "Action": "lambda:InvokeFunction",
        "Resource": FN_ARN + "policy-fn",
        "Condition": {
            "StringEquals": {"AWS:SourceAccount": "123456789012"},
            "ArnLike": {"AWS:SourceArn": "arn:aws:s3:::my-bucket"},
        },
    }
    lam.add_permission(FunctionName="policy-fn", StatementId="acct", Action="lambda:*", Principal="210987654321")

    got = lam.get_policy(FunctionName="policy-fn")
    policy = json.loads(got["Policy"])
    assert policy["Version"] == "2012-10-17" and policy["Id"] == "default"
    assert [s["Sid"] for s in policy["Statement"]] == ["s3-invoke", "acct"]
    assert policy["Statement"][1]["Principal"] == {"AWS": "arn:aws:iam::210987654321:root"}
    assert got["RevisionId"]

    code, message, status = error_of(
        lam.add_permission, FunctionName="policy-fn", StatementId="acct", Action="lambda:*", Principal="*"
    )
    assert (code, message, status) == (
        "ResourceConflictException",
        "The statement id (acct) provided already exists. Please provide a new statement id, "
        "or remove the existing statement.",
        409,
    )
    code, _, status = error_of(
        lam.add_permission,
        FunctionName="policy-fn",
        StatementId="stale",
        Action="lambda:*",
        Principal="*",
        RevisionId="not-the-revision",
    )
    assert (code, status) == ("PreconditionFailedException", 412)

    removed = lam.remove_permission(FunctionName="policy-fn", StatementId="s3-invoke")
    assert removed["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert [s["Sid"] for s in json.loads(lam.get_policy(FunctionName="policy-fn")["Policy"])["Statement"]] == ["acct"]
    code, message, status = error_of(lam.remove_permission, FunctionName="policy-fn", StatementId="s3-invoke")
    assert (code, message, status) == (
        "ResourceNotFoundException",
        "Statement s3-invoke is not found in resource policy.",
        404,
    )
    lam.remove_permission(FunctionName="policy-fn", StatementId="acct")
    assert error_of(lam.get_policy, FunctionName="policy-fn")[:2] == ("ResourceNotFoundException", NOT_FOUND)
    assert error_of(lam.remove_permission, FunctionName="policy-fn", StatementId="acct")[:2] == (
        "ResourceNotFoundException",
        "No policy is associated with the given resource.",
    )

    # Deleting the function drops its policy: a new function of that name starts without one.
    lam.add_permission(FunctionName="policy-fn", StatementId="gone", Action="lambda:*", Principal="*")
    lam.delete_function(FunctionName="policy-fn")
    make_function("policy-fn", PACKAGE)
    assert error_of(lam.get_policy, FunctionName="policy-fn")[0] == "ResourceNotFoundException"


def test_policy_qualifiers(lam: Any, make_function: Any) -> None:
    make_function("qual-policy-fn", PACKAGE)
    version = lam.publish_version(FunctionName="qual-policy-fn")["Version"]
    lam.create_alias(FunctionName="qual-policy-fn", Name="live", FunctionVersion=version)
    lam.add_permission(
        FunctionName="qual-policy-fn", Qualifier="live", StatementId="a", Action="lambda:*", Principal="*"
    )
    alias_policy = json.loads(lam.get_policy(FunctionName="qual-policy-fn", Qualifier="live")["Policy"])
    assert alias_policy["Statement"][0]["Resource"] == FN_ARN + "qual-policy-fn:live"
    # Each qualifier has its own policy.
    assert error_of(lam.get_policy, FunctionName="qual-policy-fn")[0] == "ResourceNotFoundException"
    assert error_of(lam.get_policy, FunctionName="qual-policy-fn", Qualifier=version)[0] == (
        "ResourceNotFoundException"
    )
    # A qualified ARN as the function name works too.
    arn_policy = lam.get_policy(FunctionName=FN_ARN + "qual-policy-fn:live")
    assert json.loads(arn_policy["Policy"]) == alias_policy
    code, message, _ = error_of(
        lam.add_permission, FunctionName="qual-policy-fn", Qualifier="nope", StatementId="b", Action="*", Principal="*"
    )
    assert code == "ResourceNotFoundException"
    code, message, _ = error_of(
        lam.add_permission, FunctionName="missing-policy-fn", StatementId="b", Action="*", Principal="*"
    )
    assert (code, message) == ("ResourceNotFoundException", f"Function not found: {FN_ARN}missing-policy-fn")


def test_policy_validation_and_size(lam: Any, raw: Any, make_function: Any) -> None:
    make_function("policy-bounds-fn", PACKAGE)
    name = "policy-bounds-fn"
    # StatementId 1..100 of [a-zA-Z0-9-_].
    lam.add_permission(FunctionName=name, StatementId="s" * 100, Action="*", Principal="*")
    code, message, _ = error_of(lam.add_permission, FunctionName=name, StatementId="s" * 101, Action="*", Principal="*")
    assert code == "ValidationException"
    assert message == (
        f"1 validation error detected: Value '{'s' * 101}' at 'statementId' failed to satisfy constraint: "
        "Member must have length less than or equal to 100"
    )
    code, _, _ = error_of(raw.add_permission, FunctionName=name, StatementId="", Action="*", Principal="*")
    assert code == "ValidationException"
    code, message, _ = error_of(lam.add_permission, FunctionName=name, StatementId="a.b", Action="*", Principal="*")
    assert code == "ValidationException" and "at 'statementId'" in message
    code, message, _ = error_of(
        lam.add_permission, FunctionName=name, StatementId="x", Action="s3:GetObject", Principal="*"
    )
    assert code == "ValidationException" and "at 'action'" in message
    code, message, _ = error_of(
        lam.add_permission, FunctionName=name, StatementId="x", Action="*", Principal="*", SourceAccount="123"
    )
    assert code == "ValidationException" and "at 'sourceAccount'" in message

    # The whole document is held to 20480 bytes.
    arn = "arn:aws:s3:::" + "b" * 900
    sid = 0
    with pytest.raises(ClientError) as info:
        for sid in range(100):
            lam.add_permission(FunctionName=name, StatementId=f"big{sid}", Action="*", Principal="*", SourceArn=arn)
    error = info.value.response["Error"]
    assert error["Code"] == "PolicyLengthExceededException"
    size = int(error["Message"].split("(")[1].split(")")[0])
    assert size > 20480
    assert error["Message"] == f"The final policy size ({size}) is bigger than the limit (20480)."
    assert len(lam.get_policy(FunctionName=name)["Policy"].encode()) <= 20480
    assert sid > 10


# --- exact round trips ------------------------------------------------------------------------------
SETTINGS: dict[str, Any] = {
    "Environment": {"Variables": {"GREETING": "hello world", "EMPTY": "", "UNICODE": "h\u00e9llo"}},
    "Description": "a function \u2014 described",
    "Architectures": ["arm64"],
    "EphemeralStorage": {"Size": 10240},
    "LoggingConfig": {
        "LogFormat": "JSON",
        "ApplicationLogLevel": "DEBUG",
        "SystemLogLevel": "WARN",
        "LogGroup": "/custom/group",
    },
}


def _settings(config: dict[str, Any]) -> dict[str, Any]:
    return {key: config.get(key) for key in SETTINGS}


def test_settings_round_trip(lam: Any, make_function: Any) -> None:
    created = make_function("round-trip-fn", PACKAGE, **SETTINGS)
    assert _settings(created) == SETTINGS
    assert _settings(lam.get_function(FunctionName="round-trip-fn")["Configuration"]) == SETTINGS
    assert _settings(lam.get_function_configuration(FunctionName="round-trip-fn")) == SETTINGS
    listed = next(f for f in lam.list_functions()["Functions"] if f["FunctionName"] == "round-trip-fn")
    assert _settings(listed) == SETTINGS

    changed = {
        "Environment": {"Variables": {"OTHER": "1"}},
        "Description": "",
        "EphemeralStorage": {"Size": 512},
        "LoggingConfig": {
            "LogFormat": "JSON",
            "ApplicationLogLevel": "ERROR",
            "SystemLogLevel": "INFO",
            "LogGroup": "/custom/other",
        },
    }
    updated = lam.update_function_configuration(FunctionName="round-trip-fn", **changed)
    expected = {**SETTINGS, **changed}
    assert _settings(updated) == expected
    lam.get_waiter("function_updated_v2").wait(FunctionName="round-trip-fn", WaiterConfig={"Delay": 0.05})
    assert _settings(lam.get_function_configuration(FunctionName="round-trip-fn")) == expected
    listed = next(f for f in lam.list_functions()["Functions"] if f["FunctionName"] == "round-trip-fn")
    assert _settings(listed) == expected
