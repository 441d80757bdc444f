"""TagResource, UntagResource and GetTags of API Gateway v2, for HTTP APIs and their stages.

A resource is named by its ARN, ``arn:aws:apigateway:<region>::/apis/<apiId>`` or
``.../apis/<apiId>/stages/<stageName>``; its tags live in its own stored document (``tags``), so
GetApi and GetStage show them too.
"""

from __future__ import annotations

import re

from squall.gateway.store import Document, GatewayStore
from squall.services.apigateway.errors import BadRequest, NotFound

_ARN = re.compile(r"^arn:aws[a-z-]*:apigateway:[a-z0-9-]*::/apis/(?P<api>[^/]+)(?:/stages/(?P<stage>[^/]+))?$")
#: API Gateway's limits on one resource's tags.
MAX_TAGS = 50
MAX_KEY_LENGTH = 128
MAX_VALUE_LENGTH = 256


class ApiTags:
    """The tags of the APIs and stages in a store."""

    def __init__(self, store: GatewayStore, account_id: str) -> None:
        self.store = store
        self.account_id = account_id

    def _locate(self, arn: str) -> tuple[str, str, str, Document]:
        """(kind, api id, item id, stored document) of the resource an ARN names."""
        match = _ARN.match(arn)
        if match is None:
            raise BadRequest(f"Invalid resource ARN: {arn}")  # unverified: AWS's wording
        api_id, stage = match["api"], match["stage"]
        kind, owner, item = ("stage", api_id, stage) if stage is not None else ("api", "", api_id)
        if stage is not None and self.store.get("api", "", api_id) is None:
            document = None
        else:
            document = self.store.get(kind, owner, item)
        if document is None:
            # unverified: the wording follows GetApi's "Invalid API identifier specified"
            raise NotFound(f"Invalid resource identifier specified {self.account_id}:{arn}")
        return kind, owner, item, document

    def get(self, arn: str) -> dict[str, str]:
        return dict(self._locate(arn)[3].get("tags") or {})

    def tag(self, arn: str, tags: dict[str, str]) -> None:
        kind, owner, item, document = self._locate(arn)
        merged = {**(document.get("tags") or {}), **tags}
        for key, value in tags.items():
            if not key or len(key) > MAX_KEY_LENGTH or len(str(value)) > MAX_VALUE_LENGTH:
                raise BadRequest(f"Invalid tag: {key}")  # unverified: AWS's wording
        if len(merged) > MAX_TAGS:
            raise BadRequest(f"A resource can have at most {MAX_TAGS} tags")  # unverified: AWS's wording
        document["tags"] = merged
        self.store.put(kind, owner, item, document)

    def untag(self, arn: str, keys: list[str]) -> None:
        kind, owner, item, document = self._locate(arn)
        document["tags"] = {key: value for key, value in (document.get("tags") or {}).items() if key not in keys}
        self.store.put(kind, owner, item, document)
