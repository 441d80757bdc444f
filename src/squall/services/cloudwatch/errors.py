"""CloudWatch's error shapes. CloudWatch is an ``awsQueryCompatible`` service: its JSON and CBOR
errors carry the shape name in ``__type`` and the query-protocol code in ``x-amzn-query-error``,
which botocore reports as the error code (``InvalidParameterValue``, not ...``Exception``)."""

from __future__ import annotations

from squall.errors import SquallError


class CloudWatchError(SquallError):
    """Base of the metrics API's errors: ``code`` is the shape name, ``query_code`` the query code."""

    status = 400
    error_type = "User"
    message_key = "message"
    query_code = "InvalidParameterValue"

    @property
    def fault(self) -> str:
        """``Sender`` for the caller's mistakes, ``Receiver`` for ours."""
        return "Sender" if self.status < 500 else "Receiver"


class InvalidParameterValue(CloudWatchError, ValueError):
    """A parameter has a value CloudWatch does not accept."""

    code = "InvalidParameterValueException"
    query_code = "InvalidParameterValue"


class MissingParameter(CloudWatchError, ValueError):
    """A required parameter is missing."""

    code = "MissingRequiredParameterException"
    query_code = "MissingParameter"


class InvalidParameterCombination(CloudWatchError, ValueError):
    """Parameters that cannot go together (or too many datapoints asked for)."""

    code = "InvalidParameterCombinationException"
    query_code = "InvalidParameterCombination"


class InvalidNextToken(CloudWatchError, ValueError):
    """A pagination token this server never handed out."""

    code = "InvalidNextToken"
    query_code = "InvalidNextToken"


class InternalServiceFault(CloudWatchError):
    """Squall failed to answer (HTTP 500)."""

    code = "InternalServiceFault"
    query_code = "InternalServiceError"
    status = 500
    error_type = "Service"


class UnknownOperation(CloudWatchError, LookupError):
    """An operation of CloudWatch that Squall does not serve."""

    code = "UnknownOperationException"
    query_code = "UnknownOperation"
