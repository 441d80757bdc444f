"""The in-sandbox Python runtime: handler loading and invocation, as awslambdaric does them."""

import json
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from squall.runtime.bootstrap import shim


@pytest.fixture
def code_dir(tmp_path: Path) -> Iterator[Path]:
    sys.path.insert(0, str(tmp_path))
    yield tmp_path
    sys.path.remove(str(tmp_path))
    for name in [m for m in sys.modules if m.startswith("shimtest")]:
        del sys.modules[name]


def fault(handler: str) -> shim.FaultError:
    with pytest.raises(shim.FaultError) as info:
        shim.load_handler(handler)
    return info.value


def test_handler_rules(code_dir: Path) -> None:
    (code_dir / "shimtest_ok.py").write_text("def go(e, c):\n    return e\n")
    (code_dir / "shimtest_pkg").mkdir()
    (code_dir / "shimtest_pkg" / "mod.py").write_text("def go(e, c):\n    return 'nested'\n")
    (code_dir / "shimtest_syntax.py").write_text("def go(:\n")
    assert shim.load_handler("shimtest_ok.go")({"a": 1}, None) == {"a": 1}
    assert shim.load_handler("shimtest_pkg/mod.go")({}, None) == "nested"
    assert fault("nodot").error_type == "Runtime.MalformedHandlerName"
    missing = fault("shimtest_missing.go")
    assert (missing.error_type, missing.message) == (
        "Runtime.ImportModuleError",
        "Unable to import module 'shimtest_missing': No module named 'shimtest_missing'",
    )
    absent = fault("shimtest_ok.nope")
    assert (absent.error_type, absent.message) == (
        "Runtime.HandlerNotFound",
        "Handler 'nope' missing on module 'shimtest_ok'",
    )
    assert fault("shimtest_syntax.go").error_type == "Runtime.UserCodeSyntaxError"


def test_invoke_results_and_errors() -> None:
    header = {"id": "req-1", "deadline_ms": int(time.time() * 1000) + 3000, "arn": "arn:fn"}

    def handler(event: dict[str, object], context: shim.LambdaContext) -> object:
        if event.get("fail"):
            raise KeyError("action")
        if event.get("set"):
            return {1, 2}
        return {"price": Decimal("1.50"), "count": Decimal(3), "left": context.get_remaining_time_in_millis()}

    payload, error = shim._invoke(handler, header, b"{}")
    result = json.loads(payload)
    assert error is None and result["price"] == 1.5 and result["count"] == 3 and 0 < result["left"] <= 3000
    payload, error = shim._invoke(handler, header, b'{"fail": true}')
    body = json.loads(payload)
    assert error == "KeyError" and body["errorMessage"] == "'action'" and body["requestId"] == "req-1"
    assert any("in handler" in line for line in body["stackTrace"])
    assert all("bootstrap/shim.py" not in line for line in body["stackTrace"])
    payload, error = shim._invoke(handler, header, b'{"set": true}')
    assert error == "Runtime.MarshalError"
    assert (
        json.loads(payload)["errorMessage"] == "Unable to marshal response: Object of type set is not JSON serializable"
    )


def test_context_client_context_and_identity() -> None:
    context = shim.LambdaContext(
        "r",
        int(time.time() * 1000) - 5,
        "arn",
        json.dumps({"custom": {"k": 1}}),
        json.dumps({"cognitoIdentityId": "id-1"}),
        None,
    )
    assert context.get_remaining_time_in_millis() == 0
    assert context.client_context is not None and context.client_context.custom == {"k": 1}
    assert context.client_context.client is None
    assert context.identity is not None and context.identity.cognito_identity_id == "id-1"
