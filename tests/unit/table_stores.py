"""Table services on each store backend, for the table service's tests (see ``service_stores``)."""

from __future__ import annotations

from squall.services.tables.service import TableService
from squall.services.tables.store import TableStore
from tests.unit.service_stores import ACCOUNT, REGION, Services, backends


def _postgres(dsn: str, schema: str) -> TableStore:
    from squall.services.tables.postgres import PostgresTableStore

    return PostgresTableStore(dsn, schema)


TABLE_BACKENDS = backends("tables.db", _postgres)


class TableServices(Services[TableStore, TableService]):
    """Opens table services on one backend's storage; closes them all at the end of the test."""

    def open(self, expiry_interval: float = 3600) -> TableService:
        """A service whose expiry sweep does not run by itself (tests call ``expire`` and ``trim``)."""
        return self.keep(TableService(self.make_store(), ACCOUNT, REGION, expiry_interval=expiry_interval))
