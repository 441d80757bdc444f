"""Calling an integration's function: its ARN to a name and qualifier, and the platform's sync Invoke."""

from __future__ import annotations

import re

from squall.invoke.streaming import ResponseStream
from squall.platform import Platform

# arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>], also wrapped in API Gateway's
# arn:aws:apigateway:<region>:lambda:path/2015-03-31/functions/<function arn>/invocations form.
_FUNCTION_ARN = re.compile(r"arn:aws[a-z-]*:lambda:[^:]*:[^:]*:function:([^:/]+)(?::([^:/]+))?")


def function_of(uri: str) -> tuple[str, str | None]:
    """(name, qualifier) of the function an integration or authorizer URI names (a bare name works too)."""
    match = _FUNCTION_ARN.search(uri)
    if match is None:
        return uri, None
    return match.group(1), match.group(2)


class FunctionInvoker:
    """Synchronous invocations through the platform's public Invoke, as the Lambda API makes them."""

    def __init__(self, platform: Platform) -> None:
        self._platform = platform

    async def __call__(self, uri: str, payload: bytes) -> tuple[str | None, bytes]:
        """(function error or None, answer payload) of one RequestResponse invocation."""
        name, qualifier = function_of(uri)
        outcome = await self._platform.invoke(name, qualifier, payload, trigger="gateway")
        return outcome.function_error, outcome.payload

    async def stream(self, uri: str, payload: bytes, stream: ResponseStream) -> tuple[str | None, bytes]:
        """The same invocation, its streamed response going to ``stream`` as it comes."""
        name, qualifier = function_of(uri)
        outcome = await self._platform.invoke(name, qualifier, payload, trigger="gateway", stream=stream)
        return outcome.function_error, outcome.payload
