"""Versions, aliases and reserved concurrency through boto3 against a live server."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections import Counter
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import make_zip

from .conftest import ROLE, SquallServer, error_of

pytestmark = pytest.mark.e2e

ARN = "arn:aws:lambda:us-east-1:000000000000:function"


def package(tag: str) -> bytes:
    """A function that says which code it is, which version runs and what it was configured with."""
    return make_zip(
        {
            "app.py": (
                "import os, time\n"
                "def handler(event, context):\n"
                "    time.sleep(event.get('sleep', 0))\n"
                f"    return {{'code': {tag!r}, 'version': os.environ['AWS_LAMBDA_FUNCTION_VERSION'],\n"
                "            'colour': os.environ.get('COLOUR'), 'arn': context.invoked_function_arn}\n"
            )
        }
    )


def sha(zip_bytes: bytes) -> str:
    return base64.b64encode(hashlib.sha256(zip_bytes).digest()).decode()


def invoke(lam: Any, **kwargs: Any) -> tuple[dict[str, Any], str]:
    response = lam.invoke(**kwargs)
    assert response["StatusCode"] == 200 and "FunctionError" not in response
    return json.loads(response["Payload"].read()), response["ExecutedVersion"]


def wait_updated(lam: Any, name: str) -> None:
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 100})


@pytest.fixture(scope="module")
def raw_lam(squall: SquallServer) -> Any:
    """A client without botocore's own checks, so that the server's validation is what answers."""
    return squall.client("lambda", parameter_validation=False)


# --- versions -------------------------------------------------------------------------------------


def test_publish_list_get_and_invoke_versions(lam: Any, make_function: Any) -> None:
    one = package("one")
    make_function("ver-fn", one, Environment={"Variables": {"COLOUR": "red"}}, Description="latest desc")
    published = lam.publish_version(FunctionName="ver-fn", Description="first")
    assert published["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert published["Version"] == "1"
    assert published["FunctionArn"] == f"{ARN}:ver-fn:1"
    assert published["Description"] == "first"
    assert published["CodeSha256"] == sha(one)
    assert published["State"] == "Active"

    # Nothing changed since version 1: no new version, version 1 comes back.
    again = lam.publish_version(FunctionName="ver-fn")
    assert again["Version"] == "1" and again["RevisionId"] == published["RevisionId"]

    two = package("two")
    lam.update_function_code(FunctionName="ver-fn", ZipFile=two)
    wait_updated(lam, "ver-fn")
    code, message, status, _ = error_of(lam.publish_version, FunctionName="ver-fn", CodeSha256=sha(one))
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert message == (
        f"CodeSHA256 ({sha(one)}) is different from current CodeSHA256 in $LATEST ({sha(two)}). "
        "Please try again with the CodeSHA256 in $LATEST."
    )
    code, message, status, _ = error_of(
        lam.publish_version, FunctionName="ver-fn", RevisionId="00000000-0000-0000-0000-000000000000"
    )
    assert (code, status) == ("PreconditionFailedException", 412)
    assert message.startswith("The Revision Id provided does not match the latest Revision Id.")
    latest_revision = lam.get_function_configuration(FunctionName="ver-fn")["RevisionId"]
    second = lam.publish_version(FunctionName="ver-fn", CodeSha256=sha(two), RevisionId=latest_revision)
    assert second["Version"] == "2" and second["Description"] == "latest desc"

    lam.update_function_configuration(FunctionName="ver-fn", Environment={"Variables": {"COLOUR": "blue"}})
    wait_updated(lam, "ver-fn")
    assert lam.publish_version(FunctionName="ver-fn")["Version"] == "3"  # a config change is a change

    versions = lam.list_versions_by_function(FunctionName="ver-fn")["Versions"]
    assert [v["Version"] for v in versions] == ["$LATEST", "1", "2", "3"]
    assert [v["FunctionArn"].rsplit(":", 1)[1] for v in versions] == ["$LATEST", "1", "2", "3"]
    assert versions[0]["FunctionArn"] == f"{ARN}:ver-fn:$LATEST"  # moto, checked against AWS, does the same
    assert versions[2]["FunctionArn"] == f"{ARN}:ver-fn:2"
    seen, marker = [], None
    while True:
        page = lam.list_versions_by_function(
            FunctionName="ver-fn", MaxItems=1, **({"Marker": marker} if marker else {})
        )
        seen += [v["Version"] for v in page["Versions"]]
        assert len(page["Versions"]) == 1
        marker = page.get("NextMarker")
        if not marker:
            break
    assert seen == ["$LATEST", "1", "2", "3"]

    got = lam.get_function(FunctionName="ver-fn", Qualifier="1")["Configuration"]
    assert (got["Version"], got["FunctionArn"], got["CodeSha256"]) == ("1", f"{ARN}:ver-fn:1", sha(one))
    by_arn = lam.get_function_configuration(FunctionName=f"{ARN}:ver-fn:2")
    assert (by_arn["Version"], by_arn["CodeSha256"]) == ("2", sha(two))

    # Each version runs its own code and configuration.
    assert invoke(lam, FunctionName="ver-fn", Qualifier="1") == (
        {"code": "one", "version": "1", "colour": "red", "arn": f"{ARN}:ver-fn:1"},
        "1",
    )
    assert invoke(lam, FunctionName=f"{ARN}:ver-fn:2")[0]["code"] == "two"
    assert invoke(lam, FunctionName="ver-fn", Qualifier="2")[0]["colour"] == "red"
    assert invoke(lam, FunctionName="ver-fn", Qualifier="3") == (
        {"code": "two", "version": "3", "colour": "blue", "arn": f"{ARN}:ver-fn:3"},
        "3",
    )
    assert invoke(lam, FunctionName="ver-fn")[1] == "$LATEST"

    code, message, status, _ = error_of(lam.get_function, FunctionName="ver-fn", Qualifier="9")
    assert (code, status, message) == ("ResourceNotFoundException", 404, f"Function not found: {ARN}:ver-fn:9")
    code, _, status, _ = error_of(lam.invoke, FunctionName="ver-fn", Qualifier="9")
    assert (code, status) == ("ResourceNotFoundException", 404)
    for call in (lam.publish_version, lam.list_versions_by_function):
        code, message, status, _ = error_of(call, FunctionName="no-such-ver-fn")
        assert (code, status, message) == (
            "ResourceNotFoundException",
            404,
            f"Function not found: {ARN}:no-such-ver-fn",
        )


def test_publish_on_create_and_on_code_update(lam: Any, make_function: Any) -> None:
    created = make_function("pub-fn", package("one"), Publish=True)
    assert created["Version"] == "1" and created["FunctionArn"] == f"{ARN}:pub-fn:1"
    updated = lam.update_function_code(FunctionName="pub-fn", ZipFile=package("two"), Publish=True)
    assert updated["Version"] == "2" and updated["CodeSha256"] == sha(package("two"))
    wait_updated(lam, "pub-fn")
    assert [v["Version"] for v in lam.list_versions_by_function(FunctionName="pub-fn")["Versions"]] == [
        "$LATEST",
        "1",
        "2",
    ]
    assert invoke(lam, FunctionName="pub-fn", Qualifier="1")[0]["code"] == "one"
    assert invoke(lam, FunctionName="pub-fn", Qualifier="2")[0]["code"] == "two"


def test_delete_one_version(lam: Any, make_function: Any) -> None:
    make_function("delver-fn", package("one"), Publish=True)
    lam.update_function_configuration(FunctionName="delver-fn", Description="changed")
    wait_updated(lam, "delver-fn")
    assert lam.publish_version(FunctionName="delver-fn")["Version"] == "2"

    code, message, status, _ = error_of(lam.delete_function, FunctionName="delver-fn", Qualifier="$LATEST")
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert message == "$LATEST version cannot be deleted without deleting the function."

    lam.create_alias(FunctionName="delver-fn", Name="live", FunctionVersion="1")
    code, message, status, _ = error_of(lam.delete_function, FunctionName="delver-fn", Qualifier="1")
    assert (code, status) == ("ResourceConflictException", 409)
    assert message == "Unable to delete version because the following aliases reference it: [live]"

    response = lam.delete_function(FunctionName="delver-fn", Qualifier="2")
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 204
    code, _, status, _ = error_of(lam.get_function, FunctionName="delver-fn", Qualifier="2")
    assert (code, status) == ("ResourceNotFoundException", 404)
    code, _, status, _ = error_of(lam.delete_function, FunctionName="delver-fn", Qualifier="2")
    assert (code, status) == ("ResourceNotFoundException", 404)
    assert lam.get_function(FunctionName="delver-fn", Qualifier="1")["Configuration"]["Version"] == "1"

    # Version numbers are never reused.
    lam.update_function_configuration(FunctionName="delver-fn", Description="changed again")
    wait_updated(lam, "delver-fn")
    assert lam.publish_version(FunctionName="delver-fn")["Version"] == "3"

    # Deleting the function takes its versions and aliases with it.
    lam.delete_function(FunctionName="delver-fn")
    make_function("delver-fn", package("one"))
    assert [v["Version"] for v in lam.list_versions_by_function(FunctionName="delver-fn")["Versions"]] == ["$LATEST"]
    assert lam.list_aliases(FunctionName="delver-fn")["Aliases"] == []


# --- aliases --------------------------------------------------------------------------------------


def test_alias_crud(lam: Any, raw_lam: Any, make_function: Any) -> None:
    make_function("alias-fn", package("one"), Publish=True)
    lam.update_function_code(FunctionName="alias-fn", ZipFile=package("two"), Publish=True)
    wait_updated(lam, "alias-fn")

    created = lam.create_alias(FunctionName="alias-fn", Name="live", FunctionVersion="1", Description="prod")
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert created["AliasArn"] == f"{ARN}:alias-fn:live"
    assert (created["Name"], created["FunctionVersion"], created["Description"]) == ("live", "1", "prod")
    assert "RoutingConfig" not in created and created["RevisionId"]
    got = lam.get_alias(FunctionName="alias-fn", Name="live")
    assert {k: got[k] for k in ("AliasArn", "Name", "FunctionVersion", "Description", "RevisionId")} == {
        k: created[k] for k in ("AliasArn", "Name", "FunctionVersion", "Description", "RevisionId")
    }

    code, message, status, _ = error_of(lam.create_alias, FunctionName="alias-fn", Name="live", FunctionVersion="2")
    assert (code, status, message) == ("ResourceConflictException", 409, f"Alias already exists: {ARN}:alias-fn:live")
    code, message, status, _ = error_of(lam.get_alias, FunctionName="alias-fn", Name="nope")
    assert (code, status, message) == ("ResourceNotFoundException", 404, f"Cannot find alias arn: {ARN}:alias-fn:nope")
    code, message, status, _ = error_of(lam.create_alias, FunctionName="alias-fn", Name="x", FunctionVersion="7")
    assert (code, status, message) == ("ResourceNotFoundException", 404, f"Function not found: {ARN}:alias-fn:7")
    code, message, status, _ = error_of(lam.create_alias, FunctionName="no-fn-here", Name="x", FunctionVersion="1")
    assert (code, status, message) == ("ResourceNotFoundException", 404, f"Function not found: {ARN}:no-fn-here")

    code, _, status, _ = error_of(
        lam.update_alias, FunctionName="alias-fn", Name="live", FunctionVersion="2", RevisionId="stale"
    )
    assert (code, status) == ("PreconditionFailedException", 412)
    updated = lam.update_alias(FunctionName="alias-fn", Name="live", FunctionVersion="2", RevisionId=got["RevisionId"])
    assert updated["FunctionVersion"] == "2" and updated["Description"] == "prod"
    assert updated["RevisionId"] != got["RevisionId"]
    code, _, status, _ = error_of(lam.update_alias, FunctionName="alias-fn", Name="ghost", FunctionVersion="2")
    assert (code, status) == ("ResourceNotFoundException", 404)

    # Get* and Invoke through the alias describe and run the version it points to.
    config = lam.get_function(FunctionName="alias-fn", Qualifier="live")["Configuration"]
    assert (config["FunctionArn"], config["Version"]) == (f"{ARN}:alias-fn:live", "2")
    config = lam.get_function_configuration(FunctionName=f"{ARN}:alias-fn:live")
    assert (config["FunctionArn"], config["Version"]) == (f"{ARN}:alias-fn:live", "2")
    result, executed = invoke(lam, FunctionName="alias-fn", Qualifier="live")
    assert executed == "2" and result["code"] == "two" and result["arn"] == f"{ARN}:alias-fn:live"
    code, message, status, _ = error_of(lam.invoke, FunctionName="alias-fn", Qualifier="nope")
    assert (code, status, message) == ("ResourceNotFoundException", 404, f"Function not found: {ARN}:alias-fn:nope")
    code, _, status, _ = error_of(lam.get_function, FunctionName="alias-fn", Qualifier="nope")
    assert (code, status) == ("ResourceNotFoundException", 404)

    lam.create_alias(FunctionName="alias-fn", Name="beta", FunctionVersion="1")
    lam.create_alias(FunctionName="alias-fn", Name="canary", FunctionVersion="2")
    names = [a["Name"] for a in lam.list_aliases(FunctionName="alias-fn")["Aliases"]]
    assert names == ["beta", "canary", "live"]
    assert [a["Name"] for a in lam.list_aliases(FunctionName="alias-fn", FunctionVersion="2")["Aliases"]] == [
        "canary",
        "live",
    ]
    first = lam.list_aliases(FunctionName="alias-fn", MaxItems=2)
    assert [a["Name"] for a in first["Aliases"]] == ["beta", "canary"]
    rest = lam.list_aliases(FunctionName="alias-fn", MaxItems=2, Marker=first["NextMarker"])
    assert [a["Name"] for a in rest["Aliases"]] == ["live"] and "NextMarker" not in rest
    code, _, status, _ = error_of(raw_lam.list_aliases, FunctionName="alias-fn", MaxItems=0)
    assert (code, status) == ("ValidationException", 400)

    deleted = lam.delete_alias(FunctionName="alias-fn", Name="beta")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    code, _, status, _ = error_of(lam.get_alias, FunctionName="alias-fn", Name="beta")
    assert (code, status) == ("ResourceNotFoundException", 404)
    code, _, status, _ = error_of(lam.list_aliases, FunctionName="no-fn-here")
    assert (code, status) == ("ResourceNotFoundException", 404)


def test_alias_validation(lam: Any, raw_lam: Any, make_function: Any) -> None:
    make_function("aliasval-fn", package("one"), Publish=True)
    lam.update_function_code(FunctionName="aliasval-fn", ZipFile=package("two"), Publish=True)
    wait_updated(lam, "aliasval-fn")

    assert lam.create_alias(FunctionName="aliasval-fn", Name="a" * 128, FunctionVersion="1")["Name"] == "a" * 128
    code, message, status, _ = error_of(
        lam.create_alias, FunctionName="aliasval-fn", Name="a" * 129, FunctionVersion="1"
    )
    assert (code, status) == ("ValidationException", 400)
    assert message == (
        f"1 validation error detected: Value '{'a' * 129}' at 'name' failed to satisfy constraint: "
        "Member must have length less than or equal to 128"
    )
    code, message, _, _ = error_of(lam.create_alias, FunctionName="aliasval-fn", Name="123", FunctionVersion="1")
    assert code == "ValidationException"
    assert message == (
        "1 validation error detected: Value '123' at 'name' failed to satisfy constraint: Member must satisfy "
        "regular expression pattern: (?!^[0-9]+$)([a-zA-Z0-9-_]+)"
    )
    code, _, _, _ = error_of(lam.create_alias, FunctionName="aliasval-fn", Name="bad!", FunctionVersion="1")
    assert code == "ValidationException"
    code, message, _, _ = error_of(lam.create_alias, FunctionName="aliasval-fn", Name="v", FunctionVersion="one")
    assert code == "ValidationException" and "at 'functionVersion'" in message
    assert lam.create_alias(FunctionName="aliasval-fn", Name="latest", FunctionVersion="$LATEST")[
        "FunctionVersion"
    ] == ("$LATEST")

    # Weights: 0.0 and 1.0 are the bounds.
    for weight in (0.0, 1.0):
        alias = lam.create_alias(
            FunctionName="aliasval-fn",
            Name=f"w{int(weight)}",
            FunctionVersion="1",
            RoutingConfig={"AdditionalVersionWeights": {"2": weight}},
        )
        assert alias["RoutingConfig"] == {"AdditionalVersionWeights": {"2": weight}}
    for weight in (-0.1, 1.1):
        code, message, status, _ = error_of(
            raw_lam.create_alias,
            FunctionName="aliasval-fn",
            Name="wbad",
            FunctionVersion="1",
            RoutingConfig={"AdditionalVersionWeights": {"2": weight}},
        )
        assert (code, status) == ("ValidationException", 400)
        assert message == (
            f"1 validation error detected: Value '{{2={weight}}}' at 'routingConfig.additionalVersionWeights' "
            "failed to satisfy constraint: Map value must satisfy constraint: [Member must have value less than "
            "or equal to 1.0, Member must have value greater than or equal to 0.0, Member must not be null]"
        )
    lam.update_function_configuration(FunctionName="aliasval-fn", Description="three")
    wait_updated(lam, "aliasval-fn")
    lam.publish_version(FunctionName="aliasval-fn")
    code, message, status, _ = error_of(
        lam.create_alias,
        FunctionName="aliasval-fn",
        Name="wtwo",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.1, "3": 0.1}},
    )
    assert (code, status, message) == (
        "InvalidParameterValueException",
        400,
        "Number of items in AdditionalVersionWeights cannot be greater than 1",
    )
    code, message, _, _ = error_of(
        lam.create_alias,
        FunctionName="aliasval-fn",
        Name="wsame",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"1": 0.5}},
    )
    assert (code, message) == (
        "InvalidParameterValueException",
        "Invalid function version 1. Function version 1 is already included in routing configuration.",
    )
    code, message, _, _ = error_of(
        lam.create_alias,
        FunctionName="aliasval-fn",
        Name="wlatest",
        FunctionVersion="$LATEST",
        RoutingConfig={"AdditionalVersionWeights": {"1": 0.5}},
    )
    assert (code, message) == (
        "InvalidParameterValueException",
        "$LATEST is not supported for an alias pointing to more than 1 version",
    )
    code, message, status, _ = error_of(
        lam.create_alias,
        FunctionName="aliasval-fn",
        Name="wmissing",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"8": 0.5}},
    )
    assert (code, status, message) == ("ResourceNotFoundException", 404, f"Function not found: {ARN}:aliasval-fn:8")
    # Updating to an empty routing config removes it.
    cleared = lam.update_alias(FunctionName="aliasval-fn", Name="w0", RoutingConfig={"AdditionalVersionWeights": {}})
    assert "RoutingConfig" not in cleared
    # A version only reached through a routing weight is referenced too.
    code, message, _, _ = error_of(lam.delete_function, FunctionName="aliasval-fn", Qualifier="2")
    assert (code, message) == (
        "ResourceConflictException",
        "Unable to delete version because the following aliases reference it: [w1]",
    )


def test_weighted_alias_really_splits_traffic(lam: Any, make_function: Any) -> None:
    make_function("split-fn", package("one"), Publish=True)
    lam.update_function_code(FunctionName="split-fn", ZipFile=package("two"), Publish=True)
    wait_updated(lam, "split-fn")
    lam.create_alias(
        FunctionName="split-fn",
        Name="live",
        FunctionVersion="1",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.3}},
    )
    ran: Counter[str] = Counter()
    for _ in range(200):
        result, executed = invoke(lam, FunctionName="split-fn", Qualifier="live", Payload=b"{}")
        assert result["version"] == executed and result["code"] == {"1": "one", "2": "two"}[executed]
        ran[executed] += 1
    assert set(ran) == {"1", "2"}
    assert 30 <= ran["2"] <= 90, ran  # 15%..45% of 200 at weight 0.3

    # Weight 0 sends nothing to the extra version; 1.0 sends everything.
    lam.update_alias(FunctionName="split-fn", Name="live", RoutingConfig={"AdditionalVersionWeights": {"2": 0.0}})
    assert {invoke(lam, FunctionName="split-fn", Qualifier="live")[1] for _ in range(20)} == {"1"}
    lam.update_alias(FunctionName="split-fn", Name="live", RoutingConfig={"AdditionalVersionWeights": {"2": 1.0}})
    assert {invoke(lam, FunctionName="split-fn", Qualifier="live")[1] for _ in range(20)} == {"2"}


# --- reserved concurrency -------------------------------------------------------------------------


def test_reserved_concurrency_operations_and_limits(lam: Any, raw_lam: Any, make_function: Any) -> None:
    make_function("conc-fn", package("one"))
    assert lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == 1000
    empty = lam.get_function_concurrency(FunctionName="conc-fn")
    assert "ReservedConcurrentExecutions" not in empty
    assert "Concurrency" not in lam.get_function(FunctionName="conc-fn")

    try:
        put = lam.put_function_concurrency(FunctionName="conc-fn", ReservedConcurrentExecutions=900)
        assert put["ReservedConcurrentExecutions"] == 900
        assert lam.get_function_concurrency(FunctionName="conc-fn")["ReservedConcurrentExecutions"] == 900
        assert lam.get_function(FunctionName="conc-fn")["Concurrency"] == {"ReservedConcurrentExecutions": 900}
        assert lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == 100
        code, message, status, _ = error_of(
            lam.put_function_concurrency, FunctionName="conc-fn", ReservedConcurrentExecutions=901
        )
        assert (code, status) == ("InvalidParameterValueException", 400)
        assert message == (
            "Specified ReservedConcurrentExecutions for function decreases account's "
            "UnreservedConcurrentExecution below its minimum value of [100]."
        )
        assert lam.get_function_concurrency(FunctionName="conc-fn")["ReservedConcurrentExecutions"] == 900
        assert (
            lam.put_function_concurrency(FunctionName="conc-fn", ReservedConcurrentExecutions=899)[
                "ReservedConcurrentExecutions"
            ]
            == 899
        )
    finally:
        deleted = lam.delete_function_concurrency(FunctionName="conc-fn")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName="conc-fn")
    assert lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == 1000

    code, message, status, _ = error_of(
        raw_lam.put_function_concurrency, FunctionName="conc-fn", ReservedConcurrentExecutions=-1
    )
    assert (code, status) == ("ValidationException", 400)
    assert message == (
        "1 validation error detected: Value '-1' at 'reservedConcurrentExecutions' failed to satisfy "
        "constraint: Member must have value greater than or equal to 0"
    )
    for call, kwargs in [
        (lam.put_function_concurrency, {"ReservedConcurrentExecutions": 1}),
        (lam.get_function_concurrency, {}),
        (lam.delete_function_concurrency, {}),
    ]:
        code, message, status, _ = error_of(call, FunctionName="no-conc-fn", **kwargs)
        assert (code, status, message) == ("ResourceNotFoundException", 404, f"Function not found: {ARN}:no-conc-fn")


def test_reserved_zero_throttles_every_invoke(lam: Any, make_function: Any) -> None:
    make_function("zero-fn", package("one"), Publish=True)
    lam.create_alias(FunctionName="zero-fn", Name="live", FunctionVersion="1")
    assert (
        lam.put_function_concurrency(FunctionName="zero-fn", ReservedConcurrentExecutions=0)[
            "ReservedConcurrentExecutions"
        ]
        == 0
    )
    for qualifier in ({}, {"Qualifier": "1"}, {"Qualifier": "live"}):
        code, message, status, response = error_of(lam.invoke, FunctionName="zero-fn", **qualifier)
        assert (code, status, message) == ("TooManyRequestsException", 429, "Rate Exceeded.")
        assert response["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    lam.delete_function_concurrency(FunctionName="zero-fn")
    assert invoke(lam, FunctionName="zero-fn")[0]["code"] == "one"


def test_reserved_one_admits_one_at_a_time(squall: SquallServer, lam: Any, make_function: Any) -> None:
    make_function("one-fn", package("one"), Timeout=15)
    make_function("free-fn", package("free"))
    lam.put_function_concurrency(FunctionName="one-fn", ReservedConcurrentExecutions=1)
    invoke(lam, FunctionName="one-fn")  # warm
    slow_client = squall.client("lambda")
    slow: dict[str, Any] = {}

    def run_slow() -> None:
        # Retried while a probe below happens to hold the slot.
        deadline = time.monotonic() + 20
        while "result" not in slow and time.monotonic() < deadline:
            try:
                slow["result"] = invoke(slow_client, FunctionName="one-fn", Payload=json.dumps({"sleep": 2}).encode())
            except ClientError:
                time.sleep(0.01)

    thread = threading.Thread(target=run_slow)
    thread.start()
    throttled = None
    deadline = time.monotonic() + 10
    time.sleep(0.3)
    while throttled is None and time.monotonic() < deadline:
        try:
            invoke(lam, FunctionName="one-fn")
        except ClientError as exc:
            throttled = exc.response
        else:
            time.sleep(0.2)
    # Functions without a reservation are not held back by it.
    assert invoke(lam, FunctionName="free-fn")[0]["code"] == "free"
    thread.join()
    assert slow["result"][0]["code"] == "one"
    assert throttled is not None, "a second invoke ran while the only reserved slot was busy"
    assert throttled["Error"]["Code"] == "TooManyRequestsException"
    assert throttled["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    assert invoke(lam, FunctionName="one-fn")[0]["code"] == "one"
    lam.delete_function_concurrency(FunctionName="one-fn")


def test_versions_aliases_and_reservations_survive_a_restart(new_server: Any) -> None:
    server = new_server()
    lam = server.client("lambda")
    lam.create_function(
        FunctionName="keep-fn",
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": package("one")},
        Publish=True,
    )
    lam.create_alias(FunctionName="keep-fn", Name="live", FunctionVersion="1", Description="kept")
    lam.put_function_concurrency(FunctionName="keep-fn", ReservedConcurrentExecutions=0)
    server.stop()
    server.start()
    lam = server.client("lambda")
    assert [v["Version"] for v in lam.list_versions_by_function(FunctionName="keep-fn")["Versions"]] == ["$LATEST", "1"]
    assert lam.get_alias(FunctionName="keep-fn", Name="live")["Description"] == "kept"
    assert lam.get_function_concurrency(FunctionName="keep-fn")["ReservedConcurrentExecutions"] == 0
    code, _, status, response = error_of(lam.invoke, FunctionName="keep-fn", Qualifier="live")
    assert (code, status, response["Reason"]) == (
        "TooManyRequestsException",
        429,
        "ReservedFunctionConcurrentInvocationLimitExceeded",
    )
    lam.delete_function_concurrency(FunctionName="keep-fn")
    assert invoke(lam, FunctionName="keep-fn", Qualifier="live")[1] == "1"
    # A new version after the restart continues the numbering.
    lam.update_function_configuration(FunctionName="keep-fn", Description="after restart")
    wait_updated(lam, "keep-fn")
    assert lam.publish_version(FunctionName="keep-fn")["Version"] == "2"
