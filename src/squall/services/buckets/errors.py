"""S3's errors: ``<Error><Code>`` XML with the code's HTTP status and extra members (``Key``,
``BucketName``...). Messages are S3's own; those not checked against a real answer say so."""

from __future__ import annotations

from typing import Any

from squall.errors import (
    AccessDenied,
    ContentSHA256Mismatch,
    IncompleteSignature,
    InvalidSignature,
    MissingAuthenticationToken,
    SquallError,
    UnrecognizedClient,
)


class S3Error(SquallError):
    """Base of the bucket service's errors; ``extra`` members become elements of ``<Error>``."""

    status = 400
    error_type = "User"
    default_message = ""

    def __init__(self, message: str | None = None, **extra: Any) -> None:
        super().__init__(message if message is not None else self.default_message, **extra)


class NoSuchBucket(S3Error, LookupError):
    code = "NoSuchBucket"
    status = 404
    default_message = "The specified bucket does not exist"


class NoSuchKey(S3Error, LookupError):
    code = "NoSuchKey"
    status = 404
    default_message = "The specified key does not exist."


class NoSuchUpload(S3Error, LookupError):
    code = "NoSuchUpload"
    status = 404
    default_message = (
        "The specified upload does not exist. The upload ID may be invalid, or the upload may have been "
        "aborted or completed."
    )


class BucketNotEmpty(S3Error):
    code = "BucketNotEmpty"
    status = 409
    default_message = "The bucket you tried to delete is not empty"


class BucketAlreadyOwnedByYou(S3Error):
    code = "BucketAlreadyOwnedByYou"
    status = 409
    default_message = "Your previous request to create the named bucket succeeded and you already own it."


class InvalidBucketName(S3Error, ValueError):
    code = "InvalidBucketName"
    default_message = "The specified bucket is not valid."


class InvalidArgument(S3Error, ValueError):
    code = "InvalidArgument"


class InvalidRequest(S3Error, ValueError):
    code = "InvalidRequest"


class InvalidRange(S3Error):
    code = "InvalidRange"
    status = 416
    default_message = "The requested range is not satisfiable"


class PreconditionFailed(S3Error):
    code = "PreconditionFailed"
    status = 412
    default_message = "At least one of the pre-conditions you specified did not hold"


class InvalidPart(S3Error):
    code = "InvalidPart"
    default_message = (
        "One or more of the specified parts could not be found.  The part may not have been uploaded, "
        "or the specified entity tag may not match the part's entity tag."
    )


class InvalidPartOrder(S3Error):
    code = "InvalidPartOrder"
    default_message = "The list of parts was not in ascending order. Parts must be ordered by part number."


class EntityTooSmall(S3Error):
    code = "EntityTooSmall"
    default_message = "Your proposed upload is smaller than the minimum allowed object size."


class EntityTooLarge(S3Error):
    code = "EntityTooLarge"
    default_message = "Your proposed upload exceeds the maximum allowed size"


class MalformedXML(S3Error, ValueError):
    code = "MalformedXML"
    default_message = "The XML you provided was not well-formed or did not validate against our published schema"


class BadDigest(S3Error, ValueError):
    code = "BadDigest"
    default_message = "The Content-MD5 you specified did not match what we received."


class InvalidDigest(S3Error, ValueError):
    code = "InvalidDigest"
    default_message = "The Content-MD5 you specified was invalid."


class KeyTooLong(S3Error, ValueError):
    code = "KeyTooLongError"
    default_message = "Your key is too long"


class IncompleteBody(S3Error, ValueError):
    code = "IncompleteBody"
    default_message = "You did not provide the number of bytes specified by the Content-Length HTTP header"


class MethodNotAllowed(S3Error):
    code = "MethodNotAllowed"
    status = 405
    default_message = "The specified method is not allowed against this resource."


class NotImplementedHere(S3Error):
    code = "NotImplemented"
    status = 501
    default_message = "A header you provided implies functionality that is not implemented"


class InvalidLocationConstraint(S3Error, ValueError):
    code = "InvalidLocationConstraint"
    default_message = "The specified location-constraint is not valid"


class InternalError(S3Error):
    code = "InternalError"
    status = 500
    default_message = "We encountered an internal error. Please try again."


class IllegalLocationConstraint(S3Error, ValueError):
    code = "IllegalLocationConstraintException"


class SignatureDoesNotMatch(S3Error):
    code = "SignatureDoesNotMatch"
    status = 403
    default_message = (
        "The request signature we calculated does not match the signature you provided. Check your key and "
        "signing method."
    )


UNKNOWN_ACCESS_KEY = "The AWS Access Key Id you provided does not exist in our records."
TIME_TOO_SKEWED = "The difference between the request time and the current time is too large."


class S3AuthError(S3Error):
    """An authentication failure spelled S3's way (``code`` and ``status`` set per instance)."""

    def __init__(self, code: str, status: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


def s3_auth_error(exc: SquallError) -> SquallError:
    """The front door's SigV4 failure as S3 reports it: S3 has its own codes for the same failures."""
    if isinstance(exc, ContentSHA256Mismatch):
        return S3AuthError("XAmzContentSHA256Mismatch", 400, exc.message)
    if not isinstance(exc, AccessDenied):
        return exc
    if isinstance(exc, UnrecognizedClient):
        return S3AuthError("InvalidAccessKeyId", 403, UNKNOWN_ACCESS_KEY)
    if isinstance(exc, MissingAuthenticationToken):
        return S3AuthError("AccessDenied", 403, "Access Denied")
    if isinstance(exc, InvalidSignature):
        if exc.message.startswith("Signature expired") or exc.message.startswith("Signature not yet current"):
            return S3AuthError("RequestTimeTooSkewed", 403, TIME_TOO_SKEWED)
        if exc.message.startswith("The request signature we calculated"):
            return SignatureDoesNotMatch()
        # unverified: S3's code for a malformed credential scope; the message is the verifier's.
        return S3AuthError("AuthorizationHeaderMalformed", 400, exc.message)
    if isinstance(exc, IncompleteSignature):
        # unverified: S3's code for an incomplete Authorization header or presigned query.
        return S3AuthError("AuthorizationHeaderMalformed", 400, exc.message)
    return S3AuthError("AccessDenied", 403, exc.message)
