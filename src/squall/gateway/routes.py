"""Route keys (``GET /users/{id}``, ``ANY /{proxy+}``, ``$default``) and API Gateway's choice of route.

HTTP APIs pick the most specific route for a request: literal segments beat ``{param}`` segments,
which beat a greedy ``{proxy+}``, compared segment by segment from the left; among routes with the
same path a specific method beats ``ANY``; ``$default`` catches whatever else is left.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote

DEFAULT_ROUTE = "$default"
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY"})
_PARAM = re.compile(r"^\{([A-Za-z0-9._-]+)\}$")
_GREEDY = re.compile(r"^\{([A-Za-z0-9._-]+)\+\}$")
_LITERAL, _PARAMETER, _WILDCARD = 0, 1, 2


@dataclass(frozen=True)
class RouteKey:
    """A parsed route key: its method (``ANY`` included) and path segments."""

    method: str
    segments: tuple[str, ...]

    @property
    def path(self) -> str:
        return "/" + "/".join(self.segments)

    def match(self, method: str, segments: list[str]) -> dict[str, str] | None:
        """The path parameters if the request matches this route, else None."""
        if self.method not in ("ANY", method):
            return None
        params: dict[str, str] = {}
        for index, template in enumerate(self.segments):
            greedy = _GREEDY.match(template)
            if greedy:
                rest = segments[index:]
                if not rest or not any(rest):
                    return None
                params[greedy.group(1)] = "/".join(unquote(part) for part in rest)
                return params
            if index >= len(segments):
                return None
            param = _PARAM.match(template)
            if param:
                if not segments[index]:
                    return None
                params[param.group(1)] = unquote(segments[index])
            elif template != unquote(segments[index]):
                return None
        return params if len(segments) == len(self.segments) else None

    def rank(self) -> tuple[tuple[int, ...], int]:
        """Sort key: smaller is more specific."""
        kinds = tuple(
            _WILDCARD if _GREEDY.match(part) else _PARAMETER if _PARAM.match(part) else _LITERAL
            for part in self.segments
        )
        return kinds, 1 if self.method == "ANY" else 0


def parse_route_key(key: str) -> RouteKey | None:
    """The parsed key, None for ``$default``; ValueError with API Gateway's reason when invalid."""
    if key == DEFAULT_ROUTE:
        return None
    method, _, path = key.partition(" ")
    if method not in METHODS or not path.startswith("/") or " " in path:
        raise ValueError(f"Invalid route key: {key}")
    segments = tuple(path[1:].split("/")) if path != "/" else ()
    for index, part in enumerate(segments):
        if not part and index != len(segments) - 1:
            raise ValueError(f"Invalid route key: {key}")
        if _GREEDY.match(part) and index != len(segments) - 1:
            raise ValueError(f"Invalid route key: {key}")
        if ("{" in part or "}" in part) and not (_PARAM.match(part) or _GREEDY.match(part)):
            raise ValueError(f"Invalid route key: {key}")
    return RouteKey(method, segments)


def split_path(path: str) -> list[str]:
    """A request path's segments (``/`` has none)."""
    return path[1:].split("/") if path not in ("", "/") else []


@dataclass(frozen=True)
class Match:
    """The route a request matched, with its path parameters."""

    route_id: str
    route_key: str
    path_parameters: dict[str, str]


def choose(routes: Iterable[tuple[str, str]], method: str, path: str) -> Match | None:
    """The most specific of ``(route_id, route_key)`` for the request, falling back to ``$default``."""
    segments = split_path(path)
    best: tuple[tuple[tuple[int, ...], int], Match] | None = None
    default: Match | None = None
    for route_id, key in routes:
        parsed = parse_route_key(key)
        if parsed is None:
            default = Match(route_id, key, {})
            continue
        params = parsed.match(method, segments)
        if params is None:
            continue
        rank = parsed.rank()
        if best is None or rank < best[0]:
            best = (rank, Match(route_id, key, params))
    return best[1] if best is not None else default
