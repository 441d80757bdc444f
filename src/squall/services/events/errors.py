"""EventBridge's error shapes (JSON 1.1 ``__type``, HTTP 400)."""

from __future__ import annotations

from squall.errors import SquallError


class EventsError(SquallError):
    """Base of the rules service's errors."""

    status = 400
    error_type = "User"
    message_key = "message"


class RuleNotFound(EventsError, LookupError):
    code = "ResourceNotFoundException"


class EventsValidation(EventsError, ValueError):
    code = "ValidationException"


class EventsLimitExceeded(EventsError):
    code = "LimitExceededException"
