"""IAM roles and STS GetCallerIdentity through real boto3 clients (query protocol, XML)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import function_zip
from tests.e2e.conftest import SquallServer
from tests.e2e.test_aws_cli import aws_json

pytestmark = pytest.mark.e2e

ACCOUNT = "000000000000"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
INLINE = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
BASIC = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"


@pytest.fixture(scope="module")
def iam(squall: SquallServer) -> Any:
    return squall.client("iam")


@pytest.fixture
def role_name(iam: Any) -> Any:
    """A fresh role name; whatever role of that name exists is removed after the test."""
    name = f"role-{uuid.uuid4().hex[:10]}"
    yield name
    try:
        for policy in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
            iam.detach_role_policy(RoleName=name, PolicyArn=policy["PolicyArn"])
        for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]:
            iam.delete_role_policy(RoleName=name, PolicyName=policy)
        iam.delete_role(RoleName=name)
    except iam.exceptions.NoSuchEntityException:
        pass


def error(call: Callable[[], object]) -> tuple[int, str, str]:
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"], response["Error"]["Message"]


def test_create_get_and_delete_a_role(iam: Any, role_name: str) -> None:
    before = datetime.now(UTC) - timedelta(seconds=2)
    created = iam.create_role(
        RoleName=role_name,
        AssumeRolePolicyDocument=json.dumps(TRUST),
        Path="/service/",
        Description="made by a test",
        MaxSessionDuration=7200,
        Tags=[{"Key": "team", "Value": "squall"}],
    )["Role"]
    assert created["RoleName"] == role_name
    assert created["Path"] == "/service/"
    assert created["Arn"] == f"arn:aws:iam::{ACCOUNT}:role/service/{role_name}"
    assert re.fullmatch(r"AROA[A-Z2-7]{17}", created["RoleId"])
    assert before <= created["CreateDate"] <= datetime.now(UTC) + timedelta(seconds=2)
    assert created["AssumeRolePolicyDocument"] == TRUST  # botocore decodes IAM's URL-encoded documents
    assert created["Description"] == "made by a test"
    assert created["MaxSessionDuration"] == 7200
    assert created["Tags"] == [{"Key": "team", "Value": "squall"}]

    got = iam.get_role(RoleName=role_name)["Role"]
    assert {key: got[key] for key in created} == created
    # Role names are unique regardless of case, and found regardless of case.
    assert iam.get_role(RoleName=role_name.upper())["Role"]["RoleId"] == created["RoleId"]

    iam.delete_role(RoleName=role_name)
    assert error(lambda: iam.get_role(RoleName=role_name)) == (
        404,
        "NoSuchEntity",
        f"The role with name {role_name} cannot be found.",
    )


def test_role_defaults(iam: Any, role_name: str) -> None:
    created = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]
    assert created["Path"] == "/"
    assert created["Arn"] == f"arn:aws:iam::{ACCOUNT}:role/{role_name}"
    assert created["MaxSessionDuration"] == 3600
    assert "Description" not in created and "Tags" not in created


def test_create_existing_role_conflicts(iam: Any, role_name: str) -> None:
    iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(TRUST))
    for name in (role_name, role_name.upper()):
        assert error(lambda n=name: iam.create_role(RoleName=n, AssumeRolePolicyDocument=json.dumps(TRUST))) == (
            409,
            "EntityAlreadyExists",
            f"Role with name {name} already exists.",
        )


@pytest.mark.parametrize(
    ("document", "message"),
    [("{not json", "This policy contains invalid Json"), ('{"Version": "2012-10-17"}', "Syntax errors in policy.")],
)
def test_malformed_trust_policy(iam: Any, role_name: str, document: str, message: str) -> None:
    status, code, text = error(lambda: iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=document))
    assert (status, code, text) == (400, "MalformedPolicyDocument", message)
    assert error(lambda: iam.get_role(RoleName=role_name))[1] == "NoSuchEntity"


@pytest.mark.parametrize(
    ("params", "ok"),
    [
        ({"RoleName": "r" * 64}, True),
        ({"RoleName": "r" * 65}, False),
        ({"RoleName": "bad/name"}, False),
        ({"MaxSessionDuration": 3600}, True),
        ({"MaxSessionDuration": 3599}, False),
        ({"MaxSessionDuration": 43200}, True),
        ({"MaxSessionDuration": 43201}, False),
        ({"Path": "/a/b/"}, True),
        ({"Path": "/no-trailing-slash"}, False),
    ],
)
def test_create_role_validation(iam: Any, squall: SquallServer, params: dict[str, Any], ok: bool) -> None:
    unchecked = squall.client("iam", parameter_validation=False)
    name = params.pop("RoleName", f"v-{uuid.uuid4().hex[:8]}")

    def create() -> Any:
        return unchecked.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST), **params)

    if ok:
        create()
        iam.delete_role(RoleName=name)
        return
    status, code, message = error(create)
    assert (status, code) == (400, "ValidationError")
    assert message.startswith("1 validation error detected: Value ")
    if name == "r" * 65:
        assert message == (
            f"1 validation error detected: Value '{name}' at 'roleName' failed to satisfy constraint: "
            "Member must have length less than or equal to 64"
        )
    if params.get("MaxSessionDuration") == 43201:
        assert message == (
            "1 validation error detected: Value '43201' at 'maxSessionDuration' failed to satisfy constraint: "
            "Member must have value less than or equal to 43200"
        )


def test_list_roles_pages_and_filters_by_path(iam: Any, squall: SquallServer) -> None:
    prefix = f"/list-{uuid.uuid4().hex[:8]}/"
    names = [f"lister-{i}-{uuid.uuid4().hex[:6]}" for i in range(5)]
    try:
        for name in names:
            iam.create_role(RoleName=name, Path=prefix, AssumeRolePolicyDocument=json.dumps(TRUST))
        page = iam.list_roles(PathPrefix=prefix, MaxItems=2)
        assert [r["RoleName"] for r in page["Roles"]] == names[:2]
        assert page["IsTruncated"] is True and page["Marker"]
        listed = page["Roles"][0]
        assert listed["Arn"] == f"arn:aws:iam::{ACCOUNT}:role{prefix}{names[0]}"
        assert listed["AssumeRolePolicyDocument"] == TRUST
        seen = [
            r["RoleName"]
            for p in iam.get_paginator("list_roles").paginate(PathPrefix=prefix, MaxItems=2)
            for r in p["Roles"]
        ]
        assert seen == names
        last = iam.list_roles(PathPrefix=prefix, MaxItems=5)
        assert last["IsTruncated"] is False and "Marker" not in last
        everyone = [r["RoleName"] for p in iam.get_paginator("list_roles").paginate() for r in p["Roles"]]
        assert set(names) <= set(everyone)
        unchecked = squall.client("iam", parameter_validation=False)
        assert len(iam.list_roles(MaxItems=1000)["Roles"]) >= 5
        assert error(lambda: unchecked.list_roles(MaxItems=1001))[:2] == (400, "ValidationError")
        assert error(lambda: unchecked.list_roles(MaxItems=0))[:2] == (400, "ValidationError")
    finally:
        for name in names:
            iam.delete_role(RoleName=name)


def test_attach_list_and_detach_managed_policies(iam: Any, role_name: str) -> None:
    iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(TRUST))
    iam.attach_role_policy(RoleName=role_name, PolicyArn=BASIC)
    iam.attach_role_policy(RoleName=role_name, PolicyArn=BASIC)  # attaching twice is harmless, as in IAM
    mine = f"arn:aws:iam::{ACCOUNT}:policy/team/my-policy"
    iam.attach_role_policy(RoleName=role_name, PolicyArn=mine)
    attached = iam.list_attached_role_policies(RoleName=role_name)
    assert attached["AttachedPolicies"] == [
        {"PolicyName": "AWSLambdaBasicExecutionRole", "PolicyArn": BASIC},
        {"PolicyName": "my-policy", "PolicyArn": mine},
    ]
    assert attached["IsTruncated"] is False
    page = iam.list_attached_role_policies(RoleName=role_name, MaxItems=1)
    assert page["IsTruncated"] is True
    rest = iam.list_attached_role_policies(RoleName=role_name, Marker=page["Marker"])
    assert [p["PolicyArn"] for p in page["AttachedPolicies"] + rest["AttachedPolicies"]] == [BASIC, mine]

    assert error(lambda: iam.delete_role(RoleName=role_name)) == (
        409,
        "DeleteConflict",
        "Cannot delete entity, must detach all policies first.",
    )
    iam.detach_role_policy(RoleName=role_name, PolicyArn=BASIC)
    assert error(lambda: iam.detach_role_policy(RoleName=role_name, PolicyArn=BASIC)) == (
        404,
        "NoSuchEntity",
        f"Policy {BASIC} was not found.",
    )
    assert error(lambda: iam.attach_role_policy(RoleName=role_name, PolicyArn="arn:aws:s3:::not-a-policy")) == (
        400,
        "InvalidInput",
        "ARN arn:aws:s3:::not-a-policy is not valid.",
    )
    iam.detach_role_policy(RoleName=role_name, PolicyArn=mine)
    assert iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"] == []
    iam.delete_role(RoleName=role_name)


def test_inline_policies(iam: Any, role_name: str) -> None:
    iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(TRUST))
    iam.put_role_policy(RoleName=role_name, PolicyName="read", PolicyDocument=json.dumps(INLINE))
    iam.put_role_policy(RoleName=role_name, PolicyName="also", PolicyDocument=json.dumps(INLINE))
    got = iam.get_role_policy(RoleName=role_name, PolicyName="read")
    assert (got["RoleName"], got["PolicyName"], got["PolicyDocument"]) == (role_name, "read", INLINE)
    replaced = {**INLINE, "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}
    iam.put_role_policy(RoleName=role_name, PolicyName="read", PolicyDocument=json.dumps(replaced))
    assert iam.get_role_policy(RoleName=role_name, PolicyName="read")["PolicyDocument"] == replaced
    assert iam.list_role_policies(RoleName=role_name)["PolicyNames"] == ["also", "read"]
    page = iam.list_role_policies(RoleName=role_name, MaxItems=1)
    assert (page["PolicyNames"], page["IsTruncated"]) == (["also"], True)

    assert error(lambda: iam.put_role_policy(RoleName=role_name, PolicyName="bad", PolicyDocument="[1, 2")) == (
        400,
        "MalformedPolicyDocument",
        "This policy contains invalid Json",
    )
    assert error(lambda: iam.delete_role(RoleName=role_name)) == (
        409,
        "DeleteConflict",
        "Cannot delete entity, must delete policies first.",
    )
    missing = "The role policy with name nope cannot be found."
    assert error(lambda: iam.get_role_policy(RoleName=role_name, PolicyName="nope")) == (404, "NoSuchEntity", missing)
    assert error(lambda: iam.delete_role_policy(RoleName=role_name, PolicyName="nope")) == (
        404,
        "NoSuchEntity",
        missing,
    )
    iam.delete_role_policy(RoleName=role_name, PolicyName="read")
    iam.delete_role_policy(RoleName=role_name, PolicyName="also")
    assert iam.list_role_policies(RoleName=role_name)["PolicyNames"] == []
    iam.delete_role(RoleName=role_name)


@pytest.mark.parametrize(
    "call",
    [
        lambda iam, n: iam.get_role(RoleName=n),
        lambda iam, n: iam.delete_role(RoleName=n),
        lambda iam, n: iam.attach_role_policy(RoleName=n, PolicyArn=BASIC),
        lambda iam, n: iam.detach_role_policy(RoleName=n, PolicyArn=BASIC),
        lambda iam, n: iam.list_attached_role_policies(RoleName=n),
        lambda iam, n: iam.put_role_policy(RoleName=n, PolicyName="p", PolicyDocument=json.dumps(INLINE)),
        lambda iam, n: iam.get_role_policy(RoleName=n, PolicyName="p"),
        lambda iam, n: iam.delete_role_policy(RoleName=n, PolicyName="p"),
        lambda iam, n: iam.list_role_policies(RoleName=n),
    ],
)
def test_operations_on_a_missing_role(iam: Any, call: Callable[[Any, str], object]) -> None:
    name = f"missing-{uuid.uuid4().hex[:8]}"
    status, code, message = error(lambda: call(iam, name))
    assert (status, code, message) == (404, "NoSuchEntity", f"The role with name {name} cannot be found.")
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        call(iam, name)


def test_roles_survive_a_restart(new_server: Any) -> None:
    server = new_server()
    iam = server.client("iam")
    created = iam.create_role(RoleName="durable", AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]
    iam.put_role_policy(RoleName="durable", PolicyName="p", PolicyDocument=json.dumps(INLINE))
    server.stop()
    server.start()
    iam = server.client("iam")
    assert iam.get_role(RoleName="durable")["Role"]["RoleId"] == created["RoleId"]
    assert iam.list_role_policies(RoleName="durable")["PolicyNames"] == ["p"]


# --- STS ----------------------------------------------------------------------------------------


def test_get_caller_identity_of_the_root_key(squall: SquallServer) -> None:
    identity = squall.client("sts").get_caller_identity()
    assert identity["Account"] == ACCOUNT
    assert identity["Arn"] == f"arn:aws:iam::{ACCOUNT}:root"
    assert identity["UserId"] == ACCOUNT
    assert identity["ResponseMetadata"]["RequestId"]


def test_a_function_is_its_execution_role_and_cannot_read_iam_or_logs(lam: Any, make_function: Any) -> None:
    make_function("whoami", function_zip("whoami", "app"), Timeout=30)
    response = lam.invoke(FunctionName="whoami", Payload=b"{}")
    result = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, result
    identity = result["identity"]
    arn = f"arn:aws:sts::{ACCOUNT}:assumed-role/squall-function/whoami"
    assert identity["Account"] == ACCOUNT
    assert identity["Arn"] == arn
    assert re.fullmatch(r"AROA[A-Z2-7]{17}:whoami", identity["UserId"])
    assert result["iam"]["code"] == "AccessDenied"
    assert result["iam"]["message"].startswith(f"User: {arn} is not authorized to perform: iam:ListRoles")
    assert result["logs"]["code"] == "AccessDeniedException"
    assert "logs:DescribeLogGroups" in result["logs"]["message"]


def test_unknown_actions(squall: SquallServer) -> None:
    sts = squall.client("sts")
    status, code, message = error(lambda: sts.get_session_token())
    assert (status, code) == (400, "InvalidAction")
    assert message == "Could not find operation GetSessionToken for version 2011-06-15"


def test_aws_cli_sts_get_caller_identity(squall: SquallServer) -> None:
    identity = aws_json(squall, "sts", "get-caller-identity")
    assert identity == {"UserId": ACCOUNT, "Account": ACCOUNT, "Arn": f"arn:aws:iam::{ACCOUNT}:root"}
