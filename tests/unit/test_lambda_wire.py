"""Lambda's wire rules: names, validation messages, environment checks, response shapes."""

import pytest

from squall.api import lambda_wire as wire
from squall.errors import InvalidParameterValue, ValidationError
from squall.models import FunctionConfig


@pytest.mark.parametrize(
    ("raw", "qualifier", "expected"),
    [
        ("my-fn", None, ("my-fn", None)),
        ("my-fn:live", None, ("my-fn", "live")),
        ("my-fn", "3", ("my-fn", "3")),
        ("123456789012:function:my-fn", None, ("my-fn", None)),
        ("arn:aws:lambda:us-east-1:123456789012:function:my-fn", None, ("my-fn", None)),
        ("arn:aws:lambda:us-east-1:123456789012:function:my-fn:$LATEST", None, ("my-fn", "$LATEST")),
    ],
)
def test_function_name_forms(raw: str, qualifier: str | None, expected: tuple[str, str | None]) -> None:
    assert wire.split_function_name(raw, qualifier) == expected


def test_bad_names_and_conflicting_qualifiers() -> None:
    with pytest.raises(ValidationError, match="Member must satisfy regular expression pattern"):
        wire.split_function_name("bad name")
    with pytest.raises(ValidationError, match="length less than or equal to 64"):
        wire.split_function_name("x" * 65)
    with pytest.raises(InvalidParameterValue, match="derived qualifier"):
        wire.split_function_name("fn:1", "2")


def test_violations_are_counted_and_joined() -> None:
    v = wire.Violations()
    v.at_most(901, "timeout", 900)
    v.at_least(64, "memorySize", 128)
    with pytest.raises(ValidationError) as info:
        v.raise_if_any()
    assert info.value.message == (
        "2 validation errors detected: Value '901' at 'timeout' failed to satisfy constraint: Member must have "
        "value less than or equal to 900; Value '64' at 'memorySize' failed to satisfy constraint: Member must "
        "have value greater than or equal to 128"
    )
    assert info.value.status == 400 and info.value.code == "ValidationException"


def test_environment_limits() -> None:
    assert wire.check_environment({"Environment": {"Variables": {"KEY": "v"}}}) == {"KEY": "v"}
    with pytest.raises(InvalidParameterValue, match="Reserved keys used in this request: AWS_REGION, _HANDLER"):
        wire.check_environment({"Environment": {"Variables": {"_HANDLER": "x", "AWS_REGION": "y"}}})
    with pytest.raises(InvalidParameterValue, match="exceeded the 4KB limit"):
        wire.check_environment({"Environment": {"Variables": {"BIG": "x" * 4100}}})


def test_function_configuration_shape() -> None:
    config = FunctionConfig(
        name="f",
        runtime="python3.11",
        role="arn:aws:iam::000000000000:role/r",
        handler="app.handler",
        code_sha256="abc=",
        code_size=10,
        state="Active",
    )
    body = wire.function_configuration(config, "arn:aws:lambda:us-east-1:000000000000:function:f")
    assert body["FunctionName"] == "f" and body["Version"] == "$LATEST"
    assert body["LoggingConfig"] == {"LogFormat": "Text", "LogGroup": "/aws/lambda/f"}
    assert body["EphemeralStorage"] == {"Size": 512} and body["Architectures"] == ["x86_64"]
    assert "Environment" not in body and "DeadLetterConfig" not in body
    assert all(value is not None for value in body.values())
