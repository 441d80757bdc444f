"""The DynamoDB wire protocol (JSON 1.0, ``X-Amz-Target: DynamoDB_20120810.<Operation>``) as boto3 sends it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from starlette.types import Receive, Scope, Send

from squall.api.errors import REQUEST_ID_HEADER
from squall.api.validation import Violations
from squall.errors import SquallError
from squall.services.tables import requests
from squall.services.tables.errors import DYNAMODB_NAMESPACE, DynamoError, UnknownDynamoOperation, Validation
from squall.services.tables.evaluator import project, updated_paths
from squall.services.tables.expressions import Path, parse_condition
from squall.services.tables.reads import ReadSpec
from squall.services.tables.schema import check_table_name, raise_violations
from squall.services.tables.service import TableService, WriteOp
from squall.services.tables.streams import TableStreams
from squall.services.tables.types import Item

TARGET_PREFIX = "DynamoDB_20120810."
STREAMS_PREFIX = "DynamoDBStreams_20120810."
CONTENT_TYPE = b"application/x-amz-json-1.0"
MAX_BATCH_GET = 100
MAX_BATCH_WRITE = 25
MAX_TRANSACT = 100

Handler = Callable[[dict[str, Any]], dict[str, Any]]


class DynamoDbApi:
    """The ``dynamodb`` service of the API port: DynamoDB, and DynamoDB Streams (which signs as ``dynamodb``)."""

    def __init__(self, service: TableService) -> None:
        self.service = service
        self.streams = TableStreams(service)
        self.stream_handlers: dict[str, Handler] = {
            "ListStreams": self.streams.list_streams,
            "DescribeStream": self.streams.describe_stream,
            "GetShardIterator": self.streams.get_shard_iterator,
            "GetRecords": self.streams.get_records,
        }
        self.handlers: dict[str, Handler] = {
            "CreateTable": self.create_table,
            "DescribeTable": self.describe_table,
            "ListTables": self.list_tables,
            "UpdateTable": self.update_table,
            "DeleteTable": self.delete_table,
            "PutItem": self.put_item,
            "GetItem": self.get_item,
            "UpdateItem": self.update_item,
            "DeleteItem": self.delete_item,
            "Query": self.query,
            "Scan": self.scan,
            "BatchGetItem": self.batch_get_item,
            "BatchWriteItem": self.batch_write_item,
            "TransactWriteItems": self.transact_write_items,
            "TransactGetItems": self.transact_get_items,
            "UpdateTimeToLive": self.update_time_to_live,
            "DescribeTimeToLive": self.describe_time_to_live,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = str(scope.get("squall.request_id", ""))
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        target = headers.get("x-amz-target", "")
        if target.startswith(STREAMS_PREFIX):
            operation, handlers = target.removeprefix(STREAMS_PREFIX), self.stream_handlers
        else:
            operation, handlers = target.removeprefix(TARGET_PREFIX), self.handlers
        status = 200
        try:
            handler = handlers.get(operation)
            if handler is None:
                raise UnknownDynamoOperation(f"Operation {operation or '(none)'} is not supported by Squall's tables.")
            params = _params(scope.get("squall.body") or b"{}")
            requests.reject_legacy(params)
            result = await asyncio.to_thread(handler, params)
        except DynamoError as exc:
            status, result = exc.status, exc.wire()
        except SquallError as exc:
            status = exc.status
            code = "InternalServerError" if exc.status >= 500 else exc.code
            result = {"__type": f"{DYNAMODB_NAMESPACE}#{code}", "message": exc.message}
        payload = json.dumps(result, separators=(",", ":")).encode()
        response_headers = [
            (b"content-type", CONTENT_TYPE),
            (b"content-length", str(len(payload)).encode()),
            (REQUEST_ID_HEADER, request_id.encode()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": payload})

    # --- tables -----------------------------------------------------------------------------------------
    def create_table(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"TableDescription": self.service.create_table(params)}

    def describe_table(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"Table": self.service.describe_table(check_table_name(params.get("TableName")))}

    def list_tables(self, params: dict[str, Any]) -> dict[str, Any]:
        limit = params.get("Limit")
        v = Violations()
        v.at_least(limit, "limit", 1)
        v.at_most(limit, "limit", 100)
        raise_violations(v)
        names, last = self.service.list_tables(params.get("ExclusiveStartTableName"), int(limit or 100))
        result: dict[str, Any] = {"TableNames": names}
        if last is not None:
            result["LastEvaluatedTableName"] = last
        return result

    def update_table(self, params: dict[str, Any]) -> dict[str, Any]:
        check_table_name(params.get("TableName"))
        return {"TableDescription": self.service.update_table(params)}

    def delete_table(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"TableDescription": self.service.delete_table(check_table_name(params.get("TableName")))}

    def update_time_to_live(self, params: dict[str, Any]) -> dict[str, Any]:
        name = check_table_name(params.get("TableName"))
        spec = dict(params.get("TimeToLiveSpecification") or {})
        attribute = spec.get("AttributeName")
        v = Violations()
        v.length(attribute, "timeToLiveSpecification.attributeName", 255, 1)
        raise_violations(v)
        self.service.update_ttl(name, bool(spec.get("Enabled")), str(attribute))
        return {"TimeToLiveSpecification": {"Enabled": bool(spec.get("Enabled")), "AttributeName": attribute}}

    def describe_time_to_live(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"TimeToLiveDescription": self.service.describe_ttl(check_table_name(params.get("TableName")))}

    # --- single items ---------------------------------------------------------------------------------
    def put_item(self, params: dict[str, Any]) -> dict[str, Any]:
        check_table_name(params.get("TableName"))
        returns = _old_or_none(params)
        op, _ = requests.write_op("put", params)
        result = self.service.write(op)
        return {"Attributes": result.old} if returns == "ALL_OLD" and result.old else {}

    def delete_item(self, params: dict[str, Any]) -> dict[str, Any]:
        check_table_name(params.get("TableName"))
        returns = _old_or_none(params)
        op, _ = requests.write_op("delete", params)
        result = self.service.write(op)
        return {"Attributes": result.old} if returns == "ALL_OLD" and result.old else {}

    def update_item(self, params: dict[str, Any]) -> dict[str, Any]:
        check_table_name(params.get("TableName"))
        returns = requests.enum(
            params, "ReturnValues", "returnValues", ["NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"], "NONE"
        )
        op, _ = requests.write_op("update", params)
        result = self.service.write(op)
        attributes: Item | None = None
        if returns == "ALL_OLD":
            attributes = result.old
        elif returns == "ALL_NEW":
            attributes = result.new
        elif returns in ("UPDATED_OLD", "UPDATED_NEW") and op.update is not None:
            source = result.old if returns == "UPDATED_OLD" else result.new
            attributes = project(source or {}, updated_paths(op.update))
        return {"Attributes": attributes} if attributes else {}

    def get_item(self, params: dict[str, Any]) -> dict[str, Any]:
        table = check_table_name(params.get("TableName"))
        holders = requests.placeholders(params)
        projection = requests.projection_of(params, holders)
        holders.check_all_used()
        item = self.service.get_item(table, requests.item_of(params.get("Key")))
        if item is None:
            return {}
        return {"Item": project(item, projection) if projection is not None else item}

    # --- queries and scans ------------------------------------------------------------------------------
    def _read_spec(self, params: dict[str, Any]) -> tuple[ReadSpec, list[Path] | None, str]:
        name = check_table_name(params.get("TableName"))
        index_name = params.get("IndexName")
        holders = requests.placeholders(params)
        projection = requests.projection_of(params, holders)
        spec = ReadSpec(table=name, index=index_name, limit=requests.limit_of(params))
        key_text = params.get("KeyConditionExpression")
        key_condition = None
        if key_text is not None:
            key_condition = parse_condition(str(key_text), "KeyConditionExpression", holders)
        spec.filter = requests.condition_of(params, holders, "FilterExpression")
        holders.check_all_used()
        table = self.service.table(name)
        hash_attr, range_attr, kind = requests.read_keys(table, index_name)
        if kind == "GSI" and params.get("ConsistentRead"):
            raise Validation("Consistent reads are not supported on global secondary indexes")
        if key_condition is not None:
            spec.hash_value, spec.range_condition = requests.key_condition(key_condition, hash_attr, range_attr)
        if params.get("ExclusiveStartKey") is not None:
            spec.start_key = requests.item_of(params["ExclusiveStartKey"])
        select = requests.enum(
            params,
            "Select",
            "select",
            ["ALL_ATTRIBUTES", "ALL_PROJECTED_ATTRIBUTES", "SPECIFIC_ATTRIBUTES", "COUNT"],
            "SPECIFIC_ATTRIBUTES" if projection is not None else "ALL_ATTRIBUTES",
        )
        if select == "ALL_PROJECTED_ATTRIBUTES" and index_name is None:
            raise Validation("ALL_PROJECTED_ATTRIBUTES can be used only when Querying using an IndexName")
        if projection is not None and select not in ("SPECIFIC_ATTRIBUTES",):
            # unverified: wording from memory of AWS's message
            raise Validation(
                "Cannot specify the ProjectionExpression when choosing to get ALL_ATTRIBUTES"
                if select == "ALL_ATTRIBUTES"
                else f"Cannot specify the ProjectionExpression when choosing to get {select}"
            )
        return spec, projection, select

    def _read_result(self, spec: ReadSpec, projection: list[Path] | None, select: str) -> dict[str, Any]:
        page = self.service.read(spec)
        result: dict[str, Any] = {"Count": len(page.items), "ScannedCount": page.scanned}
        if select != "COUNT":
            result["Items"] = [project(i, projection) if projection is not None else i for i in page.items]
        if page.last_key is not None:
            result["LastEvaluatedKey"] = page.last_key
        return result

    def query(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("KeyConditionExpression") is None:
            raise Validation(
                "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request."
            )
        spec, projection, select = self._read_spec(params)
        spec.forward = params.get("ScanIndexForward", True) is not False
        return self._read_result(spec, projection, select)

    def scan(self, params: dict[str, Any]) -> dict[str, Any]:
        segment, total = params.get("Segment"), params.get("TotalSegments")
        v = Violations()
        v.at_least(segment, "segment", 0)
        v.at_most(segment, "segment", 999999)
        v.at_least(total, "totalSegments", 1)
        v.at_most(total, "totalSegments", 1000000)
        raise_violations(v)
        if total is not None and segment is None:
            raise Validation(
                "The Segment parameter is required but was not present in the request when parameter TotalSegments "
                "is present"
            )
        if segment is not None and total is None:
            raise Validation(
                "The TotalSegments parameter is required but was not present in the request when Segment parameter "
                "is present"
            )
        if segment is not None and total is not None and segment >= total:
            raise Validation(
                "The Segment parameter is zero-based and must be less than parameter TotalSegments: "
                f"Segment: {segment} is not less than TotalSegments: {total}"
            )
        spec, projection, select = self._read_spec(params)
        spec.segment, spec.total_segments = segment, total
        return self._read_result(spec, projection, select)

    # --- batches ----------------------------------------------------------------------------------------
    def batch_get_item(self, params: dict[str, Any]) -> dict[str, Any]:
        request_items: dict[str, Any] = dict(params.get("RequestItems") or {})
        if sum(len(r.get("Keys") or []) for r in request_items.values()) > MAX_BATCH_GET:
            raise Validation("Too many items requested for the BatchGetItem call")
        plans: list[tuple[str, list[Item], list[Path] | None]] = []
        for table, request in request_items.items():
            check_table_name(table, "requestItems.key")
            requests.reject_legacy(request)
            holders = requests.placeholders(request)
            projection = requests.projection_of(request, holders)
            holders.check_all_used()
            keys = [requests.item_of(k) for k in request.get("Keys") or []]
            if len({json.dumps(k, sort_keys=True) for k in keys}) != len(keys):
                raise Validation("Provided list of item keys contains duplicates")
            plans.append((table, keys, projection))
        found = self.service.get_items([(table, key) for table, keys, _ in plans for key in keys])
        responses: dict[str, list[Item]] = {}
        position = 0
        for table, keys, projection in plans:
            items = responses.setdefault(table, [])
            for item in found[position : position + len(keys)]:
                if item is not None:
                    items.append(project(item, projection) if projection is not None else item)
            position += len(keys)
        return {"Responses": responses, "UnprocessedKeys": {}}

    def batch_write_item(self, params: dict[str, Any]) -> dict[str, Any]:
        request_items: dict[str, Any] = dict(params.get("RequestItems") or {})
        for table, writes in request_items.items():
            if not writes or len(writes) > MAX_BATCH_WRITE:
                # unverified: AWS prints the Java objects of the map here; Squall prints their count
                raise Validation(
                    f"1 validation error detected: Value '{{{table}=[{len(writes)} write requests]}}' at "
                    "'requestItems' failed to satisfy constraint: Map value must satisfy constraint: [Member must "
                    f"have length less than or equal to {MAX_BATCH_WRITE}, Member must have length greater than or "
                    "equal to 1]"
                )
        if sum(len(w) for w in request_items.values()) > MAX_BATCH_WRITE:
            raise Validation("Too many items requested for the BatchWriteItem call")
        ops: list[WriteOp] = []
        for table, writes in request_items.items():
            check_table_name(table, "requestItems.key")
            seen: set[str] = set()
            for write in writes:
                if ("PutRequest" in write) == ("DeleteRequest" in write):
                    # unverified: wording from memory of AWS's message
                    raise Validation("A WriteRequest must contain exactly one of PutRequest or DeleteRequest")
                if "PutRequest" in write:
                    op = WriteOp(table=table, kind="put", item=requests.item_of(write["PutRequest"].get("Item")))
                    self.service.prepare(self.service.table(table), op)
                else:
                    op = WriteOp(table=table, kind="delete", key=requests.item_of(write["DeleteRequest"].get("Key")))
                    self.service.prepare(self.service.table(table), op)
                marker = json.dumps(op.key, sort_keys=True)
                if marker in seen:
                    raise Validation("Provided list of item keys contains duplicates")
                seen.add(marker)
                ops.append(op)
        self.service.write_many(ops)
        return {"UnprocessedItems": {}}

    # --- transactions -------------------------------------------------------------------------------------
    def transact_write_items(self, params: dict[str, Any]) -> dict[str, Any]:
        members = list(params.get("TransactItems") or [])
        _check_transact_count(members)
        ops: list[WriteOp] = []
        kinds = {"Put": "put", "Update": "update", "Delete": "delete", "ConditionCheck": "check"}
        for member in members:
            present = [k for k in kinds if k in member]
            if len(present) != 1:
                # unverified: wording from memory of AWS's message
                raise Validation("TransactItems can only contain one of Check, Put, Update or Delete")
            request = member[present[0]]
            check_table_name(request.get("TableName"))
            op, _ = requests.write_op(kinds[present[0]], request)
            ops.append(op)
        self.service.transact(ops)
        return {}

    def transact_get_items(self, params: dict[str, Any]) -> dict[str, Any]:
        members = list(params.get("TransactItems") or [])
        _check_transact_count(members)
        plans: list[tuple[str, Item, list[Path] | None]] = []
        for member in members:
            request = member.get("Get") or {}
            table = check_table_name(request.get("TableName"))
            holders = requests.placeholders(request)
            projection = requests.projection_of(request, holders)
            holders.check_all_used()
            plans.append((table, requests.item_of(request.get("Key")), projection))
        found = self.service.get_items([(table, key) for table, key, _ in plans])
        responses: list[dict[str, Any]] = []
        for (_, _, projection), item in zip(plans, found, strict=True):
            if item is None:
                responses.append({})
            else:
                responses.append({"Item": project(item, projection) if projection is not None else item})
        return {"Responses": responses}


def _check_transact_count(members: list[Any]) -> None:
    if len(members) > MAX_TRANSACT:
        # unverified: AWS prints the Java objects of the list here; Squall prints their count
        raise Validation(
            f"1 validation error detected: Value '[{len(members)} transact items]' at 'transactItems' failed to "
            f"satisfy constraint: Member must have length less than or equal to {MAX_TRANSACT}"
        )


def _old_or_none(params: dict[str, Any]) -> str:
    returns = params.get("ReturnValues") or "NONE"
    if returns not in ("NONE", "ALL_OLD"):
        raise Validation("ReturnValues can only be ALL_OLD or NONE")  # unverified: wording from memory
    return str(returns)


def _params(body: bytes) -> dict[str, Any]:
    try:
        params = json.loads(body)
    except ValueError:
        raise Validation("Start of structure or map found where not expected.") from None  # unverified
    if not isinstance(params, dict):
        raise Validation("Start of structure or map found where not expected.")  # unverified
    return params
