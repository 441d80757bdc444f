"""SNS's errors, with the codes and HTTP statuses of botocore's sns model."""

from __future__ import annotations

from squall.errors import SquallError


class TopicError(SquallError):
    """Base of the topic service's client errors."""

    status = 400
    error_type = "User"


class InvalidParameter(TopicError, ValueError):
    code = "InvalidParameter"


class ParameterValueInvalid(TopicError, ValueError):
    """``InvalidParameterValueException`` (message attributes)."""

    code = "ParameterValueInvalid"


class NotFound(TopicError, LookupError):
    code = "NotFound"
    status = 404


class ResourceNotFound(TopicError, LookupError):
    code = "ResourceNotFound"
    status = 404


class InvalidAction(TopicError, LookupError):
    code = "InvalidAction"


class TagLimitExceeded(TopicError):
    code = "TagLimitExceeded"


class FilterPolicyLimitExceeded(TopicError):
    code = "FilterPolicyLimitExceeded"
    status = 403


class EmptyBatchRequest(TopicError):
    code = "EmptyBatchRequest"


class TooManyEntriesInBatchRequest(TopicError):
    code = "TooManyEntriesInBatchRequest"


class BatchEntryIdsNotDistinct(TopicError):
    code = "BatchEntryIdsNotDistinct"


class InvalidBatchEntryId(TopicError):
    code = "InvalidBatchEntryId"


class BatchRequestTooLong(TopicError):
    code = "BatchRequestTooLong"


TOPIC_NOT_FOUND = "Topic does not exist"
SUBSCRIPTION_NOT_FOUND = "Subscription does not exist"
