"""The scale-out tier's stores on PostgreSQL: ``PostgresMetadataStore`` and ``PostgresLeaseStore``.

Several Squall servers share one database. Every write is one transaction; the async queue is
claimed with ``FOR UPDATE SKIP LOCKED``, so two servers never take the same event. Connections
come from a ``psycopg_pool`` pool; each store lives in its own PostgreSQL schema (``squall`` by
default), created with its tables on first use. ``psycopg`` errors never leave this module: they
become ``StoreUnavailable``.

Writes to functions, aliases and reserved concurrency send a notification (``pg_notify`` on the
schema's channel, delivered at commit) naming the function, so that every server can drop what it
cached of it (``watch``).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from squall.errors import ResourceConflict, StoreUnavailable
from squall.models import LATEST, Alias, AsyncEvent, FunctionConfig, LogEvent, UsageRecord
from squall.stores import codec
from squall.stores.base import LeaseStore, LogBatch, LogGroupSummary, LogStreamSummary, MetadataStore

#: The schema, one entry per version (as for SQLite: never edit a released entry, append one).
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE functions (name TEXT NOT NULL, version TEXT NOT NULL, config TEXT NOT NULL,"
        " PRIMARY KEY (name, version))",
        "CREATE TABLE async_events (id BIGSERIAL PRIMARY KEY, request_id TEXT NOT NULL, function_name TEXT NOT NULL,"
        " qualifier TEXT NOT NULL, payload BYTEA NOT NULL, enqueued_at DOUBLE PRECISION NOT NULL,"
        " attempts INTEGER NOT NULL, not_before DOUBLE PRECISION NOT NULL, visible_at DOUBLE PRECISION NOT NULL)",
        "CREATE INDEX async_events_due ON async_events (visible_at, id)",
        "CREATE TABLE usage (id BIGSERIAL PRIMARY KEY, function_name TEXT NOT NULL, version TEXT NOT NULL,"
        " request_id TEXT NOT NULL, start DOUBLE PRECISION NOT NULL, duration_ms DOUBLE PRECISION NOT NULL,"
        " billed_ms BIGINT NOT NULL, memory_mb INTEGER NOT NULL, gb_seconds DOUBLE PRECISION NOT NULL,"
        " max_memory_mb INTEGER NOT NULL, cold BOOLEAN NOT NULL, init_ms DOUBLE PRECISION, outcome TEXT NOT NULL,"
        " trigger TEXT NOT NULL, architecture TEXT NOT NULL)",
        "CREATE INDEX usage_start ON usage (start)",
        "CREATE INDEX usage_function ON usage (function_name, start)",
        "CREATE TABLE log_events (id BIGSERIAL PRIMARY KEY, log_group TEXT NOT NULL, stream TEXT NOT NULL,"
        " timestamp BIGINT NOT NULL, message TEXT NOT NULL)",
        "CREATE INDEX log_events_group ON log_events (log_group, id)",
        "CREATE INDEX log_events_stream ON log_events (log_group, stream, id)",
        "CREATE TABLE aliases (function_name TEXT NOT NULL, name TEXT NOT NULL, config TEXT NOT NULL,"
        " PRIMARY KEY (function_name, name))",
        "CREATE TABLE reserved_concurrency (function_name TEXT PRIMARY KEY, reserved INTEGER NOT NULL)",
        "CREATE TABLE leases (name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires DOUBLE PRECISION NOT NULL)",
    ),
    (
        # The code store every server shares (``PostgresPackages``). Zips do not compress: EXTERNAL
        # keeps them out of line without PostgreSQL trying to.
        "CREATE TABLE code_packages (sha256 TEXT PRIMARY KEY, size BIGINT NOT NULL, body BYTEA NOT NULL)",
        "ALTER TABLE code_packages ALTER COLUMN body SET STORAGE EXTERNAL",
    ),
    (
        # What each server runs now per concurrency pool (``invoke/cluster_concurrency.py``).
        "CREATE TABLE concurrency_in_flight (owner TEXT NOT NULL, pool TEXT NOT NULL, n INTEGER NOT NULL,"
        " updated DOUBLE PRECISION NOT NULL, PRIMARY KEY (owner, pool))",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_RECONNECT_S = 1.0

log = logging.getLogger(__name__)


class PostgresDatabase:
    """A connection pool on one schema of a PostgreSQL database, migrated on open; shared by the stores.

    ``migrations`` are the schema's versions (the metadata and lease stores' by default); a store
    with tables of its own (the stream service) keeps them in a schema of its own.
    """

    def __init__(
        self,
        dsn: str,
        schema: str = "squall",
        max_size: int = 8,
        migrations: Sequence[Sequence[str]] = MIGRATIONS,
    ) -> None:
        import psycopg
        from psycopg_pool import ConnectionPool

        if not _SCHEMA_NAME.match(schema):
            raise ValueError(f"{schema!r} is not a plain lower-case PostgreSQL schema name")
        self.schema = schema
        self._migrations = migrations
        self.dsn = dsn
        self._closed = False
        self._error = psycopg.Error
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            self.pool = ConnectionPool(
                dsn,
                min_size=1,
                max_size=max_size,
                kwargs={"autocommit": True, "options": f"-c search_path={schema}"},
                open=True,
                timeout=10,
            )
            self._migrate()
        except psycopg.Error as exc:
            raise StoreUnavailable(f"Cannot open the PostgreSQL store ({schema}): {exc}") from exc

    def _migrate(self) -> None:
        with self.pool.connection() as conn, conn.transaction():
            # One migrator at a time, across servers: a transaction-scoped advisory lock.
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(current_schema()))")
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = conn.execute("SELECT version FROM schema_version").fetchone()
            current = int(row[0]) if row else 0
            latest = len(self._migrations)
            if current > latest:
                raise StoreUnavailable(
                    f"PostgreSQL schema {self.schema} has version {current}, newer than this Squall "
                    f"understands ({latest}); upgrade Squall"
                )
            for version in range(current, latest):
                for statement in self._migrations[version]:
                    conn.execute(statement)
            conn.execute("DELETE FROM schema_version")
            conn.execute("INSERT INTO schema_version VALUES (%s)", (latest,))

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """A connection inside one transaction: committed on success, rolled back on any exception."""
        if self._closed:
            raise StoreUnavailable(f"The PostgreSQL store ({self.schema}) is closed")
        try:
            with self.pool.connection() as conn, conn.transaction():
                yield conn
        except self._error as exc:
            if isinstance(exc, _unique_violation()):
                raise
            raise StoreUnavailable(f"PostgreSQL store failure: {exc}") from exc

    @contextmanager
    def qmark(self, what: str, transaction: bool = True, binary: bool = False) -> Iterator[QmarkConnection]:
        """A connection taking SQL written once for SQLite and PostgreSQL (``?`` placeholders, no ``%``),
        in one transaction or (``transaction=False``) autocommitting each statement; driver errors
        become ``StoreUnavailable("<what> failure: ...")``. ``binary`` asks for results in binary
        format (bytes columns arrive as stored, not spelled in hex)."""
        if self._closed:
            raise StoreUnavailable(f"The PostgreSQL store ({self.schema}) is closed")
        try:
            with self.pool.connection() as conn, conn.transaction() if transaction else contextlib.nullcontext():
                yield QmarkConnection(conn, binary)
        except self._error as exc:
            raise StoreUnavailable(f"{what} failure: {exc}") from exc

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.pool.close()


def drop_deployment(dsn: str, schema: str) -> list[str]:
    """Drop the schema ``schema`` and every schema named after it (``<schema>_streams`` ...), with
    everything in them: all a deployment keeps in PostgreSQL. Returns the schemas dropped."""
    import psycopg

    if not _SCHEMA_NAME.match(schema):
        raise ValueError(f"{schema!r} is not a plain lower-case PostgreSQL schema name")
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname = %s OR starts_with(nspname, %s)", (schema, f"{schema}_")
        ).fetchall()
        for (name,) in rows:
            conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
    return [name for (name,) in rows]


class QmarkConnection:
    """A psycopg connection that takes ``?`` placeholders (``PostgresDatabase.qmark``)."""

    def __init__(self, conn: Any, binary: bool = False) -> None:
        self.conn = conn
        self.binary = binary

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Any:
        return self.conn.execute(_pyformat(sql), parameters, binary=self.binary)

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Any:
        cursor = self.conn.cursor()
        cursor.executemany(_pyformat(sql), parameters)
        return cursor


@functools.lru_cache(maxsize=512)
def _pyformat(sql: str) -> str:
    """``?`` placeholders as psycopg's ``%s`` (a literal ``%`` doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


def _unique_violation() -> type[Exception]:
    from psycopg.errors import UniqueViolation

    return UniqueViolation


class PostgresMetadataStore(MetadataStore):
    """``MetadataStore`` on PostgreSQL; safe to share between threads and between servers."""

    def __init__(self, dsn: str, schema: str = "squall", database: PostgresDatabase | None = None) -> None:
        self.db = database or PostgresDatabase(dsn, schema)
        self._owns_db = database is None
        self._lock = threading.Lock()
        self._listener: threading.Thread | None = None
        self._stop_listening = threading.Event()

    def _changed(self, conn: Any, function_name: str) -> None:
        """Tell every watching server, once this transaction commits, that a function changed."""
        conn.execute("SELECT pg_notify(%s, %s)", (self.db.schema, function_name))

    def watch(self, changed: Callable[[str | None], None]) -> None:
        if self._listener is not None:
            raise RuntimeError("this store is already watched")
        self._listener = threading.Thread(
            target=self._listen, args=(changed,), name=f"squall-watch-{self.db.schema}", daemon=True
        )
        self._listener.start()

    def _listen(self, changed: Callable[[str | None], None]) -> None:
        """LISTEN on a connection of its own; after each (re)connect, report that anything may
        have changed, since notifications sent while nobody listened are lost."""
        import psycopg

        while not self._stop_listening.is_set():
            try:
                with psycopg.connect(self.db.dsn, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f'LISTEN "{self.db.schema}"')
                    changed(None)
                    while not self._stop_listening.is_set():
                        for notify in conn.notifies(timeout=0.5):
                            changed(notify.payload)
            except psycopg.Error as exc:
                log.warning("listening for changes in %s failed (retrying): %s", self.db.schema, exc)
                self._stop_listening.wait(_RECONNECT_S)

    # --- functions -------------------------------------------------------------------------------
    def create_function(self, config: FunctionConfig) -> None:
        try:
            with self.db.transaction() as conn:
                # Serialises creates of one name across servers (the row may not exist yet to lock).
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (config.name,))
                if conn.execute("SELECT 1 FROM functions WHERE name = %s LIMIT 1", (config.name,)).fetchone():
                    raise ResourceConflict(f"Function already exist: {config.name}")
                conn.execute(
                    "INSERT INTO functions (name, version, config) VALUES (%s, %s, %s)",
                    (config.name, config.version, codec.encode(config).decode()),
                )
                self._changed(conn, config.name)
        except _unique_violation():
            raise ResourceConflict(f"Function already exist: {config.name}") from None

    def put_function(self, config: FunctionConfig) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO functions (name, version, config) VALUES (%s, %s, %s)"
                " ON CONFLICT (name, version) DO UPDATE SET config = EXCLUDED.config",
                (config.name, config.version, codec.encode(config).decode()),
            )
            self._changed(conn, config.name)

    def get_function(self, name: str, version: str) -> FunctionConfig | None:
        with self.db.transaction() as conn:
            row = conn.execute(
                "SELECT config FROM functions WHERE name = %s AND version = %s", (name, version)
            ).fetchone()
        return None if row is None else codec.config(row[0])

    def list_functions(self, marker: str | None, limit: int) -> tuple[list[FunctionConfig], str | None]:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        with self.db.transaction() as conn:
            rows = conn.execute(
                "SELECT name, config FROM functions WHERE version = %s AND name >= %s"
                ' ORDER BY name COLLATE "C" LIMIT %s',
                (LATEST, marker or "", limit + 1),
            ).fetchall()
        next_marker = rows[limit][0] if len(rows) > limit else None
        return [codec.config(config) for _, config in rows[:limit]], next_marker

    def delete_function(self, name: str, version: str | None = None) -> bool:
        with self.db.transaction() as conn:
            if version is None:
                cur = conn.execute("DELETE FROM functions WHERE name = %s", (name,))
                conn.execute("DELETE FROM aliases WHERE function_name = %s", (name,))
                conn.execute("DELETE FROM reserved_concurrency WHERE function_name = %s", (name,))
            else:
                cur = conn.execute("DELETE FROM functions WHERE name = %s AND version = %s", (name, version))
            self._changed(conn, name)
            return bool(cur.rowcount > 0)

    def function_count(self) -> int:
        with self.db.transaction() as conn:
            row = conn.execute("SELECT COUNT(*) FROM functions WHERE version = %s", (LATEST,)).fetchone()
        return int(row[0])

    def list_versions(self, name: str) -> list[FunctionConfig]:
        with self.db.transaction() as conn:
            rows = conn.execute("SELECT version, config FROM functions WHERE name = %s", (name,)).fetchall()
        rows.sort(key=lambda row: (row[0] != LATEST, int(row[0]) if row[0] != LATEST else 0))
        return [codec.config(config) for _, config in rows]

    # --- aliases and reserved concurrency --------------------------------------------------------
    def insert_alias(self, alias: Alias) -> bool:
        with self.db.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO aliases (function_name, name, config) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                (alias.function_name, alias.name, codec.encode(alias).decode()),
            )
            self._changed(conn, alias.function_name)
            return bool(cur.rowcount > 0)

    def put_alias(self, alias: Alias) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO aliases (function_name, name, config) VALUES (%s, %s, %s)"
                " ON CONFLICT (function_name, name) DO UPDATE SET config = EXCLUDED.config",
                (alias.function_name, alias.name, codec.encode(alias).decode()),
            )
            self._changed(conn, alias.function_name)

    def get_alias(self, function_name: str, name: str) -> Alias | None:
        with self.db.transaction() as conn:
            row = conn.execute(
                "SELECT config FROM aliases WHERE function_name = %s AND name = %s", (function_name, name)
            ).fetchone()
        return None if row is None else codec.alias(row[0])

    def list_aliases(self, function_name: str) -> list[Alias]:
        with self.db.transaction() as conn:
            rows = conn.execute(
                'SELECT config FROM aliases WHERE function_name = %s ORDER BY name COLLATE "C"', (function_name,)
            ).fetchall()
        return [codec.alias(row[0]) for row in rows]

    def delete_alias(self, function_name: str, name: str) -> bool:
        with self.db.transaction() as conn:
            cur = conn.execute("DELETE FROM aliases WHERE function_name = %s AND name = %s", (function_name, name))
            self._changed(conn, function_name)
            return bool(cur.rowcount > 0)

    def set_reserved_concurrency(self, function_name: str, reserved: int | None) -> None:
        with self.db.transaction() as conn:
            if reserved is None:
                conn.execute("DELETE FROM reserved_concurrency WHERE function_name = %s", (function_name,))
            else:
                conn.execute(
                    "INSERT INTO reserved_concurrency (function_name, reserved) VALUES (%s, %s)"
                    " ON CONFLICT (function_name) DO UPDATE SET reserved = EXCLUDED.reserved",
                    (function_name, reserved),
                )
            self._changed(conn, function_name)

    def reserved_concurrency(self) -> dict[str, int]:
        with self.db.transaction() as conn:
            rows = conn.execute("SELECT function_name, reserved FROM reserved_concurrency").fetchall()
        return {str(name): int(reserved) for name, reserved in rows}

    # --- async invocation queue ------------------------------------------------------------------
    def enqueue(self, event: AsyncEvent) -> int:
        with self.db.transaction() as conn:
            row = conn.execute(
                "INSERT INTO async_events (request_id, function_name, qualifier, payload, enqueued_at, attempts,"
                " not_before, visible_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (
                    event.request_id,
                    event.function_name,
                    event.qualifier,
                    event.payload,
                    event.enqueued_at,
                    event.attempts,
                    event.not_before,
                    event.not_before,
                ),
            ).fetchone()
        return int(row[0])

    def claim(self, now: float, limit: int, lease_s: float) -> list[AsyncEvent]:
        if limit < 1:
            return []
        with self.db.transaction() as conn:
            rows = conn.execute(
                f"SELECT {codec.EVENT_COLUMNS} FROM async_events WHERE visible_at <= %s ORDER BY visible_at, id"
                " LIMIT %s FOR UPDATE SKIP LOCKED",
                (now, limit),
            ).fetchall()
            if rows:
                conn.execute(
                    "UPDATE async_events SET visible_at = %s WHERE id = ANY(%s)", (now + lease_s, [r[0] for r in rows])
                )
        return [codec.event(row) for row in rows]

    def complete(self, event_id: int) -> None:
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM async_events WHERE id = %s", (event_id,))

    def reschedule(self, event_id: int, not_before: float, attempts: int) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE async_events SET not_before = %s, visible_at = %s, attempts = %s WHERE id = %s",
                (not_before, not_before, attempts, event_id),
            )

    def release_claims(self) -> int:
        # Only for a store no other live server uses: with several servers, leases expire instead.
        with self.db.transaction() as conn:
            cur = conn.execute("UPDATE async_events SET visible_at = not_before WHERE visible_at > not_before")
            return int(cur.rowcount)

    def queued(self) -> int:
        with self.db.transaction() as conn:
            row = conn.execute("SELECT COUNT(*) FROM async_events").fetchone()
        return int(row[0])

    # --- metering --------------------------------------------------------------------------------
    def record(self, usage: Sequence[UsageRecord], logs: Sequence[LogBatch]) -> None:
        rows = [codec.usage_row(r) for r in usage]
        lines = [(group, stream, e.timestamp, e.message) for group, stream, events in logs for e in events]
        if not rows and not lines:
            return
        with self.db.transaction() as conn, conn.cursor() as cur:
            if rows:
                cur.executemany(f"INSERT INTO usage ({codec.USAGE_COLUMNS}) VALUES ({', '.join(['%s'] * 14)})", rows)
            if lines:
                cur.executemany(
                    "INSERT INTO log_events (log_group, stream, timestamp, message) VALUES (%s, %s, %s, %s)", lines
                )

    def usage(
        self, since: float = 0.0, until: float | None = None, function_name: str | None = None
    ) -> list[UsageRecord]:
        sql, params = codec.usage_query(since, until, function_name)
        with self.db.transaction() as conn:
            rows = conn.execute(_pyformat(sql), params).fetchall()
        return [codec.usage(row) for row in rows]

    # --- logs ------------------------------------------------------------------------------------
    def log_events(
        self, group: str, after_id: int = 0, limit: int = 1000, stream: str | None = None
    ) -> list[tuple[int, str, LogEvent]]:
        return self.log_event_range(group, [stream] if stream is not None else None, after_id=after_id, limit=limit)

    def log_groups(self, prefix: str = "") -> list[LogGroupSummary]:
        with self.db.transaction() as conn:
            rows = conn.execute(
                "SELECT log_group, MIN(timestamp), SUM(octet_length(message)) FROM log_events"
                ' WHERE left(log_group, %s) = %s GROUP BY log_group ORDER BY log_group COLLATE "C"',
                (len(prefix), prefix),
            ).fetchall()
        return [LogGroupSummary(row[0], int(row[1]), int(row[2])) for row in rows]

    def log_streams(self, group: str) -> list[LogStreamSummary]:
        with self.db.transaction() as conn:
            rows = conn.execute(
                "SELECT stream, MIN(timestamp), MAX(timestamp), SUM(octet_length(message)) FROM log_events"
                ' WHERE log_group = %s GROUP BY stream ORDER BY stream COLLATE "C"',
                (group,),
            ).fetchall()
        return [LogStreamSummary(row[0], int(row[1]), int(row[2]), int(row[3])) for row in rows]

    def log_event_range(
        self,
        group: str,
        streams: Sequence[str] | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
        after_id: int = 0,
        before_id: int | None = None,
        limit: int = 1000,
        newest_first: bool = False,
    ) -> list[tuple[int, str, LogEvent]]:
        query = codec.log_range_query(group, streams, start_ms, end_ms, after_id, before_id, limit, newest_first)
        if query is None:
            return []
        sql, params = query
        with self.db.transaction() as conn:
            rows = conn.execute(_pyformat(sql), params).fetchall()
        return [codec.log_line(row) for row in rows]

    def delete_log_group(self, group: str) -> bool:
        with self.db.transaction() as conn:
            cur = conn.execute("DELETE FROM log_events WHERE log_group = %s", (group,))
            return bool(cur.rowcount > 0)

    def close(self) -> None:
        self._stop_listening.set()
        if self._listener is not None:
            with contextlib.suppress(RuntimeError):
                self._listener.join(5)
        with self._lock:
            if self._owns_db:
                self.db.close()


class PostgresLeaseStore(LeaseStore):
    """``LeaseStore`` on PostgreSQL: the leases every server of a cluster shares."""

    def __init__(self, dsn: str, schema: str = "squall", database: PostgresDatabase | None = None) -> None:
        self.db = database or PostgresDatabase(dsn, schema)
        self._owns_db = database is None

    def acquire(self, owner: str, lease: str, ttl_s: float) -> bool:
        now = time.time()
        with self.db.transaction() as conn:
            row = conn.execute(
                "INSERT INTO leases (name, owner, expires) VALUES (%s, %s, %s) ON CONFLICT (name) DO UPDATE"
                " SET owner = EXCLUDED.owner, expires = EXCLUDED.expires"
                " WHERE leases.owner = EXCLUDED.owner OR leases.expires <= %s RETURNING owner",
                (lease, owner, now + ttl_s, now),
            ).fetchone()
        return row is not None

    def extend(self, owner: str, ttl_s: float) -> set[str]:
        with self.db.transaction() as conn:
            conn.execute("UPDATE leases SET expires = %s WHERE owner = %s", (time.time() + ttl_s, owner))
            rows = conn.execute("SELECT name FROM leases WHERE owner = %s", (owner,)).fetchall()
        return {str(r[0]) for r in rows}

    def release(self, owner: str, lease: str | None = None) -> None:
        with self.db.transaction() as conn:
            if lease is None:
                conn.execute("DELETE FROM leases WHERE owner = %s", (owner,))
            else:
                conn.execute("DELETE FROM leases WHERE owner = %s AND name = %s", (owner, lease))

    def reap_abandoned(self, alive: Callable[[str], bool]) -> int:
        with self.db.transaction() as conn:
            owners = [str(r[0]) for r in conn.execute("SELECT DISTINCT owner FROM leases").fetchall()]
            dead = [o for o in owners if not alive(o)]
            if not dead:
                return 0
            cur = conn.execute("DELETE FROM leases WHERE owner = ANY(%s)", (dead,))
            return int(cur.rowcount)

    def holders(self) -> dict[str, str]:
        with self.db.transaction() as conn:
            rows = conn.execute("SELECT name, owner FROM leases WHERE expires > %s", (time.time(),)).fetchall()
        return {str(r[0]): str(r[1]) for r in rows}

    def close(self) -> None:
        if self._owns_db:
            self.db.close()
