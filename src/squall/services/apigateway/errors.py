"""API Gateway v2's error shapes (rest-json: ``x-amzn-ErrorType`` plus a ``message`` body member)."""

from __future__ import annotations

from typing import Any

from squall.errors import SquallError


class ApiGatewayError(SquallError):
    """Base of the management API's errors; the body is ``{"message": ...}`` as API Gateway sends it."""

    status = 400
    error_type = "User"
    message_key = "message"

    def body(self) -> dict[str, Any]:
        return {"message": self.message, **self.extra}


class NotFound(ApiGatewayError, LookupError):
    """An API or one of its resources does not exist (404)."""

    code = "NotFoundException"
    status = 404


class BadRequest(ApiGatewayError, ValueError):
    """A request member is missing or invalid (400)."""

    code = "BadRequestException"


class Conflict(ApiGatewayError):
    """The resource exists already, or is still in use (409)."""

    code = "ConflictException"
    status = 409
