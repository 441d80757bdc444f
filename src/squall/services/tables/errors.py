"""DynamoDB's error shapes (JSON 1.0 ``__type`` with the service's namespace; HTTP 400 unless noted).

DynamoDB names most errors ``com.amazonaws.dynamodb.v20120810#<Code>`` but its request validation
``com.amazon.coral.validate#ValidationException``; botocore keeps the part after ``#``. Most shapes
spell the message ``message``, TransactionCanceledException spells it ``Message`` (service-2.json).
"""

from __future__ import annotations

from typing import Any

from squall.errors import SquallError

DYNAMODB_NAMESPACE = "com.amazonaws.dynamodb.v20120810"
VALIDATE_NAMESPACE = "com.amazon.coral.validate"


class DynamoError(SquallError):
    """Base of the table service's errors."""

    status = 400
    error_type = "User"
    message_key = "message"
    namespace = DYNAMODB_NAMESPACE

    def wire(self) -> dict[str, Any]:
        """The JSON body DynamoDB sends for this error."""
        body: dict[str, Any] = {"__type": f"{self.namespace}#{self.code}", self.message_key: self.message}
        body.update(self.extra)
        return body


class TableNotFound(DynamoError, LookupError):
    code = "ResourceNotFoundException"


class TableInUse(DynamoError):
    code = "ResourceInUseException"


class Validation(DynamoError, ValueError):
    code = "ValidationException"
    namespace = VALIDATE_NAMESPACE


class ConditionalCheckFailed(DynamoError):
    code = "ConditionalCheckFailedException"

    def __init__(self, item: dict[str, Any] | None = None) -> None:
        extra = {"Item": item} if item is not None else {}
        super().__init__("The conditional request failed", **extra)
        self.item = item


class TransactionCanceled(DynamoError):
    code = "TransactionCanceledException"
    message_key = "Message"

    def __init__(self, reasons: list[dict[str, Any]]) -> None:
        codes = ", ".join(str(r["Code"]) for r in reasons)
        super().__init__(
            f"Transaction cancelled, please refer cancellation reasons for specific reasons [{codes}]",
            CancellationReasons=reasons,
        )


class UnknownDynamoOperation(DynamoError, LookupError):
    code = "UnknownOperationException"
    namespace = "com.amazon.coral.service"


class ExpiredIterator(DynamoError):
    """DynamoDB Streams: a shard iterator older than 15 minutes."""

    code = "ExpiredIteratorException"


class TrimmedDataAccess(DynamoError):
    """DynamoDB Streams: a read at or before records already trimmed from the stream."""

    code = "TrimmedDataAccessException"
