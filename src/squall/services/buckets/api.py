"""S3's REST API (rest-xml) as boto3 and the AWS CLI send it, over ``BucketService``.

A request names its bucket in the path (``/bucket/key``) or in the host (``bucket.localhost``,
``bucket.s3.localhost``: virtual-host style); the operation follows from the method, whether there
is a key, and subresource query parameters (``?uploads``, ``?list-type=2``, ``?delete``...).
Request bodies sent ``aws-chunked`` are decoded (their chunk signatures checked), checksums and
``Content-MD5`` verified; object bodies are streamed back from their files in chunks.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from starlette.types import Receive, Scope, Send

from squall.errors import SquallError
from squall.services.buckets import checksums, chunked, conditions, notifications, website
from squall.services.buckets.addressing import DEFAULT_HOST_SUFFIXES, bucket_from_host
from squall.services.buckets.errors import (
    BadDigest,
    EntityTooLarge,
    IllegalLocationConstraint,
    IncompleteBody,
    InternalError,
    InvalidArgument,
    InvalidDigest,
    InvalidLocationConstraint,
    InvalidRequest,
    KeyTooLong,
    MalformedXML,
    MethodNotAllowed,
    NoSuchKey,
    NotImplementedHere,
    PreconditionFailed,
    S3Error,
    SignatureDoesNotMatch,
)
from squall.services.buckets.service import (
    DEFAULT_MAX_KEYS,
    MAX_PART_NUMBER,
    BucketService,
    StoredObject,
    check_bucket_name,
)
from squall.services.buckets.xmlwire import XMLNS, document, http_date, iso, parse, text, to_xml

STREAM_CHUNK = 1024 * 1024
MAX_KEY_BYTES = 1024
MAX_DELETE_KEYS = 1000
MAX_SINGLE_PUT = 5 * 1024**3
OWNER = {"ID": "75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a", "DisplayName": "squall"}
#: The headers stored with an object and returned by GET/HEAD.
STORED_HEADERS = (
    "content-type",
    "content-encoding",
    "content-disposition",
    "cache-control",
    "content-language",
    "expires",
)
#: GetObject's ``response-*`` query parameters override these response headers.
RESPONSE_OVERRIDES = {
    "response-content-type": "content-type",
    "response-content-language": "content-language",
    "response-expires": "expires",
    "response-cache-control": "cache-control",
    "response-content-disposition": "content-disposition",
    "response-content-encoding": "content-encoding",
}
DEFAULT_CONTENT_TYPE = "binary/octet-stream"
META_PREFIX = "x-amz-meta-"
CHECKSUM_PREFIX = "x-amz-checksum-"
PRESIGN_V2_PARAMS = ("AWSAccessKeyId", "Signature", "Expires", "content-type", "content-md5")


@dataclass
class Request:
    """One S3 request, parsed: bucket and key (decoded), query and lower-case headers, body."""

    method: str
    bucket: str | None
    key: str | None
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    request_id: str
    access_key: str | None


@dataclass
class Response:
    """A response to send: ``body`` bytes, or ``stream`` (an open file to send ``length`` bytes of)."""

    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    stream: BinaryIO | None = None
    length: int = 0


Handler = Callable[[Request], Awaitable[Response]]


class NotificationTargets(Protocol):
    """What the notification subresource needs of the object trigger (``squall.sources.objects``)."""

    async def check_destinations(self, configs: list[notifications.NotificationConfig]) -> None: ...

    async def send_test_events(
        self, bucket: str, configs: list[notifications.NotificationConfig], request_id: str
    ) -> None: ...


class S3Api:
    """The ``s3`` service of the API port. ``keys`` (access key id -> secret) lets the app check
    aws-chunked chunk signatures; ``None`` (``--no-auth``) skips them like every other signature."""

    def __init__(
        self,
        service: BucketService,
        keys: Mapping[str, str] | None,
        host_suffixes: tuple[str, ...] = DEFAULT_HOST_SUFFIXES,
        targets: NotificationTargets | None = None,
    ) -> None:
        self.service = service
        self.keys = keys
        self.host_suffixes = host_suffixes
        self.targets = targets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = scope.get("squall.request_id") or str(uuid.uuid4())
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        method = scope["method"].upper()
        bucket, key = self._address(scope, headers)
        query = dict(parse_qsl(scope.get("query_string", b"").decode("utf-8", "replace"), keep_blank_values=True))
        request = Request(
            method,
            bucket,
            key,
            query,
            headers,
            scope.get("squall.body", b""),
            request_id,
            scope.get("squall.access_key"),
        )
        client = scope.get("client")
        notifications.CALLER.set(
            notifications.Caller(client[0] if client else "127.0.0.1", request_id, request.access_key)
        )
        try:
            response = await self._dispatch(request)
        except S3Error as exc:
            response = _error(exc, request)
        except SquallError as exc:
            # A platform failure (store unavailable...) in S3's shape.
            response = _error(InternalError() if exc.status >= 500 else exc, request)
        await _send(send, response, request_id)

    # --- routing ----------------------------------------------------------------------------------
    def _address(self, scope: Scope, headers: Mapping[str, str]) -> tuple[str | None, str | None]:
        raw: bytes = scope.get("raw_path") or scope["path"].encode()
        path = unquote(raw.decode("utf-8", "replace"))
        bucket = bucket_from_host(headers.get("host", ""), self.host_suffixes)
        if bucket is not None:
            return bucket, (path[1:] or None)
        name, _, key = path[1:].partition("/")
        return (name or None), (key or None)

    async def _dispatch(self, request: Request) -> Response:
        method, bucket, key, query = request.method, request.bucket, request.key, request.query
        if bucket is None:
            if method in ("GET", "HEAD"):
                return await self._run(self._list_buckets, request)
            raise MethodNotAllowed(Method=method, ResourceType="SERVICE")
        if key is None:
            handler = self._bucket_handler(method, query)
        else:
            if len(key.encode()) > MAX_KEY_BYTES:
                raise KeyTooLong(Size=str(len(key.encode())), MaxSizeAllowed=str(MAX_KEY_BYTES))
            handler = self._object_handler(method, query, request.headers)
        return await handler(request)

    def _bucket_handler(self, method: str, query: Mapping[str, str]) -> Handler:
        subresources = _own_params(query) - {"list-type", "prefix", "delimiter", "max-keys", "encoding-type", "marker"}
        subresources -= {"continuation-token", "start-after", "fetch-owner", "key-marker", "upload-id-marker"}
        subresources -= {"max-uploads", "x-id"}
        if method == "PUT" and not subresources:
            return self._create_bucket
        if method == "DELETE" and not subresources:
            return self._delete_bucket
        if method == "HEAD":
            return self._head_bucket
        if method == "GET":
            if not subresources:
                return self._list_objects
            if subresources == {"location"}:
                return self._get_bucket_location
            if subresources == {"uploads"}:
                return self._list_uploads
        if method == "POST" and subresources == {"delete"}:
            return self._delete_objects
        if subresources == {"website"} and method in ("GET", "PUT", "DELETE"):
            return self._website
        if subresources == {"notification"} and method in ("GET", "PUT"):
            return self._notification
        return _not_implemented

    def _object_handler(self, method: str, query: Mapping[str, str], headers: Mapping[str, str]) -> Handler:
        if method == "PUT":
            if "uploadId" in query and "partNumber" in query:
                return _not_implemented if "x-amz-copy-source" in headers else self._upload_part
            if "x-amz-copy-source" in headers:
                return self._copy_object
            return self._put_object if not _subresources(query) else _not_implemented
        if method in ("GET", "HEAD"):
            if "uploadId" in query and method == "GET":
                return self._list_parts
            return self._get_object if not _subresources(query) else _not_implemented
        if method == "DELETE":
            return self._abort_upload if "uploadId" in query else self._delete_object
        if method == "POST":
            if "uploads" in query:
                return self._create_upload
            if "uploadId" in query:
                return self._complete_upload
        return _not_implemented

    async def _website(self, request: Request) -> Response:
        """Put/Get/DeleteBucketWebsite (``website`` module)."""
        assert request.bucket is not None
        status, body = await asyncio.to_thread(
            website.answer, self.service, request.method, request.bucket, request.body
        )
        return Response(status=status, headers=[("content-type", "application/xml")] if body else [], body=body)

    async def _notification(self, request: Request) -> Response:
        """Put/GetBucketNotificationConfiguration (and the legacy GetBucketNotification: same answer
        for a configuration without filters or several events)."""
        assert request.bucket is not None
        bucket = request.bucket
        if request.method == "GET":
            await asyncio.to_thread(self.service.get_bucket, bucket)
            return _xml_body(notifications.render(notifications.from_json(self.service.notifications(bucket))))
        configs = notifications.parse_configuration(request.body)
        await asyncio.to_thread(self.service.get_bucket, bucket)
        skip = request.headers.get("x-amz-skip-destination-validation", "").lower() == "true"
        if self.targets is not None and not skip:
            # S3 checks the destinations, then sends the test events: one that fails fails the PUT.
            await self.targets.check_destinations(configs)
            await self.targets.send_test_events(bucket, configs, request.request_id)
        await asyncio.to_thread(self.service.put_notifications, bucket, notifications.to_json(configs))
        return Response()

    async def _run(self, handler: Callable[[Request], Response], request: Request) -> Response:
        return await asyncio.to_thread(handler, request)

    # --- buckets ----------------------------------------------------------------------------------
    def _list_buckets(self, request: Request) -> Response:
        buckets = self.service.list_buckets()
        prefix = request.query.get("prefix", "")
        entries = [
            {"Name": b.name, "CreationDate": iso(b.created), "BucketRegion": b.region}
            for b in buckets
            if b.name.startswith(prefix)
        ]
        content = {"Owner": OWNER, "Buckets": {"Bucket": entries}, "Prefix": prefix or None}
        return _xml("ListAllMyBucketsResult", content)

    async def _create_bucket(self, request: Request) -> Response:
        assert request.bucket is not None
        check_bucket_name(request.bucket)
        region = None
        if request.body.strip():
            constraint = text(parse(request.body), "LocationConstraint")
            if constraint:
                if constraint == "us-east-1":
                    # us-east-1 is the absence of a constraint; naming it is refused.
                    raise InvalidLocationConstraint()
                if constraint != self.service.region:
                    # unverified: wording of S3's answer to a constraint other than the endpoint's region
                    raise IllegalLocationConstraint(
                        f"The {constraint} location constraint is incompatible for the region specific "
                        "endpoint this request was sent to."
                    )
                region = constraint
        await asyncio.to_thread(self.service.create_bucket, request.bucket, region)
        return Response(headers=[("location", f"/{request.bucket}")])

    async def _delete_bucket(self, request: Request) -> Response:
        assert request.bucket is not None
        await asyncio.to_thread(self.service.delete_bucket, request.bucket)
        return Response(status=204)

    async def _head_bucket(self, request: Request) -> Response:
        assert request.bucket is not None
        bucket = await asyncio.to_thread(self.service.get_bucket, request.bucket)
        return Response(headers=[("x-amz-bucket-region", bucket.region), ("content-type", "application/xml")])

    async def _get_bucket_location(self, request: Request) -> Response:
        assert request.bucket is not None
        bucket = await asyncio.to_thread(self.service.get_bucket, request.bucket)
        # us-east-1 is spelled as an empty LocationConstraint.
        location = "" if bucket.region == "us-east-1" else bucket.region
        body = f'<?xml version="1.0" encoding="UTF-8"?>\n<LocationConstraint xmlns="{XMLNS}">{location}'
        return Response(headers=[("content-type", "application/xml")], body=(body + "</LocationConstraint>").encode())

    async def _list_objects(self, request: Request) -> Response:
        assert request.bucket is not None
        query = request.query
        v2 = query.get("list-type") == "2"
        max_keys = _int_param(query, "max-keys", DEFAULT_MAX_KEYS, 0)
        encoding = query.get("encoding-type")
        if encoding is not None and encoding != "url":
            raise InvalidArgument(
                "Invalid Encoding Method specified in Request", ArgumentName="encoding-type", ArgumentValue=encoding
            )
        prefix, delimiter = query.get("prefix", ""), query.get("delimiter", "")
        token = query.get("continuation-token")
        if v2:
            after = query.get("start-after", "")
            if token is not None:
                after = _decode_token(token)
        else:
            after = query.get("marker", "")
        listing = await asyncio.to_thread(
            self.service.list_objects, request.bucket, prefix, delimiter, after, min(max_keys, DEFAULT_MAX_KEYS)
        )

        def enc(value: str) -> str:
            return quote(value, safe="/") if encoding == "url" else value

        contents = [
            {
                "Key": enc(o.key),
                "LastModified": iso(o.modified),
                "ETag": o.etag,
                "ChecksumAlgorithm": [a.upper() for a in o.checksums] or None,
                "Size": o.size,
                "Owner": OWNER if (not v2 or query.get("fetch-owner") == "true") else None,
                "StorageClass": "STANDARD",
            }
            for o in listing.objects
        ]
        content: dict[str, object] = {
            "Name": request.bucket,
            "Prefix": enc(prefix),
        }
        if v2:
            content["StartAfter"] = enc(query["start-after"]) if "start-after" in query else None
            content["ContinuationToken"] = token
            content["KeyCount"] = len(listing.objects) + len(listing.prefixes)
            if listing.truncated and listing.last is not None:
                content["NextContinuationToken"] = _encode_token(listing.last)
        else:
            content["Marker"] = enc(query.get("marker", ""))
            if listing.truncated and delimiter and listing.last is not None:
                content["NextMarker"] = enc(listing.last)
        content.update(
            {
                "MaxKeys": max_keys,
                "Delimiter": enc(delimiter) if delimiter else None,
                "EncodingType": encoding,
                "IsTruncated": listing.truncated,
                "Contents": contents,
                "CommonPrefixes": [{"Prefix": enc(p)} for p in listing.prefixes],
            }
        )
        return _xml("ListBucketResult", content)

    async def _list_uploads(self, request: Request) -> Response:
        assert request.bucket is not None
        uploads = await asyncio.to_thread(self.service.list_uploads, request.bucket)
        prefix = request.query.get("prefix", "")
        key_marker = request.query.get("key-marker", "")
        max_uploads = _int_param(request.query, "max-uploads", 1000, 0)
        chosen = [u for u in uploads if u.key.startswith(prefix) and u.key > key_marker]
        truncated = len(chosen) > max_uploads
        chosen = chosen[:max_uploads]
        content = {
            "Bucket": request.bucket,
            "KeyMarker": key_marker,
            "UploadIdMarker": request.query.get("upload-id-marker", ""),
            "NextKeyMarker": chosen[-1].key if truncated else None,
            "NextUploadIdMarker": chosen[-1].upload_id if truncated else None,
            "Prefix": prefix or None,
            "MaxUploads": max_uploads,
            "IsTruncated": truncated,
            "Upload": [
                {
                    "Key": u.key,
                    "UploadId": u.upload_id,
                    "Initiator": OWNER,
                    "Owner": OWNER,
                    "StorageClass": "STANDARD",
                    "Initiated": iso(u.initiated),
                }
                for u in chosen
            ],
        }
        return _xml("ListMultipartUploadsResult", content)

    async def _delete_objects(self, request: Request) -> Response:
        assert request.bucket is not None
        _check_body_digests(request, request.body)
        root = parse(request.body)
        quiet = (text(root, "Quiet") or "false").strip().lower() == "true"
        keys = [text(obj, "Key") for obj in root.findall("Object")]
        if not keys or len(keys) > MAX_DELETE_KEYS or any(key is None for key in keys):
            raise MalformedXML()
        await asyncio.to_thread(self.service.get_bucket, request.bucket)
        deleted, errors = [], []
        for key in keys:
            assert key is not None
            try:
                await asyncio.to_thread(self.service.delete_object, request.bucket, key)
            except S3Error as exc:
                errors.append({"Key": key, "Code": exc.code, "Message": exc.message})
            else:
                if not quiet:
                    deleted.append({"Key": key})
        return _xml("DeleteResult", {"Deleted": deleted, "Error": errors})

    # --- objects ----------------------------------------------------------------------------------
    async def _put_object(self, request: Request) -> Response:
        assert request.bucket is not None and request.key is not None
        data, sums = self._payload(request)
        if len(data) > MAX_SINGLE_PUT:
            raise EntityTooLarge(ProposedSize=str(len(data)), MaxSizeAllowed=str(MAX_SINGLE_PUT))
        stored = await asyncio.to_thread(
            self.service.put_object,
            request.bucket,
            request.key,
            data,
            _stored_headers(request.headers),
            _user_metadata(request.headers),
            sums,
            _put_conditions(request),
        )
        return Response(headers=[("etag", stored.etag), *_checksum_headers(sums)])

    async def _get_object(self, request: Request) -> Response:
        assert request.bucket is not None and request.key is not None
        stored, body = await asyncio.to_thread(self.service.open_object, request.bucket, request.key)
        try:
            headers = _object_headers(stored, request)
            if not conditions.evaluate(request.headers, stored.etag, stored.modified):
                body.close()
                return Response(status=304, headers=[h for h in headers if h[0] in ("etag", "last-modified")])
            span = conditions.byte_range(request.headers.get("range"), stored.size)
        except BaseException:
            body.close()
            raise
        if request.method == "HEAD":
            body.close()
            length = stored.size if span is None else span[1] - span[0] + 1
            status = 200 if span is None else 206
            if span is not None:
                headers.append(("content-range", f"bytes {span[0]}-{span[1]}/{stored.size}"))
            return Response(status=status, headers=[*headers, ("content-length", str(length))])
        if span is None:
            headers += _checksum_headers(stored.checksums) if _checksum_mode(request) else []
            return Response(headers=headers, stream=body, length=stored.size)
        first, last = span
        await asyncio.to_thread(body.seek, first)
        headers.append(("content-range", f"bytes {first}-{last}/{stored.size}"))
        return Response(status=206, headers=headers, stream=body, length=last - first + 1)

    async def _delete_object(self, request: Request) -> Response:
        assert request.bucket is not None and request.key is not None
        await asyncio.to_thread(self.service.delete_object, request.bucket, request.key)
        return Response(status=204)

    async def _copy_object(self, request: Request) -> Response:
        assert request.bucket is not None and request.key is not None
        source_bucket, source_key = _copy_source(request.headers["x-amz-copy-source"])
        directive = request.headers.get("x-amz-metadata-directive", "COPY").upper()
        if directive not in ("COPY", "REPLACE"):
            raise InvalidArgument(
                "Unknown metadata directive.", ArgumentName="x-amz-metadata-directive", ArgumentValue=directive
            )
        replace = None
        if directive == "REPLACE":
            replace = (_stored_headers(request.headers), _user_metadata(request.headers))
        elif (source_bucket, source_key) == (request.bucket, request.key):
            raise InvalidRequest(
                "This copy request is illegal because it is trying to copy an object to itself without changing "
                "the object's metadata, storage class, website redirect location or encryption attributes."
            )

        def check(source: StoredObject) -> None:
            if not conditions.evaluate(request.headers, source.etag, source.modified, "x-amz-copy-source-if-"):
                raise PreconditionFailed(Condition="x-amz-copy-source-If-None-Match")

        stored = await asyncio.to_thread(
            self.service.copy_object, source_bucket, source_key, request.bucket, request.key, replace, check
        )
        return _xml("CopyObjectResult", {"LastModified": iso(stored.modified), "ETag": stored.etag})

    # --- multipart uploads ------------------------------------------------------------------------
    async def _create_upload(self, request: Request) -> Response:
        assert request.bucket is not None and request.key is not None
        upload = await asyncio.to_thread(
            self.service.create_upload,
            request.bucket,
            request.key,
            _stored_headers(request.headers),
            _user_metadata(request.headers),
        )
        return _xml(
            "InitiateMultipartUploadResult", {"Bucket": upload.bucket, "Key": upload.key, "UploadId": upload.upload_id}
        )

    async def _upload_part(self, request: Request) -> Response:
        assert request.bucket is not None and request.key is not None
        number = _part_number(request.query["partNumber"])
        data, sums = self._payload(request)
        part = await asyncio.to_thread(
            self.service.upload_part, request.bucket, request.key, request.query["uploadId"], number, data
        )
        return Response(headers=[("etag", part.etag), *_checksum_headers(sums)])

    async def _list_parts(self, request: Request) -> Response:
        assert request.bucket is not None and request.key is not None
        upload, parts = await asyncio.to_thread(
            self.service.list_parts, request.bucket, request.key, request.query["uploadId"]
        )
        marker = _int_param(request.query, "part-number-marker", 0, 0)
        max_parts = _int_param(request.query, "max-parts", 1000, 0)
        after = [p for p in parts if p.number > marker]
        page = after[:max_parts]
        truncated = len(after) > len(page)
        content = {
            "Bucket": upload.bucket,
            "Key": upload.key,
            "UploadId": upload.upload_id,
            "Initiator": OWNER,
            "Owner": OWNER,
            "StorageClass": "STANDARD",
            "PartNumberMarker": marker,
            "NextPartNumberMarker": page[-1].number if page else 0,
            "MaxParts": max_parts,
            "IsTruncated": truncated,
            "Part": [
                {"PartNumber": p.number, "LastModified": iso(p.modified), "ETag": p.etag, "Size": p.size} for p in page
            ],
        }
        return _xml("ListPartsResult", content)

    async def _abort_upload(self, request: Request) -> Response:
        assert request.bucket is not None and request.key is not None
        await asyncio.to_thread(self.service.abort_upload, request.bucket, request.key, request.query["uploadId"])
        return Response(status=204)

    async def _complete_upload(self, request: Request) -> Response:
        assert request.bucket is not None and request.key is not None
        root = parse(request.body) if request.body.strip() else None
        if root is None or root.tag != "CompleteMultipartUpload":
            raise MalformedXML()
        requested = []
        for part in root.findall("Part"):
            number_text, etag = text(part, "PartNumber"), text(part, "ETag")
            if number_text is None or etag is None or not number_text.strip().isdigit():
                raise MalformedXML()
            requested.append((int(number_text), etag))
        stored = await asyncio.to_thread(
            self.service.complete_upload, request.bucket, request.key, request.query["uploadId"], requested
        )
        host = request.headers.get("host", "localhost")
        location = f"http://{host}/{quote(request.bucket)}/{quote(request.key)}"
        content = {"Location": location, "Bucket": request.bucket, "Key": request.key, "ETag": stored.etag}
        return _xml("CompleteMultipartUploadResult", content)

    # --- request bodies ---------------------------------------------------------------------------
    def _payload(self, request: Request) -> tuple[bytes, dict[str, str]]:
        """The object bytes of a PUT (aws-chunked decoded) and its verified flexible checksums."""
        headers = request.headers
        content_sha256 = headers.get("x-amz-content-sha256", "")
        encodings = [e.strip() for e in headers.get("content-encoding", "").split(",") if e.strip()]
        trailers: dict[str, str] = {}
        data = request.body
        if content_sha256 in chunked.STREAMING_FORMS or "aws-chunked" in encodings:
            signer = self._chunk_signer(request) if content_sha256.startswith("STREAMING-AWS4-HMAC") else None
            decoded = chunked.decode(request.body, signer)
            data, trailers = decoded.data, decoded.trailers
            declared = headers.get("x-amz-decoded-content-length")
            if declared is not None and declared.strip() != str(len(data)):
                raise IncompleteBody()
        sums = _check_body_digests(request, data, trailers)
        return data, sums

    def _chunk_signer(self, request: Request) -> chunked.ChunkSigner | None:
        """The seed of a signed aws-chunked body, from the (already verified) Authorization header."""
        if self.keys is None:
            return None
        authorization = request.headers.get("authorization", "")
        fields = dict(part.strip().split("=", 1) for part in authorization.partition(" ")[2].split(",") if "=" in part)
        credential = fields.get("Credential", "").split("/")
        secret = self.keys.get(credential[0]) if len(credential) == 5 else None
        timestamp = request.headers.get("x-amz-date", "")
        if secret is None or not timestamp:
            raise SignatureDoesNotMatch()
        _, date, region, service, terminator = credential
        return chunked.ChunkSigner(
            chunked.signing_key(secret, date, region, service),
            timestamp,
            f"{date}/{region}/{service}/{terminator}",
            fields.get("Signature", ""),
        )


def _check_body_digests(request: Request, data: bytes, trailers: Mapping[str, str] | None = None) -> dict[str, str]:
    """Verify ``Content-MD5`` and any ``x-amz-checksum-*`` (header or trailer); the checksums."""
    content_md5 = request.headers.get("content-md5")
    if content_md5 is not None:
        try:
            expected = base64.b64decode(content_md5, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidDigest(**{"Content-MD5": content_md5}) from None
        if len(expected) != 16:
            raise InvalidDigest(**{"Content-MD5": content_md5})
        if expected != hashlib.md5(data).digest():
            raise BadDigest(ExpectedDigest=expected.hex(), CalculatedDigest=hashlib.md5(data).hexdigest())
    given = {
        name[len(CHECKSUM_PREFIX) :]: value
        for source in (request.headers, trailers or {})
        for name, value in source.items()
        if name.startswith(CHECKSUM_PREFIX) and name[len(CHECKSUM_PREFIX) :] in checksums.ALGORITHMS
    }
    for algorithm, value in given.items():
        if checksums.checksum(algorithm, data) != value.strip():
            # S3 says e.g. "The CRC32 you specified did not match the calculated checksum" (aws-sdk-ruby#3322)
            raise BadDigest(f"The {algorithm.upper()} you specified did not match the calculated checksum.")
    return {algorithm: value.strip() for algorithm, value in given.items()}


def _xml(root: str, content: Mapping[str, object]) -> Response:
    return Response(headers=[("content-type", "application/xml")], body=document(root, content))


def _xml_body(body: bytes) -> Response:
    return Response(headers=[("content-type", "application/xml")], body=body)


def _error(exc: SquallError, request: Request) -> Response:
    if request.method == "HEAD":
        # A HEAD answer has no body: clients only see the status.
        return Response(status=exc.status)
    extra = {name: value for name, value in exc.extra.items() if value is not None}
    content = {"Code": exc.code, "Message": exc.message, **extra, "RequestId": request.request_id}
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error>{to_xml(content)}</Error>'.encode()
    return Response(status=exc.status, headers=[("content-type", "application/xml")], body=body)


async def _not_implemented(request: Request) -> Response:
    raise NotImplementedHere(Header="")


async def _send(send: Send, response: Response, request_id: str) -> None:
    headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in response.headers]
    headers.append((b"x-amz-request-id", request_id.encode()))
    if response.stream is None:
        if not any(name == b"content-length" for name, _ in headers):
            headers.append((b"content-length", str(len(response.body)).encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body, "more_body": False})
        return
    stream = response.stream
    try:
        headers.append((b"content-length", str(response.length).encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        remaining = response.length
        while remaining > 0:
            chunk = await asyncio.to_thread(stream.read, min(STREAM_CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": remaining > 0})
        if remaining:
            raise OSError("object body shorter than its recorded size")
        if response.length == 0:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        stream.close()


def _put_conditions(request: Request) -> Callable[[StoredObject | None], None] | None:
    """PutObject's conditional writes (``If-None-Match: *``, ``If-Match: <etag>``) as a check of the
    object the write would replace, which the store runs in the write's own transaction: of writers
    racing on one ETag, exactly one wins."""
    if_none_match = request.headers.get("if-none-match")
    if_match = request.headers.get("if-match")
    if if_none_match is None and if_match is None:
        return None

    def check(current: StoredObject | None) -> None:
        if if_none_match is not None and current is not None and if_none_match.strip() == "*":
            raise PreconditionFailed(Condition="If-None-Match")
        if if_match is not None:
            if current is None:
                raise NoSuchKey(Key=request.key)
            if not conditions.evaluate({"if-match": if_match}, current.etag, current.modified):
                raise PreconditionFailed(Condition="If-Match")

    return check


def _object_headers(stored: StoredObject, request: Request) -> list[tuple[str, str]]:
    headers = [
        ("etag", stored.etag),
        ("last-modified", http_date(stored.modified)),
        ("accept-ranges", "bytes"),
        ("content-type", stored.headers.get("content-type", DEFAULT_CONTENT_TYPE)),
    ]
    headers += [(name, value) for name, value in stored.headers.items() if name != "content-type"]
    headers += [(META_PREFIX + name, value) for name, value in stored.metadata.items()]
    if request.method == "GET":
        query = request.query
        overrides = {header: query[param] for param, header in RESPONSE_OVERRIDES.items() if param in query}
        headers = [(n, overrides.pop(n)) if n in overrides else (n, v) for n, v in headers] + list(overrides.items())
    if request.method == "HEAD" and _checksum_mode(request):
        headers += _checksum_headers(stored.checksums)
    return headers


def _checksum_mode(request: Request) -> bool:
    return request.headers.get("x-amz-checksum-mode", "").upper() == "ENABLED"


def _checksum_headers(sums: Mapping[str, str]) -> list[tuple[str, str]]:
    return [(CHECKSUM_PREFIX + algorithm, value) for algorithm, value in sums.items()]


def _stored_headers(headers: Mapping[str, str]) -> dict[str, str]:
    stored = {name: headers[name] for name in STORED_HEADERS if name in headers}
    if "content-encoding" in stored:
        # aws-chunked describes the upload, not the object.
        kept = [e.strip() for e in stored["content-encoding"].split(",") if e.strip() and e.strip() != "aws-chunked"]
        if kept:
            stored["content-encoding"] = ",".join(kept)
        else:
            del stored["content-encoding"]
    return stored


def _user_metadata(headers: Mapping[str, str]) -> dict[str, str]:
    return {name[len(META_PREFIX) :]: value for name, value in headers.items() if name.startswith(META_PREFIX)}


def _subresources(query: Mapping[str, str]) -> set[str]:
    return {name for name in _own_params(query) if name not in RESPONSE_OVERRIDES} - {"x-id", "versionId", "partNumber"}


def _own_params(query: Mapping[str, str]) -> set[str]:
    """The query parameters that are not a presigned URL's signature."""
    return {name for name in query if not name.lower().startswith("x-amz-") and name not in PRESIGN_V2_PARAMS}


def _copy_source(header: str) -> tuple[str, str]:
    source = unquote(urlsplit(header).path if "?" in header else header)
    bucket, _, key = source.lstrip("/").partition("/")
    if not bucket or not key:
        raise InvalidArgument(
            "Invalid copy source object key", ArgumentName="x-amz-copy-source", ArgumentValue=header
        )  # unverified: wording
    return bucket, key


def _part_number(raw: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PART_NUMBER:
        raise InvalidArgument(
            "Part number must be an integer between 1 and 10000, inclusive",
            ArgumentName="partNumber",
            ArgumentValue=raw,
        )
    return int(raw)


def _int_param(query: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidArgument(
            "Provided max-keys not an integer or within integer range"
            if name == "max-keys"
            else f"Provided {name} not an integer or within integer range",  # unverified: wording
            ArgumentName=name,
            ArgumentValue=raw,
        ) from None
    if value < minimum:
        raise InvalidArgument(
            f"Argument {name} must be an integer between {minimum} and 2147483647",  # unverified: wording
            ArgumentName=name,
            ArgumentValue=raw,
        )
    return value


def _encode_token(last: str) -> str:
    return base64.urlsafe_b64encode(last.encode()).decode()


def _decode_token(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidArgument(
            "The continuation token provided is incorrect", ArgumentName="continuation-token", ArgumentValue=token
        ) from None
