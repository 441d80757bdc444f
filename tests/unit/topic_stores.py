"""Topic services on each store backend, for the topic service's tests (see ``service_stores``)."""

from __future__ import annotations

from squall.services.topics.service import CLAIM_S, TopicService
from squall.services.topics.store import TopicStore
from tests.unit.service_stores import ACCOUNT, REGION, Services, backends


def _postgres(dsn: str, schema: str) -> TopicStore:
    from squall.services.topics.postgres import PostgresTopicStore

    return PostgresTopicStore(dsn, f"{schema}_topics")


BACKENDS = backends("topics.db", _postgres)


class TopicServices(Services[TopicStore, TopicService]):
    """Opens topic services on one backend's storage; closes them all at the end of the test."""

    def open(self, endpoint_url: str = "http://127.0.0.1:1", claim_s: float = CLAIM_S) -> TopicService:
        return self.keep(TopicService(self.make_store(), ACCOUNT, REGION, endpoint_url, claim_s))
