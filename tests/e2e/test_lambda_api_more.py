"""More of the Lambda API through boto3 against a live server: ListFunctions with
FunctionVersion=ALL, layer version permissions, and the code-plus-layers size limit."""

from __future__ import annotations

import io
import json
import os
import signal
import zipfile
from typing import Any

import pytest

from tests.conftest import make_zip

from .conftest import ROLE, error_of

pytestmark = pytest.mark.e2e

FUNCTION_ARN = "arn:aws:lambda:us-east-1:000000000000:function:"
LAYER_ARN = "arn:aws:lambda:us-east-1:000000000000:layer:"
HANDLER = "def handler(event, context):\n    return 1\n"
LIMIT = 262_144_000


def create(lam: Any, name: str, **kwargs: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "FunctionName": name,
        "Runtime": "python3.11",
        "Role": ROLE,
        "Handler": "app.handler",
        "Code": {"ZipFile": make_zip({"app.py": HANDLER})},
    }
    params.update(kwargs)
    created: dict[str, Any] = lam.create_function(**params)
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.05, "MaxAttempts": 200})
    return created


def settle(lam: Any, name: str) -> None:
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.05, "MaxAttempts": 200})


# --- ListFunctions FunctionVersion=ALL -----------------------------------------------------------
@pytest.fixture(scope="module")
def versioned(lam: Any) -> Any:
    """lfa-one with $LATEST and versions 1 and 2; lfa-two with $LATEST only."""
    create(lam, "lfa-one", Description="first")
    lam.publish_version(FunctionName="lfa-one")
    lam.update_function_configuration(FunctionName="lfa-one", Description="second")
    settle(lam, "lfa-one")
    lam.publish_version(FunctionName="lfa-one")
    create(lam, "lfa-two")
    yield
    for name in ("lfa-one", "lfa-two"):
        lam.delete_function(FunctionName=name)


def mine(functions: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    return [
        (f["FunctionName"], f["Version"], f["FunctionArn"], f["Description"])
        for f in functions
        if f["FunctionName"].startswith("lfa-")
    ]


EVERY_VERSION = [
    ("lfa-one", "$LATEST", FUNCTION_ARN + "lfa-one:$LATEST", "second"),
    ("lfa-one", "1", FUNCTION_ARN + "lfa-one:1", "first"),
    ("lfa-one", "2", FUNCTION_ARN + "lfa-one:2", "second"),
    ("lfa-two", "$LATEST", FUNCTION_ARN + "lfa-two:$LATEST", ""),
]


@pytest.mark.usefixtures("versioned")
def test_function_version_all_lists_every_version_with_qualified_arns(lam: Any) -> None:
    assert mine(lam.list_functions(FunctionVersion="ALL")["Functions"]) == EVERY_VERSION
    plain = mine(lam.list_functions()["Functions"])
    assert plain == [
        ("lfa-one", "$LATEST", FUNCTION_ARN + "lfa-one", "second"),
        ("lfa-two", "$LATEST", FUNCTION_ARN + "lfa-two", ""),
    ]


@pytest.mark.usefixtures("versioned")
@pytest.mark.parametrize("page_size", [1, 2, 3])
def test_function_version_all_pages_with_marker_and_max_items(lam: Any, page_size: int) -> None:
    seen: list[dict[str, Any]] = []
    pages = 0
    kwargs: dict[str, Any] = {"FunctionVersion": "ALL", "MaxItems": page_size}
    while True:
        page = lam.list_functions(**kwargs)
        pages += 1
        assert len(page["Functions"]) <= page_size
        seen += page["Functions"]
        if "NextMarker" not in page:
            break
        assert len(page["Functions"]) == page_size
        kwargs["Marker"] = page["NextMarker"]
    assert mine(seen) == EVERY_VERSION
    assert len({f["FunctionArn"] for f in seen}) == len(seen)  # no item twice across pages
    assert pages == -(-len(seen) // page_size)


@pytest.mark.usefixtures("versioned")
def test_function_version_all_through_the_paginator(lam: Any) -> None:
    paginator = lam.get_paginator("list_functions")
    seen = [
        f
        for page in paginator.paginate(FunctionVersion="ALL", PaginationConfig={"PageSize": 2})
        for f in page["Functions"]
    ]
    assert mine(seen) == EVERY_VERSION


def test_function_version_all_resumes_after_the_marked_version_is_deleted(lam: Any) -> None:
    create(lam, "lfb-gone")
    for description in ("v1", "v2", "v3"):
        lam.update_function_configuration(FunctionName="lfb-gone", Description=description)
        settle(lam, "lfb-gone")
        lam.publish_version(FunctionName="lfb-gone")
    try:
        marker = None
        while True:  # page to the one whose next item is lfb-gone:2
            kwargs: dict[str, Any] = {"FunctionVersion": "ALL", "MaxItems": 1}
            if marker:
                kwargs["Marker"] = marker
            page = lam.list_functions(**kwargs)
            marker = page["NextMarker"]
            if page["Functions"][0]["FunctionArn"] == FUNCTION_ARN + "lfb-gone:1":
                break
        lam.delete_function(FunctionName="lfb-gone", Qualifier="2")
        rest = lam.list_functions(FunctionVersion="ALL", Marker=marker)["Functions"]
        assert [f["FunctionArn"] for f in rest if f["FunctionName"] == "lfb-gone"] == [FUNCTION_ARN + "lfb-gone:3"]
    finally:
        lam.delete_function(FunctionName="lfb-gone")


def test_function_version_accepts_only_all(lam: Any) -> None:
    code, message, status, _ = error_of(lam.list_functions, FunctionVersion="LATEST")
    assert (code, status) == ("ValidationException", 400)
    assert message == (
        "1 validation error detected: Value 'LATEST' at 'functionVersion' failed to satisfy constraint: "
        "Member must satisfy enum value set: [ALL]"
    )


def test_master_region_needs_function_version_all_and_matches_no_replicas(lam: Any) -> None:
    code, message, status, _ = error_of(lam.list_functions, MasterRegion="eu-west-1")
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert message == (
        "The combination MasterArn=eu-west-1 and FunctionVersion=NULL is not supported. "
        "Please see our documentation for valid combinations of ListFunctions options."
    )
    assert lam.list_functions(MasterRegion="us-east-1", FunctionVersion="ALL")["Functions"] == []
    assert lam.list_functions(MasterRegion="ALL", FunctionVersion="ALL")["Functions"] == []
    code, message, status, _ = error_of(lam.list_functions, MasterRegion="mars", FunctionVersion="ALL")
    assert (code, status) == ("ValidationException", 400)
    assert message == (
        "1 validation error detected: Value 'mars' at 'masterRegion' failed to satisfy constraint: Member must "
        r"satisfy regular expression pattern: ALL|(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}"
    )


# --- layer version permissions -------------------------------------------------------------------
def publish_layer(lam: Any, name: str) -> int:
    version: int = lam.publish_layer_version(LayerName=name, Content={"ZipFile": make_zip({"f.txt": name})})["Version"]
    return version


def test_layer_permissions_add_get_remove(lam: Any) -> None:
    version = publish_layer(lam, "perm-layer")
    resource = f"{LAYER_ARN}perm-layer:{version}"
    added = lam.add_layer_version_permission(
        LayerName="perm-layer",
        VersionNumber=version,
        StatementId="xaccount",
        Action="lambda:GetLayerVersion",
        Principal="123456789012",
    )
    assert added["ResponseMetadata"]["HTTPStatusCode"] == 201
    first = {
        "Sid": "xaccount",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
        "Action": "lambda:GetLayerVersion",
        "Resource": resource,
    }
    assert json.loads(added["Statement"]) == first
    org = lam.add_layer_version_permission(
        LayerName=LAYER_ARN + "perm-layer",  # a layer ARN names the layer too
        VersionNumber=version,
        StatementId="org",
        Action="lambda:GetLayerVersion",
        Principal="*",
        OrganizationId="o-abcdefghij",
        RevisionId=added["RevisionId"],
    )
    second = {
        "Sid": "org",
        "Effect": "Allow",
        "Principal": "*",
        "Action": "lambda:GetLayerVersion",
        "Resource": resource,
        "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-abcdefghij"}},
    }
    assert json.loads(org["Statement"]) == second
    assert org["RevisionId"] != added["RevisionId"]

    policy = lam.get_layer_version_policy(LayerName="perm-layer", VersionNumber=version)
    assert policy["RevisionId"] == org["RevisionId"]
    assert json.loads(policy["Policy"]) == {"Version": "2012-10-17", "Id": "default", "Statement": [first, second]}

    removed = lam.remove_layer_version_permission(
        LayerName="perm-layer", VersionNumber=version, StatementId="xaccount", RevisionId=org["RevisionId"]
    )
    assert removed["ResponseMetadata"]["HTTPStatusCode"] == 204
    after = lam.get_layer_version_policy(LayerName="perm-layer", VersionNumber=version)
    assert json.loads(after["Policy"])["Statement"] == [second]
    assert error_of(
        lam.remove_layer_version_permission, LayerName="perm-layer", VersionNumber=version, StatementId="xaccount"
    )[:3] == ("ResourceNotFoundException", "Statement xaccount is not found in resource policy.", 404)
    lam.remove_layer_version_permission(LayerName="perm-layer", VersionNumber=version, StatementId="org")
    no_policy = ("ResourceNotFoundException", "No policy is associated with the given resource.", 404)
    assert error_of(lam.get_layer_version_policy, LayerName="perm-layer", VersionNumber=version)[:3] == no_policy
    assert (
        error_of(lam.remove_layer_version_permission, LayerName="perm-layer", VersionNumber=version, StatementId="org")[
            :3
        ]
        == no_policy
    )
    # Permissions belong to one version only.
    other = publish_layer(lam, "perm-layer")
    assert error_of(lam.get_layer_version_policy, LayerName="perm-layer", VersionNumber=other)[:3] == no_policy


def test_layer_permission_conflicts_and_revisions(lam: Any) -> None:
    version = publish_layer(lam, "perm-conflict")
    grant = {
        "LayerName": "perm-conflict",
        "VersionNumber": version,
        "StatementId": "same",
        "Action": "lambda:GetLayerVersion",
        "Principal": "*",
    }
    first = lam.add_layer_version_permission(**grant)
    assert error_of(lam.add_layer_version_permission, **grant)[:3] == (
        "ResourceConflictException",
        "The statement id (same) provided already exists. Please provide a new statement id, or remove the "
        "existing statement.",
        409,
    )
    stale = "6f0c6d0e-0000-4000-8000-000000000000"
    code, _, status, _ = error_of(
        lam.add_layer_version_permission, **{**grant, "StatementId": "b", "RevisionId": stale}
    )
    assert (code, status) == ("PreconditionFailedException", 412)
    code, _, status, _ = error_of(
        lam.remove_layer_version_permission,
        LayerName="perm-conflict",
        VersionNumber=version,
        StatementId="same",
        RevisionId=stale,
    )
    assert (code, status) == ("PreconditionFailedException", 412)
    policy = lam.get_layer_version_policy(LayerName="perm-conflict", VersionNumber=version)
    assert policy["RevisionId"] == first["RevisionId"]  # refused edits changed nothing
    assert [s["Sid"] for s in json.loads(policy["Policy"])["Statement"]] == ["same"]


def test_layer_permissions_of_a_missing_layer_version(lam: Any) -> None:
    publish_layer(lam, "perm-missing")
    missing = f"Layer version {LAYER_ARN}perm-missing:99 does not exist."
    expected = ("ResourceNotFoundException", missing, 404)
    grant = {"StatementId": "s", "Action": "lambda:GetLayerVersion", "Principal": "*"}
    args = {"LayerName": "perm-missing", "VersionNumber": 99}
    assert error_of(lam.add_layer_version_permission, **args, **grant)[:3] == expected
    assert error_of(lam.get_layer_version_policy, **args)[:3] == expected
    assert error_of(lam.remove_layer_version_permission, **args, StatementId="s")[:3] == expected


def test_deleting_a_layer_version_drops_its_permissions(lam: Any) -> None:
    version = publish_layer(lam, "perm-deleted")
    grant = {"StatementId": "s", "Action": "lambda:GetLayerVersion", "Principal": "*"}
    lam.add_layer_version_permission(LayerName="perm-deleted", VersionNumber=version, **grant)
    lam.delete_layer_version(LayerName="perm-deleted", VersionNumber=version)
    code, message, _, _ = error_of(lam.get_layer_version_policy, LayerName="perm-deleted", VersionNumber=version)
    assert (code, message) == ("ResourceNotFoundException", f"Layer version {LAYER_ARN}perm-deleted:1 does not exist.")


ACTION_PATTERN = "Member must satisfy regular expression pattern: lambda:GetLayerVersion"
ORG_PATTERN = "Member must satisfy regular expression pattern: o-[a-z0-9]{10,32}"


@pytest.mark.parametrize(
    ("member", "value", "constraints"),
    [
        ("Action", "lambda:InvokeFunction", [ACTION_PATTERN]),
        ("Action", "lambda:GetLayerVersionX", ["Member must have length less than or equal to 22", ACTION_PATTERN]),
        (
            "Principal",
            "s3.amazonaws.com",
            [r"Member must satisfy regular expression pattern: \d{12}|\*|arn:(aws[a-zA-Z-]*):iam::\d{12}:root"],
        ),
        ("StatementId", "bad id", ["Member must satisfy regular expression pattern: ([a-zA-Z0-9-_]+)"]),
        ("StatementId", "s" * 101, ["Member must have length less than or equal to 100"]),
        ("OrganizationId", "o-short", [ORG_PATTERN]),
        ("OrganizationId", "o-" + "a" * 33, ["Member must have length less than or equal to 34", ORG_PATTERN]),
    ],
)
def test_layer_permission_validation(lam: Any, member: str, value: str, constraints: list[str]) -> None:
    version = publish_layer(lam, "perm-valid")
    grant = {"StatementId": "s", "Action": "lambda:GetLayerVersion", "Principal": "*", member: value}
    code, message, status, _ = error_of(
        lam.add_layer_version_permission, LayerName="perm-valid", VersionNumber=version, **grant
    )
    wire_member = member[0].lower() + member[1:]
    count = f"{len(constraints)} validation error{'s' if len(constraints) > 1 else ''} detected: "
    violations = [f"Value '{value}' at '{wire_member}' failed to satisfy constraint: {c}" for c in constraints]
    assert (code, status) == ("ValidationException", 400)
    assert message == count + "; ".join(violations)
    code, _, _, _ = error_of(lam.get_layer_version_policy, LayerName="perm-valid", VersionNumber=version)
    assert code == "ResourceNotFoundException"  # nothing was added


def test_layer_permissions_survive_a_restart(new_server: Any) -> None:
    server = new_server()
    lam = server.client("lambda")
    version = publish_layer(lam, "perm-durable")
    added = lam.add_layer_version_permission(
        LayerName="perm-durable",
        VersionNumber=version,
        StatementId="keep",
        Action="lambda:GetLayerVersion",
        Principal="210987654321",
    )
    before = lam.get_layer_version_policy(LayerName="perm-durable", VersionNumber=version)
    server.stop(signal.SIGKILL)
    server.start()
    after = server.client("lambda").get_layer_version_policy(LayerName="perm-durable", VersionNumber=version)
    assert (after["Policy"], after["RevisionId"]) == (before["Policy"], before["RevisionId"])
    assert after["RevisionId"] == added["RevisionId"]


# --- code plus layers: 262,144,000 bytes unzipped --------------------------------------------------
def zeros_zip(name: str, size: int) -> bytes:
    """A zip holding ``size`` zero bytes in one file: it declares ``size`` but weighs ~size/1000."""
    buffer = io.BytesIO()
    chunk = bytes(1024 * 1024)
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive, archive.open(name, "w") as out:
        left = size
        while left:
            out.write(chunk[: min(left, len(chunk))])
            left -= min(left, len(chunk))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def big_layers(lam: Any) -> dict[str, str]:
    """Layers of 131,072,000 bytes unzipped, and two that bring tiny code to the limit and one past it."""
    code = make_zip({"app.py": HANDLER})
    code_size = sum(i.file_size for i in zipfile.ZipFile(io.BytesIO(code)).infolist())
    sizes = {"half": LIMIT // 2, "rest": LIMIT // 2 - code_size, "rest-plus-one": LIMIT // 2 - code_size + 1}
    arns: dict[str, str] = {}
    for key, size in sizes.items():
        published = lam.publish_layer_version(
            LayerName=f"big-{key}", Content={"ZipFile": zeros_zip(f"{key}.bin", size)}
        )
        arns[key] = published["LayerVersionArn"]
    return arns


def too_large(actual: int) -> str:
    return (
        f"Function code combined with layers exceeds the maximum allowed size of {LIMIT} bytes. "
        f"The actual size is {actual} bytes."
    )


@pytest.mark.slow
def test_code_and_layers_over_the_limit_are_refused_on_create(lam: Any, big_layers: dict[str, str]) -> None:
    code, message, status, _ = error_of(
        lam.create_function,
        FunctionName="big-over",
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": HANDLER})},
        Layers=[big_layers["half"], big_layers["rest-plus-one"]],
    )
    assert (code, message, status) == ("InvalidParameterValueException", too_large(LIMIT + 1), 400)
    assert error_of(lam.get_function, FunctionName="big-over")[0] == "ResourceNotFoundException"


@pytest.mark.slow
def test_code_and_layers_at_the_limit_are_accepted_and_updates_past_it_refused(
    lam: Any, big_layers: dict[str, str]
) -> None:
    create(lam, "big-at", Layers=[big_layers["half"], big_layers["rest"]])
    try:
        before = lam.get_function_configuration(FunctionName="big-at")
        assert [layer["Arn"] for layer in before["Layers"]] == [big_layers["half"], big_layers["rest"]]
        code, message, status, _ = error_of(
            lam.update_function_configuration,
            FunctionName="big-at",
            Layers=[big_layers["half"], big_layers["rest-plus-one"]],
        )
        assert (code, message, status) == ("InvalidParameterValueException", too_large(LIMIT + 1), 400)
        code, message, status, _ = error_of(
            lam.update_function_code, FunctionName="big-at", ZipFile=make_zip({"app.py": HANDLER + "\n"})
        )
        assert (code, message, status) == ("InvalidParameterValueException", too_large(LIMIT + 1), 400)
        after = lam.get_function_configuration(FunctionName="big-at")
        assert (after["RevisionId"], after["CodeSha256"]) == (before["RevisionId"], before["CodeSha256"])
        # Dropping a layer makes room again.
        lam.update_function_configuration(FunctionName="big-at", Layers=[big_layers["half"]])
        settle(lam, "big-at")
        lam.update_function_code(FunctionName="big-at", ZipFile=make_zip({"app.py": HANDLER + "\n"}))
    finally:
        lam.delete_function(FunctionName="big-at")


@pytest.mark.slow
def test_a_fifty_megabyte_zip_is_accepted_and_a_bigger_one_refused_with_lambdas_message(
    lam: Any, make_function: Any
) -> None:
    def stored_zip(size: int) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
            archive.writestr("app.py", HANDLER)
            archive.writestr("blob.bin", os.urandom(size))  # incompressible, so the zip is this big
        return buffer.getvalue()

    limit = 50 * 1024 * 1024
    at_limit = stored_zip(limit - 400)
    assert len(at_limit) <= limit
    make_function("zip-at-limit", at_limit)
    code, message, status, _ = error_of(
        lam.create_function,
        FunctionName="zip-over-limit",
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": stored_zip(limit + 1024)},
    )
    assert (code, status) == ("RequestEntityTooLargeException", 413)
    assert message == "Request must be smaller than 69905067 bytes for the CreateFunction operation"
