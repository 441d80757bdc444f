"""The bucket service (S3 REST API) driven by real boto3 clients, urllib and the AWS CLI."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from squall.services.buckets import checksums, chunked
from tests.e2e.conftest import SquallServer, error_of

pytestmark = pytest.mark.e2e

MIB = 1024 * 1024
AWS = Path(sys.executable).parent / "aws"


@pytest.fixture(scope="module")
def s3(squall: SquallServer) -> Any:
    return squall.client("s3")


@pytest.fixture
def bucket(s3: Any) -> Iterator[str]:
    """A fresh bucket, emptied and deleted after the test."""
    name = f"bkt-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    yield name
    for upload in s3.list_multipart_uploads(Bucket=name).get("Uploads", []):
        s3.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
        for item in page.get("Contents", []):
            s3.delete_object(Bucket=name, Key=item["Key"])
    s3.delete_bucket(Bucket=name)


@pytest.fixture
def resolve_localhost_subdomains(monkeypatch: pytest.MonkeyPatch) -> None:
    """``<bucket>.localhost`` resolves to loopback (as systemd-resolved and browsers do; plain
    glibc does not), so boto3 can use virtual-host addressing against the test server."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.endswith(".localhost"):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


# --- buckets -------------------------------------------------------------------------------------
def test_bucket_lifecycle_and_errors(s3: Any) -> None:
    name = f"life-{uuid.uuid4().hex[:8]}"
    created = s3.create_bucket(Bucket=name)
    assert created["Location"] == f"/{name}"
    # us-east-1 answers its owner's re-create with 200, for legacy compatibility.
    s3.create_bucket(Bucket=name)
    assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    head = s3.head_bucket(Bucket=name)
    assert head["ResponseMetadata"]["HTTPHeaders"]["x-amz-bucket-region"] == "us-east-1"
    assert s3.get_bucket_location(Bucket=name)["LocationConstraint"] is None

    s3.put_object(Bucket=name, Key="k", Body=b"x")
    code, message, status, response = error_of(s3.delete_bucket, Bucket=name)
    assert (code, message, status) == ("BucketNotEmpty", "The bucket you tried to delete is not empty", 409)
    assert response["Error"]["BucketName"] == name
    s3.delete_object(Bucket=name, Key="k")
    s3.delete_bucket(Bucket=name)

    code, message, status, response = error_of(s3.delete_bucket, Bucket=name)
    assert (code, message, status) == ("NoSuchBucket", "The specified bucket does not exist", 404)
    assert response["Error"]["BucketName"] == name
    assert error_of(s3.head_bucket, Bucket=name)[2] == 404
    assert error_of(s3.list_objects_v2, Bucket=name)[0] == "NoSuchBucket"
    assert error_of(s3.put_object, Bucket=name, Key="k", Body=b"")[0] == "NoSuchBucket"
    assert error_of(s3.get_object, Bucket=name, Key="k")[0] == "NoSuchBucket"


@pytest.mark.parametrize("name", ["ab", "UPPER-case", "under_score", "a..b", "192.168.1.1", "-dash", "x" * 64])
def test_invalid_bucket_names(s3: Any, name: str) -> None:
    code, message, status, _ = error_of(s3.create_bucket, Bucket=name)
    assert (code, message, status) == ("InvalidBucketName", "The specified bucket is not valid.", 400)


# --- objects -------------------------------------------------------------------------------------
def test_put_get_head_round_trip(s3: Any, bucket: str) -> None:
    body = b"hello, buckets"
    put = s3.put_object(
        Bucket=bucket,
        Key="dir/file.txt",
        Body=body,
        ContentType="text/plain",
        ContentEncoding="identity",
        ContentDisposition='attachment; filename="f.txt"',
        CacheControl="max-age=60",
        ContentLanguage="en",
        Metadata={"color": "blue", "Owner": "me"},
    )
    etag = f'"{hashlib.md5(body).hexdigest()}"'
    assert put["ETag"] == etag
    got = s3.get_object(Bucket=bucket, Key="dir/file.txt")
    assert got["Body"].read() == body
    assert got["ETag"] == etag
    assert got["ContentLength"] == len(body)
    assert got["ContentType"] == "text/plain"
    assert got["ContentEncoding"] == "identity"
    assert got["ContentDisposition"] == 'attachment; filename="f.txt"'
    assert got["CacheControl"] == "max-age=60"
    assert got["ContentLanguage"] == "en"
    assert got["Metadata"] == {"color": "blue", "owner": "me"}
    assert got["AcceptRanges"] == "bytes"
    head = s3.head_object(Bucket=bucket, Key="dir/file.txt")
    assert head["ContentLength"] == len(body)
    assert head["ETag"] == etag
    assert head["Metadata"] == {"color": "blue", "owner": "me"}
    assert abs(head["LastModified"].timestamp() - time.time()) < 60

    s3.put_object(Bucket=bucket, Key="plain", Body=b"")
    empty = s3.get_object(Bucket=bucket, Key="plain")
    assert empty["Body"].read() == b""
    assert empty["ContentType"] == "binary/octet-stream"
    assert empty["ETag"] == f'"{hashlib.md5(b"").hexdigest()}"'

    overridden = s3.get_object(Bucket=bucket, Key="plain", ResponseContentType="image/png")
    assert overridden["ContentType"] == "image/png"


def test_overwrite_and_odd_keys(s3: Any, bucket: str) -> None:
    keys = ["a b+c", "ünïcode/ключ", "x/../y", "trailing/", "q?s=1&t", "%41percent", "semi;colon"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    for key in keys:
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == key.encode()
    listed = [item["Key"] for item in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert listed == sorted(keys, key=lambda k: k.encode())
    s3.put_object(Bucket=bucket, Key="a b+c", Body=b"second")
    assert s3.get_object(Bucket=bucket, Key="a b+c")["Body"].read() == b"second"


def test_missing_key_errors(s3: Any, bucket: str) -> None:
    code, message, status, response = error_of(s3.get_object, Bucket=bucket, Key="nope/x")
    assert (code, message, status) == ("NoSuchKey", "The specified key does not exist.", 404)
    assert response["Error"]["Key"] == "nope/x"
    assert response["ResponseMetadata"]["RequestId"]
    # HEAD errors carry no body: botocore reports the status.
    code, _, status, _ = error_of(s3.head_object, Bucket=bucket, Key="nope/x")
    assert (code, status) == ("404", 404)
    # Deleting a missing key succeeds, as on S3.
    assert s3.delete_object(Bucket=bucket, Key="nope/x")["ResponseMetadata"]["HTTPStatusCode"] == 204
    code, message, status, _ = error_of(s3.put_object, Bucket=bucket, Key="k" * 1025, Body=b"")
    assert (code, message, status) == ("KeyTooLongError", "Your key is too long", 400)


def test_checksums_and_content_md5(s3: Any, bucket: str) -> None:
    put = s3.put_object(Bucket=bucket, Key="c", Body=b"abc", ChecksumAlgorithm="SHA256")
    assert put["ChecksumSHA256"] == "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
    got = s3.get_object(Bucket=bucket, Key="c", ChecksumMode="ENABLED")
    assert got["ChecksumSHA256"] == "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
    assert got["Body"].read() == b"abc"
    crc = s3.put_object(Bucket=bucket, Key="d", Body=b"hello world")
    assert crc["ChecksumCRC32"] == "DUoRhQ=="
    assert s3.head_object(Bucket=bucket, Key="d", ChecksumMode="ENABLED")["ChecksumCRC32"] == "DUoRhQ=="
    code, _, status, _ = error_of(
        s3.put_object,
        Bucket=bucket,
        Key="e",
        Body=b"abc",
        ChecksumSHA256="AAAAv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=",
    )
    assert (code, status) == ("BadDigest", 400)
    code, message, status, _ = error_of(
        s3.put_object, Bucket=bucket, Key="e", Body=b"abc", ContentMD5="1B2M2Y8AsgTpgAmY7PhCfg=="
    )
    assert (code, message, status) == (
        "BadDigest",
        "The Content-MD5 you specified did not match what we received.",
        400,
    )
    assert error_of(s3.get_object, Bucket=bucket, Key="e")[0] == "NoSuchKey"


# --- ranges and conditionals ---------------------------------------------------------------------
def test_ranges(s3: Any, bucket: str) -> None:
    body = bytes(range(256)) * 4
    s3.put_object(Bucket=bucket, Key="r", Body=body)
    for header, expected, content_range in [
        ("bytes=0-9", body[:10], "bytes 0-9/1024"),
        ("bytes=1000-", body[1000:], "bytes 1000-1023/1024"),
        ("bytes=-5", body[-5:], "bytes 1019-1023/1024"),
        ("bytes=1020-5000", body[1020:], "bytes 1020-1023/1024"),
    ]:
        got = s3.get_object(Bucket=bucket, Key="r", Range=header)
        assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
        assert got["ContentRange"] == content_range
        assert got["ContentLength"] == len(expected)
        assert got["Body"].read() == expected
    head = s3.head_object(Bucket=bucket, Key="r", Range="bytes=10-19")
    assert (head["ContentLength"], head["ContentRange"]) == (10, "bytes 10-19/1024")
    # A range S3 cannot parse is ignored: the whole object, 200.
    whole = s3.get_object(Bucket=bucket, Key="r", Range="bytes=9-2")
    assert whole["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert whole["Body"].read() == body
    code, message, status, response = error_of(s3.get_object, Bucket=bucket, Key="r", Range="bytes=2000-")
    assert (code, message, status) == ("InvalidRange", "The requested range is not satisfiable", 416)
    assert response["Error"]["ActualObjectSize"] == "1024"


def test_conditional_requests(s3: Any, bucket: str) -> None:
    etag = s3.put_object(Bucket=bucket, Key="c", Body=b"v1")["ETag"]
    modified = s3.head_object(Bucket=bucket, Key="c")["LastModified"]
    before, after = modified - timedelta(hours=1), modified + timedelta(hours=1)

    assert s3.get_object(Bucket=bucket, Key="c", IfMatch=etag)["Body"].read() == b"v1"
    code, message, status, response = error_of(s3.get_object, Bucket=bucket, Key="c", IfMatch='"0000"')
    assert (code, message, status) == (
        "PreconditionFailed",
        "At least one of the pre-conditions you specified did not hold",
        412,
    )
    assert response["Error"]["Condition"] == "If-Match"
    assert error_of(s3.get_object, Bucket=bucket, Key="c", IfUnmodifiedSince=before)[2] == 412
    assert s3.get_object(Bucket=bucket, Key="c", IfUnmodifiedSince=after)["Body"].read() == b"v1"
    # If-Match that holds wins over a failing If-Unmodified-Since.
    assert s3.get_object(Bucket=bucket, Key="c", IfMatch=etag, IfUnmodifiedSince=before)["ETag"] == etag

    code, _, status, response = error_of(s3.get_object, Bucket=bucket, Key="c", IfNoneMatch=etag)
    assert (code, status) == ("304", 304)
    assert response["ResponseMetadata"]["HTTPHeaders"]["etag"] == etag
    assert error_of(s3.get_object, Bucket=bucket, Key="c", IfModifiedSince=after)[2] == 304
    assert s3.get_object(Bucket=bucket, Key="c", IfModifiedSince=before)["Body"].read() == b"v1"
    assert s3.get_object(Bucket=bucket, Key="c", IfNoneMatch='"other"')["Body"].read() == b"v1"
    assert error_of(s3.head_object, Bucket=bucket, Key="c", IfNoneMatch=etag)[2] == 304
    assert error_of(s3.head_object, Bucket=bucket, Key="c", IfMatch='"x"')[2] == 412

    # Conditional writes.
    code, _, status, _ = error_of(s3.put_object, Bucket=bucket, Key="c", Body=b"v2", IfNoneMatch="*")
    assert (code, status) == ("PreconditionFailed", 412)
    s3.put_object(Bucket=bucket, Key="fresh", Body=b"v1", IfNoneMatch="*")
    assert error_of(s3.put_object, Bucket=bucket, Key="c", Body=b"v2", IfMatch='"nope"')[2] == 412
    s3.put_object(Bucket=bucket, Key="c", Body=b"v2", IfMatch=etag)
    assert s3.get_object(Bucket=bucket, Key="c")["Body"].read() == b"v2"


def test_conditional_writes_are_atomic_under_concurrency(squall: SquallServer, s3: Any, bucket: str) -> None:
    """Read-modify-write with If-Match loses no update when writers race (S3 checks the condition
    and writes in one step), and of racing If-None-Match: * creates exactly one wins."""
    writers, rounds = 6, 5
    s3.put_object(Bucket=bucket, Key="counter", Body=b"0")

    def increment(client: Any) -> int:
        conflicts = 0
        for _ in range(rounds):
            while True:
                current = client.get_object(Bucket=bucket, Key="counter")
                value = int(current["Body"].read())
                try:
                    client.put_object(Bucket=bucket, Key="counter", Body=b"%d" % (value + 1), IfMatch=current["ETag"])
                    break
                except ClientError as exc:
                    assert exc.response["Error"]["Code"] == "PreconditionFailed", exc.response
                    conflicts += 1
        return conflicts

    def create(client: Any, body: bytes) -> bool:
        try:
            client.put_object(Bucket=bucket, Key="once", Body=body, IfNoneMatch="*")
            return True
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "PreconditionFailed", exc.response
            return False

    clients = [squall.client("s3") for _ in range(writers)]
    with ThreadPoolExecutor(max_workers=writers) as pool:
        conflicts = sum(pool.map(increment, clients))
        created = list(pool.map(create, clients, [b"writer %d" % n for n in range(writers)]))
    assert int(s3.get_object(Bucket=bucket, Key="counter")["Body"].read()) == writers * rounds, conflicts
    assert created.count(True) == 1, created
    winner = created.index(True)
    assert s3.get_object(Bucket=bucket, Key="once")["Body"].read() == b"writer %d" % winner


# --- delete, copy --------------------------------------------------------------------------------
def test_delete_objects(s3: Any, bucket: str) -> None:
    for key in ("a", "b", "c"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    result = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "a"}, {"Key": "b"}, {"Key": "zz"}]})
    assert sorted(d["Key"] for d in result["Deleted"]) == ["a", "b", "zz"]
    assert "Errors" not in result
    quiet = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "c"}], "Quiet": True})
    assert "Deleted" not in quiet
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    code, message, status, _ = error_of(s3.delete_objects, Bucket=bucket, Delete={"Objects": []})
    assert (code, status) == ("MalformedXML", 400)
    assert message.startswith("The XML you provided was not well-formed")


def test_copy_object(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="src", Body=b"payload", ContentType="text/x", Metadata={"a": "1"})
    copied = s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    assert copied["CopyObjectResult"]["ETag"] == f'"{hashlib.md5(b"payload").hexdigest()}"'
    got = s3.get_object(Bucket=bucket, Key="dst")
    assert (got["Body"].read(), got["ContentType"], got["Metadata"]) == (b"payload", "text/x", {"a": "1"})

    s3.copy_object(
        Bucket=bucket,
        Key="dst 2",
        CopySource=f"{bucket}/src",
        MetadataDirective="REPLACE",
        ContentType="text/y",
        Metadata={"b": "2"},
    )
    got = s3.head_object(Bucket=bucket, Key="dst 2")
    assert (got["ContentType"], got["Metadata"]) == ("text/y", {"b": "2"})

    code, message, status, _ = error_of(
        s3.copy_object, Bucket=bucket, Key="src", CopySource={"Bucket": bucket, "Key": "src"}
    )
    assert (code, status) == ("InvalidRequest", 400)
    assert "copy an object to itself" in message
    s3.copy_object(Bucket=bucket, Key="src", CopySource={"Bucket": bucket, "Key": "src"}, MetadataDirective="REPLACE")
    assert s3.head_object(Bucket=bucket, Key="src")["Metadata"] == {}
    assert error_of(s3.copy_object, Bucket=bucket, Key="x", CopySource={"Bucket": bucket, "Key": "missing"})[0] == (
        "NoSuchKey"
    )
    code, _, status, _ = error_of(
        s3.copy_object, Bucket=bucket, Key="x", CopySource={"Bucket": bucket, "Key": "src"}, CopySourceIfMatch='"n"'
    )
    assert (code, status) == ("PreconditionFailed", 412)


# --- listing -------------------------------------------------------------------------------------
def test_list_objects_v2(s3: Any, bucket: str) -> None:
    keys = ["a/1", "a/2", "a/b/3", "b/4", "c", "d/5", "d/6"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    everything = s3.list_objects_v2(Bucket=bucket)
    assert [c["Key"] for c in everything["Contents"]] == keys
    assert everything["KeyCount"] == 7
    assert everything["IsTruncated"] is False
    first = everything["Contents"][0]
    assert first["Size"] == 3
    assert first["ETag"] == f'"{hashlib.md5(b"a/1").hexdigest()}"'
    assert first["StorageClass"] == "STANDARD"

    top = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [c["Key"] for c in top["Contents"]] == ["c"]
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["a/", "b/", "d/"]
    assert top["KeyCount"] == 4

    under_a = s3.list_objects_v2(Bucket=bucket, Prefix="a/", Delimiter="/")
    assert [c["Key"] for c in under_a["Contents"]] == ["a/1", "a/2"]
    assert [p["Prefix"] for p in under_a["CommonPrefixes"]] == ["a/b/"]

    assert [c["Key"] for c in s3.list_objects_v2(Bucket=bucket, StartAfter="b/4")["Contents"]] == ["c", "d/5", "d/6"]
    assert s3.list_objects_v2(Bucket=bucket, Prefix="zzz")["KeyCount"] == 0

    page = s3.list_objects_v2(Bucket=bucket, MaxKeys=2)
    assert page["IsTruncated"] is True
    assert page["MaxKeys"] == 2
    seen = [c["Key"] for c in page["Contents"]]
    while page["IsTruncated"]:
        page = s3.list_objects_v2(Bucket=bucket, MaxKeys=2, ContinuationToken=page["NextContinuationToken"])
        seen += [c["Key"] for c in page["Contents"]]
    assert seen == keys

    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Delimiter="/", PaginationConfig={"PageSize": 1})
    entries: list[str] = []
    for one in pages:
        entries += [c["Key"] for c in one.get("Contents", [])] + [p["Prefix"] for p in one.get("CommonPrefixes", [])]
    assert entries == ["a/", "b/", "c", "d/"]


def test_list_objects_v1_and_url_encoding(s3: Any, bucket: str) -> None:
    for key in ("k 1", "k+2", "k/3"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"")
    v1 = s3.list_objects(Bucket=bucket, MaxKeys=2)
    assert [c["Key"] for c in v1["Contents"]] == ["k 1", "k+2"]
    assert v1["IsTruncated"] is True
    rest = s3.list_objects(Bucket=bucket, Marker="k+2")
    assert [c["Key"] for c in rest["Contents"]] == ["k/3"]
    # botocore asks for encoding-type=url and decodes; raw keys must survive the trip.
    raw = s3.list_objects_v2(Bucket=bucket, Prefix="k ")
    assert raw["EncodingType"] == "url"
    assert [c["Key"] for c in raw["Contents"]] == ["k 1"]
    assert [
        c["Key"] for c in s3.get_paginator("list_objects").paginate(Bucket=bucket).build_full_result()["Contents"]
    ] == [
        "k 1",
        "k+2",
        "k/3",
    ]


# --- multipart -----------------------------------------------------------------------------------
@pytest.mark.slow
def test_multipart_upload(s3: Any, bucket: str) -> None:
    part1, part2, part3 = os.urandom(5 * MIB), os.urandom(5 * MIB), b"tail"
    upload = s3.create_multipart_upload(Bucket=bucket, Key="big", ContentType="application/x-big", Metadata={"m": "v"})
    upload_id = upload["UploadId"]
    assert (upload["Bucket"], upload["Key"]) == (bucket, "big")
    listed = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in listed] == [("big", upload_id)]

    etags = []
    for number, data in enumerate((part1, part2, part3), start=1):
        response = s3.upload_part(Bucket=bucket, Key="big", UploadId=upload_id, PartNumber=number, Body=data)
        assert response["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
        etags.append(response["ETag"])
    parts = s3.list_parts(Bucket=bucket, Key="big", UploadId=upload_id)["Parts"]
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in parts] == [
        (1, etags[0], 5 * MIB),
        (2, etags[1], 5 * MIB),
        (3, etags[2], 4),
    ]
    page = s3.list_parts(Bucket=bucket, Key="big", UploadId=upload_id, MaxParts=2)
    assert (page["IsTruncated"], page["NextPartNumberMarker"]) == (True, 2)

    out_of_order = {"Parts": [{"PartNumber": 2, "ETag": etags[1]}, {"PartNumber": 1, "ETag": etags[0]}]}
    code, message, status, _ = error_of(
        s3.complete_multipart_upload, Bucket=bucket, Key="big", UploadId=upload_id, MultipartUpload=out_of_order
    )
    assert (code, status) == ("InvalidPartOrder", 400)
    assert message == "The list of parts was not in ascending order. Parts must be ordered by part number."
    wrong_tag = {"Parts": [{"PartNumber": 1, "ETag": '"0123"'}]}
    code, message, status, _ = error_of(
        s3.complete_multipart_upload, Bucket=bucket, Key="big", UploadId=upload_id, MultipartUpload=wrong_tag
    )
    assert (code, status) == ("InvalidPart", 400)
    assert message.startswith("One or more of the specified parts could not be found.")
    small_first = {"Parts": [{"PartNumber": 3, "ETag": etags[2]}, {"PartNumber": 1, "ETag": etags[0]}]}
    assert (
        error_of(
            s3.complete_multipart_upload, Bucket=bucket, Key="big", UploadId=upload_id, MultipartUpload=small_first
        )[0]
        == "InvalidPartOrder"
    )

    done = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="big",
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": tag} for n, tag in enumerate(etags, start=1)]},
    )
    expected_etag = '"{}-3"'.format(
        hashlib.md5(b"".join(hashlib.md5(p).digest() for p in (part1, part2, part3))).hexdigest()
    )
    assert done["ETag"] == expected_etag
    got = s3.get_object(Bucket=bucket, Key="big")
    assert got["ETag"] == expected_etag
    assert (got["ContentType"], got["Metadata"]) == ("application/x-big", {"m": "v"})
    assert got["ContentLength"] == 10 * MIB + 4
    assert hashlib.sha256(got["Body"].read()).digest() == hashlib.sha256(part1 + part2 + part3).digest()
    middle = s3.get_object(Bucket=bucket, Key="big", Range=f"bytes={5 * MIB - 2}-{5 * MIB + 1}")["Body"].read()
    assert middle == part1[-2:] + part2[:2]
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    code, _, status, response = error_of(s3.list_parts, Bucket=bucket, Key="big", UploadId=upload_id)
    assert (code, status) == ("NoSuchUpload", 404)
    assert response["Error"]["Message"].startswith("The specified upload does not exist.")


@pytest.mark.slow
def test_multipart_entity_too_small_and_abort(s3: Any, bucket: str) -> None:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="m")["UploadId"]
    tags = [
        s3.upload_part(Bucket=bucket, Key="m", UploadId=upload_id, PartNumber=n, Body=b"x" * 100)["ETag"]
        for n in (1, 2)
    ]
    code, message, status, response = error_of(
        s3.complete_multipart_upload,
        Bucket=bucket,
        Key="m",
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": t} for n, t in zip((1, 2), tags, strict=True)]},
    )
    assert (code, message, status) == (
        "EntityTooSmall",
        "Your proposed upload is smaller than the minimum allowed object size.",
        400,
    )
    assert response["Error"]["MinSizeAllowed"] == str(5 * MIB)
    code, _, status, _ = error_of(
        s3.upload_part, Bucket=bucket, Key="m", UploadId=upload_id, PartNumber=10001, Body=b"x"
    )
    assert (code, status) == ("InvalidArgument", 400)
    # A single small part is allowed: the last part may be any size.
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="m", UploadId=upload_id, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": tags[0]}]}
    )
    assert done["ETag"].endswith('-1"')

    other = s3.create_multipart_upload(Bucket=bucket, Key="n")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="n", UploadId=other, PartNumber=1, Body=b"y")
    s3.abort_multipart_upload(Bucket=bucket, Key="n", UploadId=other)
    assert error_of(s3.abort_multipart_upload, Bucket=bucket, Key="n", UploadId=other)[0] == "NoSuchUpload"
    assert (
        error_of(s3.upload_part, Bucket=bucket, Key="n", UploadId="bogus", PartNumber=1, Body=b"y")[0] == "NoSuchUpload"
    )
    assert error_of(s3.get_object, Bucket=bucket, Key="n")[0] == "NoSuchKey"


# --- addressing, presigned URLs ------------------------------------------------------------------
def test_virtual_host_addressing(squall: SquallServer, bucket: str, resolve_localhost_subdomains: None) -> None:
    key, secret = squall.credentials()
    virtual = boto3.client(
        "s3",
        endpoint_url=f"http://localhost:{squall.port}",
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 0}, s3={"addressing_style": "virtual"}),
    )
    sent: list[str] = []
    virtual.meta.events.register("before-send.s3", lambda request, **_: sent.append(request.url))
    virtual.put_object(Bucket=bucket, Key="v/key 1", Body=b"virtual")
    assert virtual.get_object(Bucket=bucket, Key="v/key 1")["Body"].read() == b"virtual"
    assert [c["Key"] for c in virtual.list_objects_v2(Bucket=bucket)["Contents"]] == ["v/key 1"]
    virtual.head_bucket(Bucket=bucket)
    assert all(url.startswith(f"http://{bucket}.localhost:") for url in sent), sent
    virtual.delete_object(Bucket=bucket, Key="v/key 1")
    virtual.close()


def test_presigned_urls(squall: SquallServer, bucket: str) -> None:
    signer = squall.client("s3", signature_version="s3v4")
    put_url = signer.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "pre signed"}, ExpiresIn=60)
    request = urllib.request.Request(put_url, data=b"via presigned put", method="PUT")
    with urllib.request.urlopen(request) as response:
        assert response.status == 200
        assert response.headers["ETag"] == f'"{hashlib.md5(b"via presigned put").hexdigest()}"'
    get_url = signer.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "pre signed"}, ExpiresIn=60)
    with urllib.request.urlopen(get_url) as response:
        assert response.read() == b"via presigned put"

    tampered = get_url.replace("pre%20signed", "other")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(tampered)
    assert refused.value.code == 403
    assert b"<Code>SignatureDoesNotMatch</Code>" in refused.value.read()
    refused.value.close()

    expired = signer.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "pre signed"}, ExpiresIn=1)
    time.sleep(2.1)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(expired)
    assert refused.value.code == 403
    body = refused.value.read()
    refused.value.close()
    assert b"<Code>AccessDenied</Code>" in body
    assert b"Request has expired" in body


def test_unsigned_requests_are_refused(squall: SquallServer, bucket: str) -> None:
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{squall.url}/{bucket}/anything")
    assert refused.value.code == 403
    assert refused.value.headers["Content-Type"] == "application/xml"
    assert b"<Code>AccessDenied</Code><Message>Access Denied</Message>" in refused.value.read()
    refused.value.close()


# --- large objects, durability -------------------------------------------------------------------
@pytest.mark.slow
def test_large_object_streams_back(s3: Any, bucket: str) -> None:
    chunk = os.urandom(MIB)
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="large")["UploadId"]
    parts = []
    for number in range(1, 5):
        body = chunk * 6
        etag = s3.upload_part(Bucket=bucket, Key="large", UploadId=upload_id, PartNumber=number, Body=body)["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
    s3.complete_multipart_upload(Bucket=bucket, Key="large", UploadId=upload_id, MultipartUpload={"Parts": parts})
    got = s3.get_object(Bucket=bucket, Key="large")
    digest = hashlib.sha256()
    total = 0
    for piece in got["Body"].iter_chunks(MIB):
        digest.update(piece)
        total += len(piece)
    assert total == 24 * MIB
    assert digest.digest() == hashlib.sha256(chunk * 24).digest()


@pytest.mark.slow
def test_objects_survive_restart(new_server: Any) -> None:
    server = new_server()
    client = server.client("s3")
    client.create_bucket(Bucket="durable")
    client.put_object(Bucket="durable", Key="k", Body=b"kept", Metadata={"a": "b"})
    client.put_object(Bucket="durable", Key="k2", Body=b"first")
    client.put_object(Bucket="durable", Key="k2", Body=b"second")
    upload_id = client.create_multipart_upload(Bucket="durable", Key="mp")["UploadId"]
    client.upload_part(Bucket="durable", Key="mp", UploadId=upload_id, PartNumber=1, Body=b"part")
    server.stop()
    server.start()
    client = server.client("s3")
    got = client.get_object(Bucket="durable", Key="k")
    assert (got["Body"].read(), got["Metadata"]) == (b"kept", {"a": "b"})
    assert client.get_object(Bucket="durable", Key="k2")["Body"].read() == b"second"
    assert [p["Size"] for p in client.list_parts(Bucket="durable", Key="mp", UploadId=upload_id)["Parts"]] == [4]
    # One body file per object and part: the replaced body is gone, nothing half-written remains.
    bodies = [p for p in (server.data_dir / "objects").rglob("*") if p.is_file()]
    assert len(bodies) == 3


@pytest.mark.slow
def test_acknowledged_objects_survive_kill_9(new_server: Any) -> None:
    server = new_server()
    client = server.client("s3")
    client.create_bucket(Bucket="crashy")
    bodies = {f"k{index}": os.urandom(10_000 + index) for index in range(30)}
    for key, body in bodies.items():
        client.put_object(Bucket="crashy", Key=key, Body=body)
    client.put_object(Bucket="crashy", Key="k0", Body=b"replaced")
    server.stop(signal.SIGKILL)
    server.start()
    client = server.client("s3")
    bodies["k0"] = b"replaced"
    for key, body in bodies.items():
        assert client.get_object(Bucket="crashy", Key=key)["Body"].read() == body
    assert client.list_objects_v2(Bucket="crashy")["KeyCount"] == 30


# --- AWS CLI -------------------------------------------------------------------------------------
@pytest.mark.slow
def test_aws_cli_cp_and_ls(squall: SquallServer, s3: Any, bucket: str, tmp_path: Path) -> None:
    small = tmp_path / "small.txt"
    small.write_bytes(b"small file\n")
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(9 * MIB))  # above the CLI's 8 MiB multipart threshold

    def aws(*args: str) -> str:
        argv = [str(AWS), "--endpoint-url", squall.url, *args]
        proc = subprocess.run(argv, env=squall.cli_env(), capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 0, f"{args}: {proc.stderr}"
        return proc.stdout

    aws("s3", "cp", str(small), f"s3://{bucket}/docs/small.txt")
    aws("s3", "cp", str(big), f"s3://{bucket}/big.bin")
    assert s3.head_object(Bucket=bucket, Key="big.bin")["ETag"].endswith('-2"')
    listing = aws("s3", "ls", f"s3://{bucket}/")
    assert "PRE docs/" in listing
    assert "big.bin" in listing
    assert f"s3://{bucket}" not in aws("s3", "ls") and bucket in aws("s3", "ls")
    recursive = aws("s3", "ls", "--recursive", f"s3://{bucket}/")
    assert "docs/small.txt" in recursive

    down = tmp_path / "down"
    aws("s3", "cp", f"s3://{bucket}/big.bin", str(down / "big.bin"))
    aws("s3", "cp", f"s3://{bucket}/docs/small.txt", str(down / "small.txt"))
    assert (down / "big.bin").read_bytes() == big.read_bytes()
    assert (down / "small.txt").read_bytes() == b"small file\n"

    folder = tmp_path / "folder"
    (folder / "nested").mkdir(parents=True)
    for index in range(5):
        (folder / f"f{index}.txt").write_bytes(os.urandom(100))
    (folder / "nested" / "n.txt").write_bytes(b"nested")
    assert aws("s3", "sync", str(folder), f"s3://{bucket}/synced").count("upload:") == 6
    assert "upload:" not in aws("s3", "sync", str(folder), f"s3://{bucket}/synced")  # nothing changed
    aws("s3", "sync", f"s3://{bucket}/synced", str(tmp_path / "back"))
    assert (tmp_path / "back" / "nested" / "n.txt").read_bytes() == b"nested"
    assert aws("s3", "rm", "--recursive", f"s3://{bucket}/synced").count("delete:") == 6
    assert s3.list_objects_v2(Bucket=bucket, Prefix="synced/")["KeyCount"] == 0


def test_last_modified_is_http_date(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="t", Body=b"")
    header = s3.head_object(Bucket=bucket, Key="t")["ResponseMetadata"]["HTTPHeaders"]["last-modified"]
    parsed = datetime.strptime(header, "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=UTC)
    assert abs((parsed - datetime.now(UTC)).total_seconds()) < 60


def test_unknown_operations_are_not_implemented(s3: Any, bucket: str) -> None:
    code, _, status, _ = error_of(s3.get_bucket_tagging, Bucket=bucket)
    assert (code, status) == ("NotImplemented", 501)
    with pytest.raises(ClientError):
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})


# --- aws-chunked uploads -------------------------------------------------------------------------
class _StreamingSigner(S3SigV4Auth):
    """botocore's S3 signer, signing the payload as the given streaming form."""

    def __init__(self, credentials: Credentials, content_sha256: str) -> None:
        super().__init__(credentials, "s3", "us-east-1")
        self.content_sha256 = content_sha256

    def payload(self, request: AWSRequest) -> str:
        return self.content_sha256


def _send_chunked(squall: SquallServer, url: str, content_sha256: str, body_of: Any, size: int) -> Any:
    """PUT an aws-chunked body (``body_of(seed signature)``) with a header signature for ``content_sha256``."""
    key, secret = squall.credentials()
    request = AWSRequest(
        method="PUT",
        url=url,
        headers={"Content-Encoding": "aws-chunked", "X-Amz-Decoded-Content-Length": str(size)},
    )
    _StreamingSigner(Credentials(key, secret), content_sha256).add_auth(request)
    seed = request.headers["Authorization"].rsplit("Signature=", 1)[1]
    chunk_signer = chunked.ChunkSigner(
        chunked.signing_key(secret, request.context["timestamp"][:8], "us-east-1", "s3"),
        request.context["timestamp"],
        f"{request.context['timestamp'][:8]}/us-east-1/s3/aws4_request",
        seed,
    )
    prepared = urllib.request.Request(url, data=body_of(chunk_signer), method="PUT", headers=dict(request.headers))
    try:
        with urllib.request.urlopen(prepared) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def test_aws_chunked_unsigned_payload_with_trailer(squall: SquallServer, s3: Any, bucket: str) -> None:
    data = os.urandom(100_000)
    crc = checksums.checksum("crc32", data)

    def body(_: chunked.ChunkSigner) -> bytes:
        halves = (data[:65536], data[65536:])
        return b"".join(f"{len(h):x}\r\n".encode() + h + b"\r\n" for h in halves) + (
            f"0\r\nx-amz-checksum-crc32:{crc}\r\n\r\n".encode()
        )

    status, headers, _ = _send_chunked(
        squall, f"{squall.url}/{bucket}/chunked", "STREAMING-UNSIGNED-PAYLOAD-TRAILER", body, len(data)
    )
    assert status == 200
    assert headers["etag"] == f'"{hashlib.md5(data).hexdigest()}"'
    assert headers["x-amz-checksum-crc32"] == crc
    got = s3.get_object(Bucket=bucket, Key="chunked")
    assert got["Body"].read() == data
    assert "ContentEncoding" not in got  # aws-chunked described the upload, not the object

    def bad_trailer(_: chunked.ChunkSigner) -> bytes:
        return f"{len(data):x}\r\n".encode() + data + b"\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n"

    status, _, error = _send_chunked(
        squall, f"{squall.url}/{bucket}/bad", "STREAMING-UNSIGNED-PAYLOAD-TRAILER", bad_trailer, len(data)
    )
    assert status == 400
    assert b"<Code>BadDigest</Code>" in error


def test_aws_chunked_signed_chunks(squall: SquallServer, s3: Any, bucket: str) -> None:
    data = b"signed chunk payload " * 1000

    def body(signer: chunked.ChunkSigner, tamper: bool = False) -> bytes:
        out, previous = b"", signer.seed_signature
        for piece in (data[:8192], data[8192:], b""):
            signature = signer.sign(previous, piece)
            previous = signature
            sent = piece.replace(b"signed", b"SIGNED") if tamper else piece
            out += f"{len(piece):x};chunk-signature={signature}\r\n".encode() + sent + b"\r\n"
        return out

    url = f"{squall.url}/{bucket}/signed"
    status, _, _ = _send_chunked(squall, url, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", body, len(data))
    assert status == 200
    assert s3.get_object(Bucket=bucket, Key="signed")["Body"].read() == data

    status, _, error = _send_chunked(
        squall, url, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", lambda s: body(s, tamper=True), len(data)
    )
    assert status == 403
    assert b"<Code>SignatureDoesNotMatch</Code>" in error
    assert s3.get_object(Bucket=bucket, Key="signed")["Body"].read() == data


def test_default_presigned_urls_signature_v2(s3: Any, bucket: str) -> None:
    # Without signature_version="s3v4", boto3 presigns S3 URLs with Signature Version 2.
    # SigV2 signs the Content-Type: presign with the one the upload will send.
    params = {"Bucket": bucket, "Key": "v2 key", "ContentType": "text/plain"}
    put_url = s3.generate_presigned_url("put_object", Params=params, ExpiresIn=60)
    assert "AWSAccessKeyId=" in put_url
    upload = urllib.request.Request(put_url, data=b"v2 body", method="PUT", headers={"Content-Type": "text/plain"})
    with urllib.request.urlopen(upload) as response:
        assert response.status == 200
    get_url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "v2 key", "ResponseContentType": "text/v2"}, ExpiresIn=60
    )
    with urllib.request.urlopen(get_url) as response:
        assert (response.read(), response.headers["Content-Type"]) == (b"v2 body", "text/v2")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(get_url.replace("v2%20key", "v3%20key"))
    with refused.value:
        assert refused.value.code == 403
        assert b"<Code>SignatureDoesNotMatch</Code>" in refused.value.read()
