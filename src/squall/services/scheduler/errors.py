"""EventBridge Scheduler's error shapes (rest-json: ``x-amzn-ErrorType`` and a ``Message`` member)."""

from __future__ import annotations

from squall.errors import SquallError


class SchedulerError(SquallError):
    """Base of the Scheduler service's errors."""

    status = 400
    error_type = "User"


class ScheduleValidation(SchedulerError, ValueError):
    code = "ValidationException"


class ScheduleNotFound(SchedulerError, LookupError):
    code = "ResourceNotFoundException"
    status = 404


class ScheduleConflict(SchedulerError):
    code = "ConflictException"
    status = 409
