"""Provisioned concurrency through boto3: the four operations, their errors, warm pre-initialised
environments, spillover to on-demand ones, restart and teardown."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_zip
from tests.e2e.conftest import ROLE, SquallServer, error_of

pytestmark = pytest.mark.e2e

ARN = "arn:aws:lambda:us-east-1:000000000000:function"
UNPUBLISHED = "Provisioned Concurrency Configs cannot be applied to unpublished function versions."
NOT_PUBLISHED_TARGET = "The function resource provided must be an alias or a published version."

APP = """
import os
import time

INITIALISED = time.time()


def handler(event, context):
    if event.get("crash"):
        os._exit(3)
    time.sleep(event.get("sleep", 0))
    return {
        "init_type": os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"],
        "version": os.environ["AWS_LAMBDA_FUNCTION_VERSION"],
        "initialised": INITIALISED,
    }
"""


def package(marker: str = "") -> bytes:
    return make_zip({"app.py": APP + f"\n# {marker}\n"})


def create(lam: Any, name: str, marker: str = "") -> None:
    lam.create_function(
        FunctionName=name, Runtime="python3.11", Role=ROLE, Handler="app.handler", Code={"ZipFile": package(marker)}
    )
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.05, "MaxAttempts": 200})


@contextmanager
def created(lam: Any, name: str) -> Iterator[None]:
    """A function for one test, deleted (with its versions and configs) when the test ends."""
    create(lam, name)
    try:
        yield
    finally:
        lam.delete_function(FunctionName=name)


def publish(lam: Any, name: str, marker: str) -> str:
    """A new version with different code (so PublishVersion does publish)."""
    lam.update_function_code(FunctionName=name, ZipFile=package(marker))
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.05, "MaxAttempts": 200})
    return str(lam.publish_version(FunctionName=name)["Version"])


def wait_status(lam: Any, name: str, qualifier: str, status: str = "READY", timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        config: dict[str, Any] = lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier=qualifier)
        if config["Status"] == status or time.monotonic() > deadline:
            assert config["Status"] == status, config
            return config
        time.sleep(0.1)


def invoke(lam: Any, name: str, qualifier: str | None = None, **event: Any) -> tuple[dict[str, Any], str]:
    """(payload, log tail) of one synchronous invocation."""
    kwargs: dict[str, Any] = {"FunctionName": name, "Payload": json.dumps(event).encode(), "LogType": "Tail"}
    if qualifier is not None:
        kwargs["Qualifier"] = qualifier
    response = lam.invoke(**kwargs)
    return json.loads(response["Payload"].read()), base64.b64decode(response["LogResult"]).decode()


def report_line(log: str) -> str:
    return next(line for line in log.splitlines() if line.startswith("REPORT "))


def sandbox_count(server: SquallServer) -> int:
    """Live sandboxes of a server: each has a directory under the data dir until it is cleaned up."""
    root = server.data_dir / "sandboxes"
    return sum(1 for entry in Path(root).iterdir() if entry.is_dir() and not entry.name.startswith("."))


def wait_count(server: SquallServer, expected: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while sandbox_count(server) != expected and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sandbox_count(server) == expected


def test_put_get_list_delete(lam: Any) -> None:
    name = "pc-ops"
    with created(lam, name):
        version = publish(lam, name, "v1")
        put = lam.put_provisioned_concurrency_config(
            FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=2
        )
        assert put["ResponseMetadata"]["HTTPStatusCode"] == 202
        assert put["RequestedProvisionedConcurrentExecutions"] == 2
        assert put["AllocatedProvisionedConcurrentExecutions"] == 0
        assert put["AvailableProvisionedConcurrentExecutions"] == 0
        assert put["Status"] == "IN_PROGRESS"
        assert "StatusReason" not in put
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000", put["LastModified"])

        ready = wait_status(lam, name, version)
        assert ready["AllocatedProvisionedConcurrentExecutions"] == 2
        assert ready["AvailableProvisionedConcurrentExecutions"] == 2
        assert ready["RequestedProvisionedConcurrentExecutions"] == 2
        assert ready["LastModified"] == put["LastModified"]

        listed = lam.list_provisioned_concurrency_configs(FunctionName=name)["ProvisionedConcurrencyConfigs"]
        assert [item["FunctionArn"] for item in listed] == [f"{ARN}:{name}:{version}"]
        assert listed[0]["Status"] == "READY" and listed[0]["RequestedProvisionedConcurrentExecutions"] == 2

        # A function ARN with the qualifier in it names the same config.
        by_arn = lam.get_provisioned_concurrency_config(FunctionName=f"{ARN}:{name}:{version}", Qualifier=version)
        assert by_arn["RequestedProvisionedConcurrentExecutions"] == 2

        deleted = lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier=version)
        assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
        code, message, status, _ = error_of(
            lam.get_provisioned_concurrency_config, FunctionName=name, Qualifier=version
        )
        assert (code, message, status) == (
            "ProvisionedConcurrencyConfigNotFoundException",
            "No Provisioned Concurrency Config found for this function",
            404,
        )
        assert lam.list_provisioned_concurrency_configs(FunctionName=name)["ProvisionedConcurrencyConfigs"] == []
        # Deleting again is not an error.
        lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier=version)


def test_qualifier_errors(lam: Any) -> None:
    name = "pc-qualifiers"
    with created(lam, name):
        version = publish(lam, name, "v1")
        put = lam.put_provisioned_concurrency_config
        code, message, status, _ = error_of(
            put, FunctionName=name, Qualifier="$LATEST", ProvisionedConcurrentExecutions=1
        )
        assert (code, message, status) == ("InvalidParameterValueException", UNPUBLISHED, 400)
        for call in (lam.get_provisioned_concurrency_config, lam.delete_provisioned_concurrency_config):
            code, message, status, _ = error_of(call, FunctionName=name, Qualifier="$LATEST")
            assert (code, message, status) == ("InvalidParameterValueException", NOT_PUBLISHED_TARGET, 400)

        code, message, status, _ = error_of(put, FunctionName=name, Qualifier="7", ProvisionedConcurrentExecutions=1)
        assert (code, message, status) == ("ResourceNotFoundException", f"Function not found: {ARN}:{name}:7", 404)
        code, message, _, _ = error_of(put, FunctionName=name, Qualifier="nope", ProvisionedConcurrentExecutions=1)
        assert (code, message) == ("ResourceNotFoundException", f"Cannot find alias arn: {ARN}:{name}:nope")
        code, message, _, _ = error_of(lam.get_provisioned_concurrency_config, FunctionName=name, Qualifier="7")
        assert (code, message) == ("ResourceNotFoundException", f"Function not found: {ARN}:{name}:7")
        code, _, _, _ = error_of(put, FunctionName="pc-missing", Qualifier="1", ProvisionedConcurrentExecutions=1)
        assert code == "ResourceNotFoundException"
        code, _, _, _ = error_of(lam.list_provisioned_concurrency_configs, FunctionName="pc-missing")
        assert code == "ResourceNotFoundException"

        lam.create_alias(FunctionName=name, Name="latest", FunctionVersion="$LATEST")
        code, message, _, _ = error_of(put, FunctionName=name, Qualifier="latest", ProvisionedConcurrentExecutions=1)
        assert (code, message) == ("InvalidParameterValueException", UNPUBLISHED)

        second = publish(lam, name, "v2")
        lam.create_alias(
            FunctionName=name,
            Name="canary",
            FunctionVersion=version,
            RoutingConfig={"AdditionalVersionWeights": {second: 0.5}},
        )
        code, message, _, _ = error_of(put, FunctionName=name, Qualifier="canary", ProvisionedConcurrentExecutions=1)
        assert (code, message) == (
            "InvalidParameterValueException",
            "Alias with weights can not be used with Provisioned Concurrency",
        )


def test_validation_errors(squall: SquallServer) -> None:
    raw = squall.client("lambda", parameter_validation=False)
    name = "pc-validation"
    create(raw, name)
    try:
        version = publish(raw, name, "v1")
        put = raw.put_provisioned_concurrency_config
        code, message, status, _ = error_of(
            put, FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=0
        )
        assert (code, status) == ("ValidationException", 400)
        assert message == (
            "1 validation error detected: Value '0' at 'provisionedConcurrentExecutions' failed to satisfy "
            "constraint: Member must have value greater than or equal to 1"
        )
        put(FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=1)
        for bad in (0, 51):
            code, message, _, _ = error_of(raw.list_provisioned_concurrency_configs, FunctionName=name, MaxItems=bad)
            assert code == "ValidationException" and "'maxItems'" in message
        assert (
            len(
                raw.list_provisioned_concurrency_configs(FunctionName=name, MaxItems=50)[
                    "ProvisionedConcurrencyConfigs"
                ]
            )
            == 1
        )
    finally:
        raw.delete_function(FunctionName=name)


def test_one_config_per_version_and_pages(lam: Any) -> None:
    name = "pc-overlap"
    with created(lam, name):
        first = publish(lam, name, "v1")
        second = publish(lam, name, "v2")
        lam.create_alias(FunctionName=name, Name="blue", FunctionVersion=first)
        lam.create_alias(FunctionName=name, Name="green", FunctionVersion=second)
        put = lam.put_provisioned_concurrency_config
        put(FunctionName=name, Qualifier=first, ProvisionedConcurrentExecutions=1)
        code, message, status, _ = error_of(put, FunctionName=name, Qualifier="blue", ProvisionedConcurrentExecutions=1)
        assert (code, status) == ("ResourceConflictException", 409)
        assert (
            message == "Alias can't be used for Provisioned Concurrency configuration on an already Provisioned version"
        )
        put(FunctionName=name, Qualifier="green", ProvisionedConcurrentExecutions=1)
        code, message, _, _ = error_of(put, FunctionName=name, Qualifier=second, ProvisionedConcurrentExecutions=1)
        assert (code, message) == ("ResourceConflictException", "Version is pointed by a Provisioned Concurrency alias")

        page = lam.list_provisioned_concurrency_configs(FunctionName=name, MaxItems=1)
        assert [c["FunctionArn"] for c in page["ProvisionedConcurrencyConfigs"]] == [f"{ARN}:{name}:{first}"]
        rest = lam.list_provisioned_concurrency_configs(FunctionName=name, Marker=page["NextMarker"])
        assert [c["FunctionArn"] for c in rest["ProvisionedConcurrencyConfigs"]] == [f"{ARN}:{name}:green"]
        assert "NextMarker" not in rest


def test_concurrency_limits(lam: Any) -> None:
    name = "pc-limits"
    with created(lam, name):
        version = publish(lam, name, "v1")
        put = lam.put_provisioned_concurrency_config
        # Without a reservation: the account's 1000 must keep 100 unreserved.
        code, message, _, _ = error_of(put, FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=901)
        assert (code, message) == (
            "InvalidParameterValueException",
            "Specified ConcurrentExecutions for function decreases account's UnreservedConcurrentExecution "
            "below its minimum value of [100].",
        )
        unreserved = lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"]
        lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
        code, message, _, _ = error_of(put, FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=2)
        assert (code, message) == (
            "InvalidParameterValueException",
            "Requested Provisioned Concurrency should not be greater than the reservedConcurrentExecution for function",
        )
        put(FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=1)
        wait_status(lam, name, version)
        # Provisioned concurrency lives inside the reservation: neither figure changes.
        assert lam.get_function_concurrency(FunctionName=name)["ReservedConcurrentExecutions"] == 1
        assert lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == unreserved - 1
        # ...but it takes all of the reservation: $LATEST has nothing left and is throttled, as on Lambda,
        # while the provisioned version runs.
        code, _, status, response = error_of(lam.invoke, FunctionName=name, Payload=b"{}")
        assert (code, status) == ("TooManyRequestsException", 429)
        assert response["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
        assert invoke(lam, name, version)[0]["init_type"] == "provisioned-concurrency"


def test_invocations_use_provisioned_environments_first(lam: Any) -> None:
    name = "pc-invoke"
    with created(lam, name):
        version = publish(lam, name, "v1")
        lam.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
        lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="live", ProvisionedConcurrentExecutions=1)
        wait_status(lam, name, "live")

        for qualifier in (version, "live"):
            payload, log = invoke(lam, name, qualifier)
            assert payload["init_type"] == "provisioned-concurrency"
            assert payload["version"] == version
            assert "Init Duration" not in report_line(log)

        # $LATEST is on demand: a cold start with its init duration.
        payload, log = invoke(lam, name)
        assert payload["init_type"] == "on-demand"
        assert "Init Duration" in report_line(log)

        # Three at once with one provisioned environment: the other two spill over to on-demand ones.
        def one(_: int) -> dict[str, Any]:
            return invoke(lam, name, "live", sleep=1.5)[0]

        with ThreadPoolExecutor(3) as pool:
            results = list(pool.map(one, range(3)))
        assert sorted(r["init_type"] for r in results) == ["on-demand", "on-demand", "provisioned-concurrency"]
        assert {r["version"] for r in results} == {version}


@pytest.mark.slow
def test_environments_survive_restart_are_replaced_and_torn_down(new_server: Any) -> None:
    server: SquallServer = new_server()
    lam = server.client("lambda")
    name = "pc-durable"
    create(lam, name)
    version = publish(lam, name, "v1")
    put = lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=2
    )
    wait_status(lam, name, version)
    wait_count(server, 2)

    server.stop()
    again = SquallServer(server.data_dir)
    again.start()
    try:
        lam = again.client("lambda")
        config = lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier=version)
        assert config["LastModified"] == put["LastModified"]
        assert config["RequestedProvisionedConcurrentExecutions"] == 2
        wait_status(lam, name, version)
        wait_count(again, 2)
        payload, log = invoke(lam, name, version)
        assert payload["init_type"] == "provisioned-concurrency" and "Init Duration" not in report_line(log)

        # An environment that dies is replaced.
        payload, _ = invoke(lam, name, version, crash=True)
        assert payload["errorType"] == "Runtime.ExitError"
        wait_status(lam, name, version)
        wait_count(again, 2)
        assert invoke(lam, name, version)[0]["init_type"] == "provisioned-concurrency"

        # Deleting the config tears its environments down; so does deleting the function.
        lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier=version)
        wait_count(again, 0)
        lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=1)
        wait_status(lam, name, version)
        wait_count(again, 1)
        lam.delete_function(FunctionName=name, Qualifier=version)
        wait_count(again, 0)
        assert lam.list_provisioned_concurrency_configs(FunctionName=name)["ProvisionedConcurrencyConfigs"] == []
        lam.delete_function(FunctionName=name)
    finally:
        again.stop()


def test_failed_initialisation(lam: Any) -> None:
    name = "pc-broken"
    lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": "raise RuntimeError('no init for you')\n"})},
        Publish=True,
    )
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.05, "MaxAttempts": 200})
    try:
        lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="1", ProvisionedConcurrentExecutions=1)
        failed = wait_status(lam, name, "1", "FAILED")
        assert failed["StatusReason"] == "FUNCTION_ERROR_INIT_FAILURE"
        assert failed["AllocatedProvisionedConcurrentExecutions"] == 0
    finally:
        lam.delete_function(FunctionName=name)


def test_alias_config_follows_the_alias(lam: Any) -> None:
    name = "pc-follow"
    with created(lam, name):
        first = publish(lam, name, "v1")
        second = publish(lam, name, "v2")
        lam.create_alias(FunctionName=name, Name="live", FunctionVersion=first)
        lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="live", ProvisionedConcurrentExecutions=1)
        wait_status(lam, name, "live")

        # Repointed: the environment moves to the new version.
        lam.update_alias(FunctionName=name, Name="live", FunctionVersion=second)
        deadline = time.monotonic() + 20
        while True:
            payload, _ = invoke(lam, name, "live")
            if payload["init_type"] == "provisioned-concurrency" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert payload == {**payload, "init_type": "provisioned-concurrency", "version": second}
        assert invoke(lam, name, first)[0]["init_type"] == "on-demand"

        # Deleting the alias deletes its config.
        lam.delete_alias(FunctionName=name, Name="live")
        deadline = time.monotonic() + 10
        while lam.list_provisioned_concurrency_configs(FunctionName=name)["ProvisionedConcurrencyConfigs"]:
            assert time.monotonic() < deadline, "the config of a deleted alias stayed"
            time.sleep(0.1)
