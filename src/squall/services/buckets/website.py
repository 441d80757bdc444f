"""Static website hosting of a bucket: its website configuration (Put/Get/DeleteBucketWebsite) and
the objects a website request names.

The configurations live in ``websites.db`` beside ``buckets.db`` (in the scale-out tier, in the
bucket service's PostgreSQL schema, so that every server serves every website); ``store_for`` gives
the one store of a bucket service, to the S3 API (which writes them) and to the gateway (which serves
the websites). They are read from the store on every request, never cached: a change made through
another server applies at once. A configuration remembers its bucket's creation time, so a bucket deleted and made again
has no website until one is put again. ``IndexDocument``, ``ErrorDocument`` and
``RedirectAllRequestsTo`` are served; ``RoutingRules`` are refused as not implemented.
"""

from __future__ import annotations

import json
import threading
import weakref
from dataclasses import asdict, dataclass
from pathlib import Path

from squall.services.buckets.errors import InvalidArgument, MalformedXML, NotImplementedHere, S3Error
from squall.services.buckets.service import BucketService
from squall.services.buckets.xmlwire import document, parse, text
from squall.stores.sql import SqlDatabase, SqliteDatabase

STORE_FILE = "websites.db"
_SCHEMA = ("CREATE TABLE IF NOT EXISTS websites (bucket TEXT PRIMARY KEY, body TEXT NOT NULL)",)
_PROTOCOLS = ("http", "https")


class NoSuchWebsiteConfiguration(S3Error, LookupError):
    code = "NoSuchWebsiteConfiguration"
    status = 404
    default_message = "The specified bucket does not have a website configuration"


@dataclass
class WebsiteConfig:
    """One bucket's website: index suffix and error key, or a redirect of every request."""

    bucket_created: float
    index_suffix: str | None = None
    error_key: str | None = None
    redirect_host: str | None = None
    redirect_protocol: str | None = None


class WebsiteStore:
    """Website configurations by bucket name, in a ``SqlDatabase`` (a path: a SQLite file of its own)."""

    def __init__(self, database: Path | SqlDatabase) -> None:
        self._owned = isinstance(database, Path)
        self._db = SqliteDatabase(database, _SCHEMA, "Website store") if isinstance(database, Path) else database

    def get(self, bucket: str) -> WebsiteConfig | None:
        with self._db.read() as conn:
            row = conn.execute("SELECT body FROM websites WHERE bucket = ?", (bucket,)).fetchone()
        return WebsiteConfig(**json.loads(row[0])) if row else None

    def put(self, bucket: str, config: WebsiteConfig) -> None:
        with self._db.write() as conn:
            conn.execute(
                "INSERT INTO websites (bucket, body) VALUES (?, ?)"
                " ON CONFLICT (bucket) DO UPDATE SET body = excluded.body",
                (bucket, json.dumps(asdict(config))),
            )

    def delete(self, bucket: str) -> None:
        with self._db.write() as conn:
            conn.execute("DELETE FROM websites WHERE bucket = ?", (bucket,))

    def close(self) -> None:
        if self._owned:
            self._db.close()


_stores: weakref.WeakKeyDictionary[BucketService, WebsiteStore] = weakref.WeakKeyDictionary()
_stores_lock = threading.Lock()


def store_for(service: BucketService) -> WebsiteStore:
    """The website store of a bucket service, opened once: ``websites.db`` beside its SQLite file, or
    the ``websites`` table of its shared (PostgreSQL) schema."""
    with _stores_lock:
        store = _stores.get(service)
        if store is None:
            db = service.db
            store = WebsiteStore(db.path.parent / STORE_FILE if isinstance(db, SqliteDatabase) else db)
            _stores[service] = store
        return store


def parse_config(body: bytes, bucket_created: float) -> WebsiteConfig:
    """A ``WebsiteConfiguration`` document; MalformedXML, InvalidArgument or NotImplemented if unusable."""
    root = parse(body)
    if root.tag != "WebsiteConfiguration":
        raise MalformedXML()
    if root.find("RoutingRules") is not None:
        raise NotImplementedHere("Squall's website hosting does not apply RoutingRules", Header="RoutingRules")
    redirect = root.find("RedirectAllRequestsTo")
    if redirect is not None:
        host = text(redirect, "HostName")
        protocol = text(redirect, "Protocol")
        if not host or len(root) != 1:
            raise MalformedXML()
        if protocol is not None and protocol not in _PROTOCOLS:
            # unverified: wording of S3's answer to a bad redirect protocol
            raise InvalidArgument("Invalid protocol, protocol can be http or https. ", ArgumentName="Protocol")
        return WebsiteConfig(bucket_created, redirect_host=host, redirect_protocol=protocol)
    index = root.find("IndexDocument")
    if index is None:
        raise MalformedXML()
    suffix = text(index, "Suffix")
    if not suffix or "/" in suffix:
        # unverified: wording from memory of S3's answer to an empty or slashed index suffix
        raise InvalidArgument("The IndexDocument Suffix is not well formed", ArgumentName="IndexDocument")
    error = root.find("ErrorDocument")
    error_key = text(error, "Key") if error is not None else None
    if error is not None and not error_key:
        raise InvalidArgument("The ErrorDocument Key is not well formed", ArgumentName="ErrorDocument")  # unverified
    return WebsiteConfig(bucket_created, index_suffix=suffix, error_key=error_key)


def render_config(config: WebsiteConfig) -> bytes:
    """GetBucketWebsite's answer document."""
    if config.redirect_host is not None:
        target = {"HostName": config.redirect_host, "Protocol": config.redirect_protocol}
        return document("WebsiteConfiguration", {"RedirectAllRequestsTo": target})
    content: dict[str, object] = {"IndexDocument": {"Suffix": config.index_suffix}}
    if config.error_key is not None:
        content["ErrorDocument"] = {"Key": config.error_key}
    return document("WebsiteConfiguration", content)


def active_config(service: BucketService, bucket: str) -> WebsiteConfig | None:
    """The bucket's website configuration, None without one; NoSuchBucket if the bucket is gone."""
    created = service.get_bucket(bucket).created
    config = store_for(service).get(bucket)
    return config if config is not None and config.bucket_created == created else None


def answer(service: BucketService, method: str, bucket: str, body: bytes) -> tuple[int, bytes]:
    """(status, XML body) of PutBucketWebsite (PUT), GetBucketWebsite (GET), DeleteBucketWebsite (DELETE)."""
    store = store_for(service)
    if method == "PUT":
        created = service.get_bucket(bucket).created
        store.put(bucket, parse_config(body, created))
        return 200, b""
    config = active_config(service, bucket)
    if method == "DELETE":
        store.delete(bucket)
        return 204, b""
    if config is None:
        raise NoSuchWebsiteConfiguration(BucketName=bucket)
    return 200, render_config(config)
