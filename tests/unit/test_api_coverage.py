"""docs/lambda-api-coverage.md against botocore's Lambda model and the Lambda API's real routes."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import botocore.session
import pytest
from starlette.routing import Match

from squall.api import stream_invoke_api
from squall.api.lambda_api import _INVOKE_PATH, LambdaApi
from squall.config import Settings
from squall.platform import Platform

DOC = Path(__file__).parents[2] / "docs" / "lambda-api-coverage.md"
_ROW = re.compile(r"^\| `(?P<op>\w+)` \| `(?P<method>[A-Z]+) (?P<uri>\S+)` \| (?P<status>[a-z ]+) \|(?P<why>.*)\|$")
STATUSES = {"served", "not served", "in progress"}


def doc_rows() -> dict[str, dict[str, str]]:
    rows: dict[str, dict[str, str]] = {}
    for line in DOC.read_text().splitlines():
        match = _ROW.match(line)
        if match:
            assert match["op"] not in rows, f"{match['op']} is listed twice"
            rows[match["op"]] = match.groupdict()
    return rows


@pytest.fixture(scope="module")
def model() -> botocore.model.ServiceModel:
    return botocore.session.get_session().get_service_model("lambda")


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LambdaApi]:
    """The Lambda API of a built (not started) platform: its routes are the server's routes."""
    platform = Platform.build(Settings(data_dir=tmp_path_factory.mktemp("coverage")), "AKIDEXAMPLE000000000", "secret")
    yield LambdaApi(platform, "http://127.0.0.1:8990", b"key")
    asyncio.run(platform.stop())


def routed(api: LambdaApi, method: str, request_uri: str) -> bool:
    """Whether a request for this model ``requestUri`` (labels filled in) reaches an endpoint."""
    path = re.sub(r"\{[^}]+\}", "label", request_uri.partition("?")[0])
    if method == "POST" and (_INVOKE_PATH.match(path.encode()) or stream_invoke_api.PATH.match(path.encode())):
        return True  # Invoke and InvokeWithResponseStream are served ahead of the router
    scope = {"type": "http", "method": method, "path": path, "root_path": ""}
    return any(route.matches(scope)[0] == Match.FULL for route in api.router.routes)


def test_the_doc_lists_exactly_botocores_operations_with_their_method_and_path(
    model: botocore.model.ServiceModel,
) -> None:
    rows = doc_rows()
    assert sorted(rows) == sorted(model.operation_names)
    for name, row in rows.items():
        http = model.operation_model(name).http
        assert (row["method"], row["uri"]) == (http["method"], http["requestUri"]), name
        assert row["status"] in STATUSES, name
        if row["status"] != "served":
            assert row["why"].strip(), f"{name} needs a reason"


def test_served_operations_have_routes_and_unserved_ones_do_not(
    model: botocore.model.ServiceModel, api: LambdaApi
) -> None:
    for name, row in doc_rows().items():
        http = model.operation_model(name).http
        if row["status"] == "served":
            assert routed(api, http["method"], http["requestUri"]), f"{name} is marked served but has no route"
        elif row["status"] == "not served":
            assert not routed(api, http["method"], http["requestUri"]), f"{name} has a route: mark it served"


def test_the_route_check_can_tell_a_missing_route(api: LambdaApi) -> None:
    assert routed(api, "GET", "/2015-03-31/functions/{FunctionName}")
    assert not routed(api, "GET", "/2024-08-31/functions/{FunctionName}/recursion-config")
    assert not routed(api, "PATCH", "/2015-03-31/functions/{FunctionName}")
