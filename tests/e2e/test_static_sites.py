"""Static websites from a bucket against a live server: Put/Get/DeleteBucketWebsite through boto3, pages over HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .conftest import SquallServer, error_of

pytestmark = pytest.mark.e2e

INDEX = b"<html><body><h1>Chat</h1><script src='app.js'></script></body></html>"
SCRIPT = b"fetch('/api/history').then(r => r.json())"
ERROR = b"<html><body>No such page</body></html>"


@pytest.fixture
def site(squall: SquallServer) -> Iterator[str]:
    s3 = squall.client("s3")
    bucket = f"site-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="index.html", Body=INDEX, ContentType="text/html")
    s3.put_object(Bucket=bucket, Key="app.js", Body=SCRIPT, ContentType="application/javascript")
    s3.put_object(Bucket=bucket, Key="docs/index.html", Body=b"<p>docs</p>", ContentType="text/html")
    s3.put_object(Bucket=bucket, Key="error.html", Body=ERROR, ContentType="text/html")
    s3.put_bucket_website(
        Bucket=bucket,
        WebsiteConfiguration={"IndexDocument": {"Suffix": "index.html"}, "ErrorDocument": {"Key": "error.html"}},
    )
    yield bucket
    listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    for item in listed:
        s3.delete_object(Bucket=bucket, Key=item["Key"])
    s3.delete_bucket(Bucket=bucket)


def page(squall: SquallServer, bucket: str, path: str = "/", **kwargs: Any) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{squall.gateway_port}/_s3-website/{bucket}{path}", **kwargs)


def test_website_configuration_operations(squall: SquallServer, site: str) -> None:
    s3 = squall.client("s3")
    got = s3.get_bucket_website(Bucket=site)
    assert got["IndexDocument"] == {"Suffix": "index.html"}
    assert got["ErrorDocument"] == {"Key": "error.html"}
    s3.put_bucket_website(Bucket=site, WebsiteConfiguration={"IndexDocument": {"Suffix": "home.htm"}})
    got = s3.get_bucket_website(Bucket=site)
    assert got["IndexDocument"] == {"Suffix": "home.htm"} and "ErrorDocument" not in got
    code, message, status, _ = error_of(
        s3.put_bucket_website, Bucket=site, WebsiteConfiguration={"IndexDocument": {"Suffix": "a/b"}}
    )
    assert (code, status) == ("InvalidArgument", 400)
    code, _, status, _ = error_of(
        s3.put_bucket_website,
        Bucket=site,
        WebsiteConfiguration={
            "IndexDocument": {"Suffix": "index.html"},
            "RoutingRules": [{"Redirect": {"ReplaceKeyWith": "x"}}],
        },
    )
    assert (code, status) == ("NotImplemented", 501)
    assert s3.delete_bucket_website(Bucket=site)["ResponseMetadata"]["HTTPStatusCode"] == 204
    code, message, status, _ = error_of(s3.get_bucket_website, Bucket=site)
    assert (code, message, status) == (
        "NoSuchWebsiteConfiguration",
        "The specified bucket does not have a website configuration",
        404,
    )
    code, _, status, _ = error_of(s3.get_bucket_website, Bucket="no-such-bucket-here")
    assert (code, status) == ("NoSuchBucket", 404)
    answer = page(squall, site)
    assert answer.status_code == 404 and "NoSuchWebsiteConfiguration" in answer.text


def test_index_assets_and_error_document(squall: SquallServer, site: str) -> None:
    index = page(squall, site)
    assert (index.status_code, index.content) == (200, INDEX)
    assert index.headers["content-type"] == "text/html"
    script = page(squall, site, "/app.js")
    assert (script.status_code, script.content) == (200, SCRIPT)
    assert script.headers["content-type"] == "application/javascript"
    folder = page(squall, site, "/docs/")
    assert (folder.status_code, folder.content) == (200, b"<p>docs</p>")
    bare = page(squall, site, "/docs")
    assert (bare.status_code, bare.headers["location"]) == (302, "/docs/")
    missing = page(squall, site, "/nope.html")
    assert (missing.status_code, missing.content) == (404, ERROR)
    assert missing.headers["content-type"] == "text/html"
    head = httpx.head(f"http://127.0.0.1:{squall.gateway_port}/_s3-website/{site}/app.js")
    assert (head.status_code, head.content, head.headers["content-length"]) == (200, b"", str(len(SCRIPT)))
    posted = httpx.post(f"http://127.0.0.1:{squall.gateway_port}/_s3-website/{site}/app.js")
    assert posted.status_code == 405


def test_host_form_and_missing_pages(squall: SquallServer, site: str) -> None:
    host = {"Host": f"{site}.s3-website.localhost:{squall.gateway_port}"}
    index = httpx.get(f"http://127.0.0.1:{squall.gateway_port}/", headers=host)
    assert (index.status_code, index.content) == (200, INDEX)
    squall.client("s3").delete_object(Bucket=site, Key="error.html")
    missing = httpx.get(f"http://127.0.0.1:{squall.gateway_port}/gone", headers=host)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    assert "<li>Code: NoSuchKey</li>" in missing.text and "<li>Key: gone</li>" in missing.text
    no_bucket = page(squall, "no-such-bucket-here")
    assert no_bucket.status_code == 404 and "NoSuchBucket" in no_bucket.text


def test_conditional_get(squall: SquallServer, site: str) -> None:
    first = page(squall, site, "/app.js")
    etag = first.headers["etag"]
    assert first.headers["last-modified"]
    again = page(squall, site, "/app.js", headers={"If-None-Match": etag})
    assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", etag)
    since = page(squall, site, "/app.js", headers={"If-Modified-Since": first.headers["last-modified"]})
    assert since.status_code == 304
    changed = page(squall, site, "/app.js", headers={"If-None-Match": '"other"'})
    assert (changed.status_code, changed.content) == (200, SCRIPT)


def test_redirect_all_requests(squall: SquallServer, site: str) -> None:
    s3 = squall.client("s3")
    s3.put_bucket_website(
        Bucket=site, WebsiteConfiguration={"RedirectAllRequestsTo": {"HostName": "example.com", "Protocol": "https"}}
    )
    assert s3.get_bucket_website(Bucket=site)["RedirectAllRequestsTo"] == {
        "HostName": "example.com",
        "Protocol": "https",
    }
    moved = page(squall, site, "/a/b.html")
    assert (moved.status_code, moved.headers["location"]) == (301, "https://example.com/a/b.html")


def test_a_recreated_bucket_has_no_website(squall: SquallServer) -> None:
    s3 = squall.client("s3")
    bucket = f"site-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_website(Bucket=bucket, WebsiteConfiguration={"IndexDocument": {"Suffix": "index.html"}})
    s3.delete_bucket(Bucket=bucket)
    s3.create_bucket(Bucket=bucket)
    try:
        code, _, _, _ = error_of(s3.get_bucket_website, Bucket=bucket)
        assert code == "NoSuchWebsiteConfiguration"
    finally:
        s3.delete_bucket(Bucket=bucket)
