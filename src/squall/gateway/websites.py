"""Bucket website endpoints on the gateway port, as S3 static website hosting serves them.

A request names its bucket by host, ``http://<bucket>.s3-website.localhost:8991/<key>`` (also
``<bucket>.s3-website-<region>.localhost`` and ``<bucket>.s3-website.<region>.localhost``), or by
path, ``http://127.0.0.1:8991/_s3-website/<bucket>/<key>``. ``/`` and any path ending in ``/`` serve
that folder's index document; a key that is missing but has an index document under it redirects
(302) to the folder; a missing key is 404 with the error document (or S3's HTML error page).
Objects keep their stored Content-Type, ETag and Last-Modified, and If-None-Match /
If-Modified-Since answer 304. Only GET and HEAD are served.
"""

from __future__ import annotations

import asyncio
import re
from html import escape

from squall.gateway.events import HttpResponse
from squall.services.buckets import conditions, website
from squall.services.buckets.api import DEFAULT_CONTENT_TYPE, STORED_HEADERS
from squall.services.buckets.errors import NoSuchBucket, NoSuchKey, PreconditionFailed
from squall.services.buckets.service import BucketService, StoredObject
from squall.services.buckets.xmlwire import http_date

PATH_PREFIX = "/_s3-website/"
_HOST_WEBSITE = re.compile(r"^(?P<bucket>[a-z0-9][a-z0-9.-]*)\.s3-website(?:[.-][a-z0-9-]+)?\.localhost(?::\d+)?$")


def locate(host: str, path: str) -> tuple[str, str] | None:
    """(bucket, path inside the website) of a request to a website endpoint, else None."""
    by_host = _HOST_WEBSITE.match(host.lower())
    if by_host:
        return by_host.group("bucket"), path or "/"
    if path.startswith(PATH_PREFIX):
        bucket, _, rest = path[len(PATH_PREFIX) :].partition("/")
        return bucket, "/" + rest
    return None


def error_page(status: int, reason: str, code: str, message: str, request_id: str, **extra: str) -> HttpResponse:
    """S3's HTML error page of a website endpoint."""
    items = [("Code", code), ("Message", message), *extra.items(), ("RequestId", request_id)]
    lines = "".join(f"<li>{name}: {escape(value)}</li>\n" for name, value in items)
    body = (
        f"<html>\n<head><title>{status} {reason}</title></head>\n<body>\n<h1>{status} {reason}</h1>\n"
        f"<ul>\n{lines}</ul>\n<hr/>\n</body>\n</html>\n"
    )
    return HttpResponse(status, [("content-type", "text/html; charset=utf-8")], body.encode())


class WebsiteServer:
    """Serves the websites of a bucket service's buckets."""

    def __init__(self, service: BucketService) -> None:
        self._service = service

    async def serve(
        self, bucket: str, path: str, method: str, headers: dict[str, str], request_id: str
    ) -> HttpResponse:
        if method not in ("GET", "HEAD"):
            # unverified: a website endpoint's answer to other methods
            return error_page(
                405,
                "Method Not Allowed",
                "MethodNotAllowed",
                "The specified method is not allowed against this resource.",
                request_id,
                Method=method,
                ResourceType="OBJECT",
            )
        return await asyncio.to_thread(self._serve, bucket, path, headers, request_id)

    def _serve(self, bucket: str, path: str, headers: dict[str, str], request_id: str) -> HttpResponse:
        try:
            config = website.active_config(self._service, bucket)
        except NoSuchBucket:
            return error_page(
                404, "Not Found", "NoSuchBucket", "The specified bucket does not exist", request_id, BucketName=bucket
            )
        if config is None:
            return error_page(
                404,
                "Not Found",
                "NoSuchWebsiteConfiguration",
                "The specified bucket does not have a website configuration",
                request_id,
                BucketName=bucket,
            )
        if config.redirect_host is not None:
            location = f"{config.redirect_protocol or 'http'}://{config.redirect_host}{path}"
            return HttpResponse(301, [("location", location)])
        suffix = config.index_suffix or "index.html"
        key = path.lstrip("/")
        if key == "" or key.endswith("/"):
            key += suffix
        found = self._object(bucket, key, headers, 200)
        if found is not None:
            return found
        if not path.endswith("/") and self._exists(bucket, f"{path.lstrip('/')}/{suffix}"):
            return HttpResponse(302, [("location", path + "/")])
        if config.error_key is not None:
            document = self._object(bucket, config.error_key, {}, 404)
            if document is not None:
                return document
        return error_page(404, "Not Found", "NoSuchKey", "The specified key does not exist.", request_id, Key=key)

    def _exists(self, bucket: str, key: str) -> bool:
        try:
            self._service.head_object(bucket, key)
        except NoSuchKey:
            return False
        return True

    def _object(self, bucket: str, key: str, headers: dict[str, str], status: int) -> HttpResponse | None:
        """The object as a response with ``status`` (304 when the request's conditions say so), or None."""
        try:
            stored, body = self._service.open_object(bucket, key)
        except NoSuchKey:
            return None
        with body:
            response_headers = _headers(stored)
            try:
                fresh = conditions.evaluate(headers, stored.etag, stored.modified)
            except PreconditionFailed:
                return HttpResponse(412, response_headers[:2])
            if not fresh and status == 200:
                return HttpResponse(304, response_headers[:2])
            return HttpResponse(status, response_headers, body.read())


def _headers(stored: StoredObject) -> list[tuple[str, str]]:
    """ETag and Last-Modified first, then the object's stored representation headers."""
    headers = [
        ("etag", stored.etag),
        ("last-modified", http_date(stored.modified)),
        ("content-type", stored.headers.get("content-type", DEFAULT_CONTENT_TYPE)),
    ]
    headers += [
        (name, stored.headers[name]) for name in STORED_HEADERS if name != "content-type" and name in stored.headers
    ]
    return headers
