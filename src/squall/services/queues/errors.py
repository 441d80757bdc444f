"""SQS's error shapes on the JSON protocol.

SQS answers errors with the modelled shape name in ``__type`` and, because it used to speak the
query protocol, the legacy code in the ``x-amzn-query-error`` header (``<code>;Sender``). botocore
reports the legacy code as ``Error.Code`` and the shape name as ``Error.QueryErrorCode``, so both
must be right for a client to see what real SQS gives it.
"""

from __future__ import annotations

from squall.errors import SquallError


class SqsError(SquallError):
    """Base of the queue service's errors: ``code`` is the ``__type`` shape, ``query_code`` the legacy code."""

    status = 400
    error_type = "User"
    message_key = "message"
    query_code = "InvalidParameterValue"


class QueueDoesNotExist(SqsError, LookupError):
    code = "QueueDoesNotExist"
    query_code = "AWS.SimpleQueueService.NonExistentQueue"

    def __init__(self, message: str = "The specified queue does not exist.") -> None:
        super().__init__(message)


class QueueNameExists(SqsError):
    code = "QueueNameExists"
    query_code = "QueueAlreadyExists"


class InvalidParameterValue(SqsError, ValueError):
    code = "InvalidParameterValueException"
    query_code = "InvalidParameterValue"


class MissingParameter(SqsError, ValueError):
    code = "MissingRequiredParameterException"
    query_code = "MissingParameter"


class InvalidAttributeName(SqsError, ValueError):
    code = "InvalidAttributeName"
    query_code = "InvalidAttributeName"


class InvalidAttributeValue(SqsError, ValueError):
    code = "InvalidAttributeValue"
    query_code = "InvalidAttributeValue"


class InvalidMessageContents(SqsError, ValueError):
    code = "InvalidMessageContents"
    query_code = "InvalidMessageContents"


class ReceiptHandleIsInvalid(SqsError, ValueError):
    code = "ReceiptHandleIsInvalid"
    query_code = "ReceiptHandleIsInvalid"


class PurgeQueueInProgress(SqsError):
    code = "PurgeQueueInProgress"
    query_code = "AWS.SimpleQueueService.PurgeQueueInProgress"
    status = 403


class TooManyEntriesInBatchRequest(SqsError):
    code = "TooManyEntriesInBatchRequest"
    query_code = "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"


class EmptyBatchRequest(SqsError):
    code = "EmptyBatchRequest"
    query_code = "AWS.SimpleQueueService.EmptyBatchRequest"


class BatchEntryIdsNotDistinct(SqsError):
    code = "BatchEntryIdsNotDistinct"
    query_code = "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"


class BatchRequestTooLong(SqsError):
    code = "BatchRequestTooLong"
    query_code = "AWS.SimpleQueueService.BatchRequestTooLong"


class InvalidBatchEntryId(SqsError):
    code = "InvalidBatchEntryId"
    query_code = "AWS.SimpleQueueService.InvalidBatchEntryId"


class InvalidAddress(SqsError):
    code = "InvalidAddress"
    query_code = "InvalidAddress"
