"""Stream services on each store backend, for the stream service's tests (see ``service_stores``)."""

from __future__ import annotations

from squall.services.streams.service import StreamService
from squall.services.streams.store import StreamStore
from tests.unit.service_stores import ACCOUNT, REGION, Services, backends


def _postgres(dsn: str, schema: str) -> StreamStore:
    from squall.services.streams.postgres import PostgresStreamStore

    return PostgresStreamStore(dsn, schema)


BACKENDS = backends("streams.db", _postgres)


class StreamServices(Services[StreamStore, StreamService]):
    """Opens stream services on one backend's storage; closes them all at the end of the test."""

    def open(self, iterator_key: bytes | None = None) -> StreamService:
        return self.keep(StreamService(self.make_store(), ACCOUNT, REGION, iterator_key=iterator_key))
