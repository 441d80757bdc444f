"""Kinesis's error shapes (JSON 1.1 ``__type``; HTTP 400 unless noted)."""

from __future__ import annotations

from squall.errors import SquallError


class KinesisError(SquallError):
    """Base of the stream service's errors."""

    status = 400
    error_type = "User"
    message_key = "message"


class StreamNotFound(KinesisError, LookupError):
    code = "ResourceNotFoundException"


class StreamInUse(KinesisError):
    code = "ResourceInUseException"


class InvalidArgument(KinesisError, ValueError):
    code = "InvalidArgumentException"


class ExpiredIterator(KinesisError):
    code = "ExpiredIteratorException"


class KinesisValidation(KinesisError, ValueError):
    code = "ValidationException"


class LimitExceeded(KinesisError):
    code = "LimitExceededException"
