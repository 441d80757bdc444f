"""Route keys and API Gateway's choice of the most specific route."""

from __future__ import annotations

import pytest

from squall.gateway.routes import choose, parse_route_key

ROUTES = [
    ("r1", "GET /pets/dog/1"),
    ("r2", "GET /pets/dog/{id}"),
    ("r3", "ANY /pets/dog/{id}"),
    ("r4", "GET /pets/{proxy+}"),
    ("r5", "ANY /{proxy+}"),
    ("r6", "$default"),
]


@pytest.mark.parametrize(
    ("method", "path", "route", "params"),
    [
        ("GET", "/pets/dog/1", "r1", {}),
        ("GET", "/pets/dog/2", "r2", {"id": "2"}),
        ("POST", "/pets/dog/2", "r3", {"id": "2"}),
        ("GET", "/pets/cat/2", "r4", {"proxy": "cat/2"}),
        ("GET", "/pets/dog/2/toys", "r4", {"proxy": "dog/2/toys"}),
        ("DELETE", "/pets/dog/2/toys", "r5", {"proxy": "pets/dog/2/toys"}),
        ("GET", "/", "r6", {}),
        ("GET", "/pets/dog/with%20space", "r2", {"id": "with space"}),
    ],
)
def test_most_specific_route_wins(method: str, path: str, route: str, params: dict[str, str]) -> None:
    match = choose(ROUTES, method, path)
    assert match is not None
    assert (match.route_id, match.path_parameters) == (route, params)


def test_no_route_and_no_default() -> None:
    routes = [("a", "GET /users/{id}"), ("b", "POST /users")]
    assert choose(routes, "GET", "/users") is None
    assert choose(routes, "GET", "/users/") is None  # an empty segment is not a parameter value
    assert choose(routes, "GET", "/users/1/extra") is None
    assert choose(routes, "PUT", "/users") is None
    assert choose([("p", "ANY /{proxy+}")], "GET", "/") is None  # greedy needs at least one segment


def test_literal_beats_parameter_segment_by_segment() -> None:
    routes = [("param-first", "GET /{a}/b"), ("literal-first", "GET /a/{b}")]
    match = choose(routes, "GET", "/a/b")
    assert match is not None and match.route_id == "literal-first"


@pytest.mark.parametrize("key", ["FETCH /x", "GET x", "GET /{proxy+}/more", "GET /a{b}", "GET", "GET /a//b"])
def test_invalid_route_keys(key: str) -> None:
    with pytest.raises(ValueError, match="Invalid route key"):
        parse_route_key(key)


def test_valid_route_keys() -> None:
    assert parse_route_key("$default") is None
    parsed = parse_route_key("ANY /{proxy+}")
    assert parsed is not None and parsed.method == "ANY" and parsed.path == "/{proxy+}"
    root = parse_route_key("GET /")
    assert root is not None and root.segments == ()
    assert choose([("root", "GET /")], "GET", "/") is not None
