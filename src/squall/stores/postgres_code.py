"""``PostgresPackages``: the zip bytes of every deployment package in PostgreSQL, so that a package
stored through one server of the scale-out tier is readable by every other (``CodeStore(shared=)``).

Packages are at most 50 MB zipped; each is one ``bytea`` row keyed by its SHA-256 (hex), sent and
fetched in binary, never rewritten.
"""

from __future__ import annotations

from squall.stores.code import SharedPackages
from squall.stores.postgres import PostgresDatabase


class PostgresPackages(SharedPackages):
    """Packages in the ``code_packages`` table of a Squall schema."""

    def __init__(self, database: PostgresDatabase, owns_database: bool = False) -> None:
        self.db = database
        self._owns_db = owns_database

    @classmethod
    def open(cls, dsn: str, schema: str) -> PostgresPackages:
        """Its own small pool: package transfers stay off the metadata store's connections."""
        return cls(PostgresDatabase(dsn, schema, max_size=4), owns_database=True)

    def put(self, hex: str, zip_bytes: bytes) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO code_packages (sha256, size, body) VALUES (%s, %s, %b) ON CONFLICT DO NOTHING",
                (hex, len(zip_bytes), zip_bytes),
            )

    def get(self, hex: str) -> bytes | None:
        with self.db.transaction() as conn, conn.cursor(binary=True) as cur:
            row = cur.execute("SELECT body FROM code_packages WHERE sha256 = %s", (hex,)).fetchone()
        return None if row is None else bytes(row[0])

    def size(self, hex: str) -> int | None:
        with self.db.transaction() as conn:
            row = conn.execute("SELECT size FROM code_packages WHERE sha256 = %s", (hex,)).fetchone()
        return None if row is None else int(row[0])

    def total_size(self) -> int:
        with self.db.transaction() as conn:
            row = conn.execute("SELECT COALESCE(SUM(size), 0) FROM code_packages").fetchone()
        return int(row[0])

    def close(self) -> None:
        if self._owns_db:
            self.db.close()
