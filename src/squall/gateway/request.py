"""One request on the gateway port, after the API and stage have been resolved from its URL."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from urllib.parse import parse_qsl


@dataclass
class GatewayRequest:
    """What the event builders need to know about a request.

    ``path`` is the path inside the stage (what routes match); ``raw_path`` is the path the client
    sent after the API id, so it still starts with the stage name for stages other than ``$default``.
    """

    api_id: str
    account_id: str
    region: str
    stage: str
    method: str
    path: str
    raw_path: str
    raw_query: str
    headers: list[tuple[str, str]]
    body: bytes
    source_ip: str
    domain_name: str
    request_id: str
    protocol: str = "HTTP/1.1"
    time_epoch_ms: int = field(default_factory=lambda: int(time.time() * 1000))

    def header(self, name: str) -> str | None:
        """The header's values joined with commas, as API Gateway presents repeated headers."""
        values = [value for key, value in self.headers if key == name.lower()]
        return ",".join(values) if values else None

    def query_pairs(self) -> list[tuple[str, str]]:
        return parse_qsl(self.raw_query, keep_blank_values=True)

    def query_value(self, name: str) -> str | None:
        values = [value for key, value in self.query_pairs() if key == name]
        return ",".join(values) if values else None

    def cookies(self) -> list[str]:
        cookie = self.header("cookie")
        return [part.strip() for part in cookie.replace(",", ";").split(";") if part.strip()] if cookie else []

    @property
    def domain_prefix(self) -> str:
        return self.domain_name.split(".", 1)[0]

    @property
    def request_time(self) -> str:
        """``12/Mar/2020:19:03:58 +0000``: API Gateway's CLF-style request time."""
        return time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(self.time_epoch_ms / 1000))

    @property
    def user_agent(self) -> str:
        return self.header("user-agent") or ""

    def route_arn(self) -> str:
        """The ``execute-api`` ARN of this request, as Lambda authorizers see it."""
        return (
            f"arn:aws:execute-api:{self.region}:{self.account_id}:{self.api_id}/{self.stage}/{self.method}{self.path}"
        )
