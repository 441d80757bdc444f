"""The Lambda API through boto3 against a live server: every operation and its errors."""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.request
from typing import Any

import pytest

from tests.conftest import function_zip, make_zip

from .conftest import ROLE, error_of

pytestmark = pytest.mark.e2e


def test_create_get_list_update_delete(lam: Any, make_function: Any) -> None:
    package = function_zip("probe", "app")
    created = make_function("crud-fn", package, Description="first", Environment={"Variables": {"AB": "1"}})
    assert created["FunctionName"] == "crud-fn"
    assert created["FunctionArn"] == "arn:aws:lambda:us-east-1:000000000000:function:crud-fn"
    assert created["State"] == "Pending"
    assert created["Version"] == "$LATEST"
    assert created["Timeout"] == 3 and created["MemorySize"] == 128
    assert created["CodeSha256"] == base64.b64encode(hashlib.sha256(package).digest()).decode()
    assert created["CodeSize"] == len(package)
    assert created["Architectures"] == ["x86_64"] and created["EphemeralStorage"] == {"Size": 512}
    assert created["PackageType"] == "Zip"
    assert created["LastModified"].endswith("+0000")

    got = lam.get_function(FunctionName="crud-fn")
    assert got["Configuration"]["State"] == "Active"
    assert got["Configuration"]["Environment"] == {"Variables": {"AB": "1"}}
    with urllib.request.urlopen(got["Code"]["Location"]) as response:
        assert response.read() == package
    config = lam.get_function_configuration(FunctionName="crud-fn")
    assert config["RevisionId"] == got["Configuration"]["RevisionId"]

    names = [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    assert "crud-fn" in names

    updated = lam.update_function_configuration(
        FunctionName="crud-fn", Timeout=10, MemorySize=256, Description="second"
    )
    assert updated["Timeout"] == 10 and updated["MemorySize"] == 256
    assert updated["LastUpdateStatus"] == "InProgress"
    lam.get_waiter("function_updated_v2").wait(FunctionName="crud-fn", WaiterConfig={"Delay": 1})
    assert updated["RevisionId"] != config["RevisionId"]

    new_package = make_zip({"app.py": "def handler(e, c):\n    return 'v2'\n"})
    code = lam.update_function_code(FunctionName="crud-fn", ZipFile=new_package)
    assert code["CodeSha256"] == base64.b64encode(hashlib.sha256(new_package).digest()).decode()
    lam.get_waiter("function_updated_v2").wait(FunctionName="crud-fn", WaiterConfig={"Delay": 1})
    assert json.loads(lam.invoke(FunctionName="crud-fn")["Payload"].read()) == "v2"

    lam.delete_function(FunctionName="crud-fn")
    code_, message, status, _ = error_of(lam.get_function, FunctionName="crud-fn")
    assert (code_, status) == ("ResourceNotFoundException", 404)
    assert message == "Function not found: arn:aws:lambda:us-east-1:000000000000:function:crud-fn"


def test_list_functions_pages_with_marker(lam: Any, make_function: Any) -> None:
    package = function_zip("probe", "app")
    for i in range(3):
        make_function(f"page-fn-{i}", package)
    first = lam.list_functions(MaxItems=2)
    assert len(first["Functions"]) == 2 and "NextMarker" in first
    seen = [f["FunctionName"] for f in first["Functions"]]
    marker = first["NextMarker"]
    while marker:
        page = lam.list_functions(MaxItems=2, Marker=marker)
        seen += [f["FunctionName"] for f in page["Functions"]]
        marker = page.get("NextMarker")
    assert {f"page-fn-{i}" for i in range(3)} <= set(seen)
    assert len(seen) == len(set(seen))


def test_create_conflict_and_validation_errors(lam: Any, make_function: Any) -> None:
    package = function_zip("probe", "app")
    make_function("dup-fn", package)
    code, message, status, _ = error_of(
        lam.create_function,
        FunctionName="dup-fn",
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": package},
    )
    assert (code, status, message) == ("ResourceConflictException", 409, "Function already exist: dup-fn")

    base = {"Runtime": "python3.11", "Role": ROLE, "Handler": "app.handler", "Code": {"ZipFile": package}}
    code, message, status, _ = error_of(lam.create_function, FunctionName="bad-timeout", Timeout=901, **base)
    assert (code, status) == ("ValidationException", 400)
    assert message == (
        "1 validation error detected: Value '901' at 'timeout' failed to satisfy constraint: "
        "Member must have value less than or equal to 900"
    )
    code, message, status, _ = error_of(lam.create_function, FunctionName="bad-mem", MemorySize=10241, **base)
    assert code == "ValidationException" and "at 'memorySize'" in message
    code, message, status, _ = error_of(
        lam.create_function,
        FunctionName="bad-zip",
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": b"not a zip"},
    )
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert message == "Could not unzip uploaded file. Please check your file, then try to upload again."
    code, message, status, _ = error_of(
        lam.create_function, FunctionName="bad-env", Environment={"Variables": {"AWS_REGION": "x"}}, **base
    )
    assert code == "InvalidParameterValueException" and "Reserved keys used in this request: AWS_REGION" in message
    code, message, status, _ = error_of(
        lam.create_function, FunctionName="bad-env-name", Environment={"Variables": {"A": "x"}}, **base
    )
    assert code == "ValidationException"
    assert message == (
        "1 validation error detected: Value at 'environment.variables' failed to satisfy "
        "constraint: Map keys must satisfy constraint: [Member must satisfy regular expression "
        "pattern: [a-zA-Z]([a-zA-Z0-9_])+]"
    )
    code, message, status, _ = error_of(
        lam.create_function,
        FunctionName="bad-runtime",
        Runtime="python9.9",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": package},
    )
    assert code == "ValidationException" and "Member must satisfy enum value set" in message


def test_not_found_errors_on_every_operation(lam: Any) -> None:
    for call, kwargs in [
        (lam.get_function, {}),
        (lam.get_function_configuration, {}),
        (lam.delete_function, {}),
        (lam.invoke, {}),
        (lam.update_function_configuration, {"Timeout": 5}),
        (lam.update_function_code, {"ZipFile": make_zip({"a.py": ""})}),
    ]:
        code, message, status, _ = error_of(call, FunctionName="no-such-fn", **kwargs)
        assert (code, status) == ("ResourceNotFoundException", 404), call
        assert message.startswith("Function not found: arn:aws:lambda:us-east-1:000000000000:function:no-such-fn")


def test_revision_id_precondition(lam: Any, make_function: Any) -> None:
    make_function("rev-fn", function_zip("probe", "app"))
    code, _, status, _ = error_of(
        lam.update_function_configuration,
        FunctionName="rev-fn",
        Timeout=5,
        RevisionId="00000000-0000-0000-0000-000000000000",
    )
    assert (code, status) == ("PreconditionFailedException", 412)


def test_account_settings(lam: Any) -> None:
    settings = lam.get_account_settings()
    assert settings["AccountLimit"]["ConcurrentExecutions"] == 1000
    assert settings["AccountLimit"]["CodeSizeZipped"] == 52428800
    assert settings["AccountUsage"]["FunctionCount"] >= 0


def test_function_arn_and_qualifier_forms(lam: Any, make_function: Any) -> None:
    make_function("arn-fn", function_zip("probe", "app"))
    arn = "arn:aws:lambda:us-east-1:000000000000:function:arn-fn"
    assert lam.get_function(FunctionName=arn)["Configuration"]["FunctionName"] == "arn-fn"
    assert lam.get_function(FunctionName="000000000000:function:arn-fn")["Configuration"]["FunctionName"] == "arn-fn"
    response = lam.invoke(FunctionName=f"{arn}:$LATEST", Payload=b"{}")
    assert response["ExecutedVersion"] == "$LATEST"
    response["Payload"].read()
    response = lam.invoke(FunctionName="arn-fn", Qualifier="$LATEST", Payload=b"{}")
    assert response["StatusCode"] == 200
    response["Payload"].read()
    code, _, status, _ = error_of(lam.invoke, FunctionName="arn-fn", Qualifier="7")
    assert (code, status) == ("ResourceNotFoundException", 404)
    code, _, status, _ = error_of(lam.get_function, FunctionName="bad name!")
    assert (code, status) == ("ValidationException", 400)
