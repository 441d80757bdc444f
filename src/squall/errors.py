"""Squall's error tree.

Every error that can reach a client carries its AWS wire code (``code``), its HTTP status and,
for Lambda's shapes, the ``Type`` member (``User`` or ``Service``). Foreign exceptions (sqlite3,
OS errors...) are translated into this tree at the edge where they happen.
"""

from __future__ import annotations

from typing import Any


class SquallError(Exception):
    """Base of every error Squall raises on purpose."""

    code: str = "ServiceException"
    status: int = 500
    error_type: str = "Service"
    #: Lambda's shapes spell the message member ``message`` or ``Message`` depending on the error.
    message_key: str = "Message"

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra: dict[str, Any] = extra

    def body(self) -> dict[str, Any]:
        """The JSON body Lambda sends for this error."""
        body: dict[str, Any] = {"Type": self.error_type, self.message_key: self.message}
        body.update(self.extra)
        return body


class ServiceError(SquallError):
    """An internal failure (HTTP 500, ``ServiceException``)."""


class ResourceNotFound(SquallError, LookupError):
    code = "ResourceNotFoundException"
    status = 404
    error_type = "User"


class ResourceConflict(SquallError):
    code = "ResourceConflictException"
    status = 409
    error_type = "User"
    message_key = "message"


class InvalidParameterValue(SquallError, ValueError):
    code = "InvalidParameterValueException"
    status = 400
    error_type = "User"
    message_key = "message"


class InvalidRequestContent(SquallError, ValueError):
    code = "InvalidRequestContentException"
    status = 400
    error_type = "User"
    message_key = "message"


class RequestTooLarge(SquallError):
    # The modelled shape is RequestTooLargeException, but Lambda sends this code on the wire.
    code = "RequestEntityTooLargeException"
    status = 413
    error_type = "User"
    message_key = "message"


class UnsupportedMediaType(SquallError):
    code = "UnsupportedMediaTypeException"
    status = 415
    error_type = "User"
    message_key = "message"


class TooManyRequests(SquallError):
    code = "TooManyRequestsException"
    status = 429
    error_type = "User"
    message_key = "message"

    def __init__(self, reason: str, message: str = "Rate Exceeded.", retry_after: int = 1) -> None:
        super().__init__(message, Reason=reason)
        self.reason = reason
        self.retry_after = retry_after


class ValidationError(SquallError, ValueError):
    """AWS's generic validation error (model constraints such as ranges and patterns)."""

    code = "ValidationException"
    status = 400
    error_type = "User"
    message_key = "message"


class AccessDenied(SquallError, PermissionError):
    """A request whose signature could not be verified."""

    code = "AccessDeniedException"
    status = 403
    error_type = "User"


class UnrecognizedClient(AccessDenied):
    code = "UnrecognizedClientException"
    message_key = "message"


class InvalidSignature(AccessDenied):
    code = "InvalidSignatureException"
    message_key = "message"


class MissingAuthenticationToken(AccessDenied):
    code = "MissingAuthenticationTokenException"
    message_key = "message"


class IncompleteSignature(AccessDenied):
    """A malformed ``Authorization`` header or presigned query (missing parts, bad date format)."""

    code = "IncompleteSignatureException"
    message_key = "message"


class ContentSHA256Mismatch(SquallError, ValueError):
    """The body does not hash to the ``x-amz-content-sha256`` value the client signed."""

    code = "XAmzContentSHA256Mismatch"
    status = 400
    error_type = "User"
    message_key = "message"


class UnknownOperation(SquallError, LookupError):
    """A request for a service or operation this server does not offer."""

    code = "UnknownOperationException"
    status = 400
    error_type = "User"
    message_key = "message"


class ServiceUnavailable(SquallError):
    """Squall is draining or not ready yet (HTTP 503)."""

    code = "ServiceUnavailableException"
    status = 503


class StoreUnavailable(ServiceError):
    """A metadata store failed underneath us."""


class SandboxError(ServiceError):
    """A sandbox could not be started or talked to."""


class PreconditionFailed(SquallError):
    """A RevisionId that no longer matches (HTTP 412)."""

    code = "PreconditionFailedException"
    status = 412
    error_type = "User"
    message_key = "message"
