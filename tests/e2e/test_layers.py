"""Layers through boto3 against a live server: publish, read, list, delete, and use under /opt."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
import urllib.request
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import make_zip

pytestmark = pytest.mark.e2e

ARN = "arn:aws:lambda:us-east-1:000000000000:layer:"
NOT_FOUND = "The resource you requested does not exist."

HANDLER = """
import os, sys
import shared
def handler(event, context):
    return {
        "who": shared.WHO,
        "extra": open("/opt/data.txt").read() if os.path.exists("/opt/data.txt") else None,
        "path": [p for p in sys.path if "opt" in p],
    }
"""


def error_of(call: Any, **kwargs: Any) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    response = info.value.response
    return response["Error"]["Code"], response["Error"]["Message"], response["ResponseMetadata"]["HTTPStatusCode"]


def publish(lam: Any, name: str, files: dict[str, str | bytes], **kwargs: Any) -> dict[str, Any]:
    result: dict[str, Any] = lam.publish_layer_version(LayerName=name, Content={"ZipFile": make_zip(files)}, **kwargs)
    return result


def test_publish_get_list_delete(lam: Any) -> None:
    package = make_zip({"python/lib1.py": "X = 1\n"})
    first = lam.publish_layer_version(
        LayerName="crud-layer",
        Content={"ZipFile": package},
        Description="first",
        CompatibleRuntimes=["python3.11", "python3.12"],
        CompatibleArchitectures=["x86_64"],
        LicenseInfo="MIT",
    )
    assert first["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert first["LayerArn"] == ARN + "crud-layer"
    assert first["LayerVersionArn"] == ARN + "crud-layer:1"
    assert first["Version"] == 1
    assert first["Description"] == "first" and first["LicenseInfo"] == "MIT"
    assert first["CompatibleRuntimes"] == ["python3.11", "python3.12"]
    assert first["CompatibleArchitectures"] == ["x86_64"]
    assert first["Content"]["CodeSha256"] == base64.b64encode(hashlib.sha256(package).digest()).decode()
    assert first["Content"]["CodeSize"] == len(package)
    assert first["CreatedDate"].endswith("+0000")
    with urllib.request.urlopen(first["Content"]["Location"]) as response:
        assert response.read() == package

    second = publish(lam, "crud-layer", {"python/lib2.py": "Y = 2\n"}, CompatibleRuntimes=["python3.12"])
    assert second["Version"] == 2

    got = lam.get_layer_version(LayerName="crud-layer", VersionNumber=1)
    assert got["LayerVersionArn"] == first["LayerVersionArn"] and got["Description"] == "first"
    by_arn = lam.get_layer_version_by_arn(Arn=ARN + "crud-layer:2")
    assert by_arn["Version"] == 2
    # A layer ARN works where a name does.
    assert lam.get_layer_version(LayerName=ARN + "crud-layer", VersionNumber=2)["Version"] == 2

    versions = lam.list_layer_versions(LayerName="crud-layer")["LayerVersions"]
    assert [v["Version"] for v in versions] == [2, 1]  # newest first
    filtered = lam.list_layer_versions(LayerName="crud-layer", CompatibleRuntime="python3.11")["LayerVersions"]
    assert [v["Version"] for v in filtered] == [1]
    assert lam.list_layer_versions(LayerName="no-such-layer")["LayerVersions"] == []

    layers = {item["LayerName"]: item for item in lam.list_layers()["Layers"]}
    assert layers["crud-layer"]["LayerArn"] == ARN + "crud-layer"
    assert layers["crud-layer"]["LatestMatchingVersion"]["Version"] == 2
    matching = {i["LayerName"]: i for i in lam.list_layers(CompatibleRuntime="python3.11")["Layers"]}
    assert matching["crud-layer"]["LatestMatchingVersion"]["Version"] == 1
    arm = {i["LayerName"] for i in lam.list_layers(CompatibleArchitecture="arm64")["Layers"]}
    assert "crud-layer" not in arm

    deleted = lam.delete_layer_version(LayerName="crud-layer", VersionNumber=2)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert error_of(lam.get_layer_version, LayerName="crud-layer", VersionNumber=2) == (
        "ResourceNotFoundException",
        NOT_FOUND,
        404,
    )
    # Deleting again is not an error; numbers are never reused.
    lam.delete_layer_version(LayerName="crud-layer", VersionNumber=2)
    assert publish(lam, "crud-layer", {"a.txt": "a"})["Version"] == 3


@pytest.fixture(scope="module")
def raw(squall: Any) -> Any:
    """A client that sends what it is given, so the server's own range checks are reached."""
    return squall.client("lambda", parameter_validation=False)


def test_layer_errors_and_bounds(lam: Any, raw: Any) -> None:
    assert error_of(lam.get_layer_version, LayerName="missing-layer", VersionNumber=1)[0] == (
        "ResourceNotFoundException"
    )
    assert error_of(lam.get_layer_version_by_arn, Arn=ARN + "missing-layer:7")[:2] == (
        "ResourceNotFoundException",
        NOT_FOUND,
    )
    code, message, status = error_of(lam.get_layer_version_by_arn, Arn="not-an-arn")
    assert (code, status) == ("ValidationException", 400) and "at 'arn' failed to satisfy constraint" in message

    # Names: 140 characters at most, of [a-zA-Z0-9-_].
    assert publish(lam, "n" * 140, {"a.txt": "a"})["Version"] == 1
    code, message, _ = error_of(lam.publish_layer_version, LayerName="n" * 141, Content={"ZipFile": b"x"})
    assert code == "ValidationException"
    assert message == (
        f"1 validation error detected: Value '{'n' * 141}' at 'layerName' failed to satisfy constraint: "
        "Member must have length less than or equal to 140"
    )
    code, message, _ = error_of(lam.publish_layer_version, LayerName="bad.name", Content={"ZipFile": b"x"})
    assert code == "ValidationException" and "at 'layerName'" in message

    # Description 256, LicenseInfo 512, CompatibleRuntimes 15, CompatibleArchitectures 2.
    assert publish(lam, "bounds", {"a.txt": "a"}, Description="d" * 256, LicenseInfo="l" * 512)["Version"] == 1
    code, message, _ = error_of(
        lam.publish_layer_version, LayerName="bounds", Content={"ZipFile": b"x"}, Description="d" * 257
    )
    assert code == "ValidationException" and "at 'description'" in message
    code, message, _ = error_of(
        lam.publish_layer_version, LayerName="bounds", Content={"ZipFile": b"x"}, LicenseInfo="l" * 513
    )
    assert code == "ValidationException" and "at 'licenseInfo'" in message
    runtimes = ["python3.8", "python3.9", "python3.10", "python3.11", "python3.12", "python3.13", "python3.14"]
    runtimes += ["nodejs18.x", "nodejs20.x", "nodejs22.x", "java17", "java21", "ruby3.2", "ruby3.3", "provided"]
    assert len(runtimes) == 15
    assert publish(lam, "bounds", {"a.txt": "a"}, CompatibleRuntimes=runtimes)["Version"] == 2
    code, message, _ = error_of(
        lam.publish_layer_version,
        LayerName="bounds",
        Content={"ZipFile": b"x"},
        CompatibleRuntimes=[*runtimes, "dotnet8"],
    )
    assert code == "ValidationException" and "Member must have length less than or equal to 15" in message
    assert publish(lam, "bounds", {"a.txt": "a"}, CompatibleArchitectures=["x86_64", "arm64"])["Version"] == 3
    code, message, _ = error_of(
        lam.publish_layer_version,
        LayerName="bounds",
        Content={"ZipFile": b"x"},
        CompatibleArchitectures=["x86_64", "arm64", "x86_64"],
    )
    assert code == "ValidationException" and "Member must have length less than or equal to 2" in message
    code, message, _ = error_of(
        lam.publish_layer_version, LayerName="bounds", Content={"ZipFile": b"x"}, CompatibleRuntimes=["cobol"]
    )
    assert code == "ValidationException" and "at 'compatibleRuntimes'" in message

    code, message, _ = error_of(lam.publish_layer_version, LayerName="bounds", Content={"ZipFile": b"not a zip"})
    assert (code, message) == (
        "InvalidParameterValueException",
        "Could not unzip uploaded file. Please check your file, then try to upload again.",
    )
    # MaxItems 1..50.
    assert len(lam.list_layers(MaxItems=1)["Layers"]) == 1
    assert error_of(raw.list_layers, MaxItems=0)[0] == "ValidationException"
    lam.list_layers(MaxItems=50)
    code, message, _ = error_of(lam.list_layers, MaxItems=51)
    assert message.endswith(
        "at 'maxItems' failed to satisfy constraint: Member must have value less than or equal to 50"
    )


def test_list_layers_pages(lam: Any) -> None:
    for name in ("page-a", "page-b", "page-c"):
        publish(lam, name, {"a.txt": name})
    seen: list[str] = []
    marker = None
    while True:
        kwargs = {"Marker": marker} if marker else {}
        page = lam.list_layers(MaxItems=2, **kwargs)
        assert len(page["Layers"]) <= 2
        seen += [i["LayerName"] for i in page["Layers"]]
        marker = page.get("NextMarker")
        if not marker:
            break
    assert {"page-a", "page-b", "page-c"} <= set(seen) and len(seen) == len(set(seen))


def test_function_imports_from_layers_in_order(lam: Any, make_function: Any) -> None:
    base = publish(
        lam,
        "deps-base",
        {"python/shared.py": "WHO = 'base'\n", "data.txt": "from base", "python/only_base.py": "B = 1\n"},
    )
    top = publish(lam, "deps-top", {"python/shared.py": "WHO = 'top'\n"})
    package = make_zip({"app.py": HANDLER})
    created = make_function("layered-fn", package, Layers=[base["LayerVersionArn"], top["LayerVersionArn"]])
    assert created["Layers"] == [
        {"Arn": base["LayerVersionArn"], "CodeSize": base["Content"]["CodeSize"]},
        {"Arn": top["LayerVersionArn"], "CodeSize": top["Content"]["CodeSize"]},
    ]
    assert lam.get_function(FunctionName="layered-fn")["Configuration"]["Layers"] == created["Layers"]
    result = json.loads(lam.invoke(FunctionName="layered-fn")["Payload"].read())
    assert result["who"] == "top"  # the later layer overrides the earlier one's file
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    assert [p.rsplit("/opt", 1)[-1] for p in result["path"][:2]] == [f"/python/lib/{version}/site-packages", "/python"]
    if os.geteuid() == 0:  # confined: the merged layers are the sandbox's own read-only /opt
        assert result["path"][:2] == [f"/opt/python/lib/{version}/site-packages", "/opt/python"]
        assert result["extra"] == "from base"

    # Reversed order: the base layer wins. The pool key changes, so a new sandbox sees it.
    lam.update_function_configuration(
        FunctionName="layered-fn", Layers=[top["LayerVersionArn"], base["LayerVersionArn"]]
    )
    lam.get_waiter("function_updated_v2").wait(FunctionName="layered-fn", WaiterConfig={"Delay": 0.05})
    assert json.loads(lam.invoke(FunctionName="layered-fn")["Payload"].read())["who"] == "base"

    # Without layers the module is gone.
    lam.update_function_configuration(FunctionName="layered-fn", Layers=[])
    lam.get_waiter("function_updated_v2").wait(FunctionName="layered-fn", WaiterConfig={"Delay": 0.05})
    assert "Layers" not in lam.get_function_configuration(FunctionName="layered-fn")
    response = lam.invoke(FunctionName="layered-fn")
    assert response["FunctionError"] == "Unhandled"
    assert json.loads(response["Payload"].read())["errorType"] == "Runtime.ImportModuleError"

    # A layer version deleted after it was attached keeps working for the function.
    lam.update_function_configuration(FunctionName="layered-fn", Layers=[top["LayerVersionArn"]])
    lam.get_waiter("function_updated_v2").wait(FunctionName="layered-fn", WaiterConfig={"Delay": 0.05})
    lam.delete_layer_version(LayerName="deps-top", VersionNumber=top["Version"])
    assert json.loads(lam.invoke(FunctionName="layered-fn")["Payload"].read())["who"] == "top"


def test_function_layer_errors(lam: Any, make_function: Any) -> None:
    missing = ARN + "never-published:3"
    package = make_zip({"app.py": "def handler(e, c):\n    return 1\n"})
    with pytest.raises(ClientError) as info:
        make_function("layer-missing-fn", package, Layers=[missing])
    error = info.value.response["Error"]
    assert (error["Code"], error["Message"]) == (
        "InvalidParameterValueException",
        f"Layer version {missing} does not exist.",
    )

    six = [publish(lam, f"six-{i}", {"a.txt": str(i)})["LayerVersionArn"] for i in range(6)]
    created = make_function("five-layers-fn", package, Layers=six[:5])
    assert [layer["Arn"] for layer in created["Layers"]] == six[:5]
    code, message, _ = error_of(lam.update_function_configuration, FunctionName="five-layers-fn", Layers=six)
    assert (code, message) == ("InvalidParameterValueException", "Cannot reference more than 5 layers.")
    newer = publish(lam, "six-0", {"a.txt": "newer"})["LayerVersionArn"]
    code, message, _ = error_of(
        lam.update_function_configuration, FunctionName="five-layers-fn", Layers=[six[0], newer]
    )
    assert (code, message) == (
        "InvalidParameterValueException",
        "Two different versions of the same layer are not allowed to be referenced in the same function. "
        f"{six[0]} and {newer} are versions of the same layer.",
    )
    elsewhere = six[0].replace("us-east-1", "eu-west-1")
    code, message, _ = error_of(lam.update_function_configuration, FunctionName="five-layers-fn", Layers=[elsewhere])
    assert (code, message) == (
        "InvalidParameterValueException",
        "Layers are not in the same region as the function. Layers are expected to be in region us-east-1.",
    )
    code, message, _ = error_of(
        lam.update_function_configuration, FunctionName="five-layers-fn", Layers=[ARN + "unversioned"]
    )
    assert code == "ValidationException"
    assert message.startswith(f"1 validation error detected: Value '[{ARN}unversioned]' at 'layers'")
