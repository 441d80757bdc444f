"""Table definitions: key schemas, secondary indexes, billing and stream settings.

Turns a CreateTable request into a :class:`TableDef` (with CreateTable's validation messages) and a
TableDef back into the ``TableDescription`` DynamoDB returns.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Any

import msgspec

from squall.api.validation import Violations
from squall.errors import SquallError
from squall.services.tables.errors import TableNotFound, Validation
from squall.services.tables.types import Item, Value, encode_key, type_of

TABLE_NAME_PATTERN = "[a-zA-Z0-9_.-]+"
_TABLE_NAME_RE = re.compile(TABLE_NAME_PATTERN)
_INVALID = "One or more parameter values were invalid: "
STREAM_VIEW_TYPES = ["NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES", "KEYS_ONLY"]


class KeyAttr(msgspec.Struct, frozen=True):
    name: str
    type: str


class IndexDef(msgspec.Struct, frozen=True):
    """A secondary index: ``kind`` is ``GSI`` or ``LSI``."""

    name: str
    kind: str
    hash: KeyAttr
    range: KeyAttr | None
    projection: dict[str, Any]
    read_cu: int = 0
    write_cu: int = 0

    def key_names(self) -> tuple[str, ...]:
        return (self.hash.name,) if self.range is None else (self.hash.name, self.range.name)


class TableDef(msgspec.Struct, frozen=True):
    """A table as stored: its keys, indexes, billing and stream settings."""

    name: str
    table_id: str
    created: float
    hash: KeyAttr
    range: KeyAttr | None
    attribute_definitions: list[dict[str, str]]
    billing_mode: str
    read_cu: int
    write_cu: int
    indexes: list[IndexDef]
    stream_enabled: bool = False
    stream_view_type: str | None = None
    stream_label: str | None = None
    #: The attribute holding items' expiry time (epoch seconds) while TTL is enabled.
    ttl_attribute: str | None = None

    def key_names(self) -> tuple[str, ...]:
        return (self.hash.name,) if self.range is None else (self.hash.name, self.range.name)

    def index(self, name: str) -> IndexDef | None:
        return next((i for i in self.indexes if i.name == name), None)


def check_table_name(name: Any, member: str = "tableName") -> str:
    if not isinstance(name, str):
        raise Validation(
            f"1 validation error detected: Value null at '{member}' failed to satisfy constraint: "
            "Member must not be null"
        )
    v = Violations()
    v.length(name, member, 255, 3)
    v.pattern(name, member, _TABLE_NAME_RE, TABLE_NAME_PATTERN)
    raise_violations(v)
    return name


def raise_violations(v: Violations) -> None:
    try:
        v.raise_if_any()
    except SquallError as exc:
        raise Validation(exc.message) from None


def _key_schema(elements: list[dict[str, Any]], types: dict[str, str], where: str) -> tuple[KeyAttr, KeyAttr | None]:
    if not elements or len(elements) > 2:
        v = Violations()
        v.add(elements, f"{where}keySchema", "Member must have length less than or equal to 2")
        raise_violations(v)
    if elements[0].get("KeyType") != "HASH":
        raise Validation("Invalid KeySchema: The first KeySchemaElement is not a HASH key type")
    if len(elements) == 2:
        if elements[1].get("KeyType") != "RANGE":
            raise Validation("Invalid KeySchema: The second KeySchemaElement is not a RANGE key type")
        if elements[0]["AttributeName"] == elements[1]["AttributeName"]:
            raise Validation("Both the Hash Key and the Range Key element in the KeySchema have the same name")
    names = [e["AttributeName"] for e in elements]
    missing = [n for n in names if n not in types]
    if missing:
        raise Validation(
            _INVALID
            + f"Some index key attributes are not defined in AttributeDefinitions. Keys: [{', '.join(names)}], "
            f"AttributeDefinitions: [{', '.join(types)}]"
        )
    hash_key = KeyAttr(names[0], types[names[0]])
    range_key = KeyAttr(names[1], types[names[1]]) if len(names) == 2 else None
    return hash_key, range_key


def _throughput(params: dict[str, Any], billing: str, index: str | None = None) -> tuple[int, int]:
    throughput = params.get("ProvisionedThroughput")
    if billing == "PAY_PER_REQUEST":
        if throughput:
            raise Validation(
                _INVALID + "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is "
                "PAY_PER_REQUEST"
            )
        return 0, 0
    if not throughput:
        if index is not None:
            # unverified: wording from memory of AWS's message
            raise Validation(_INVALID + f"ProvisionedThroughput must be specified for index: {index}")
        raise Validation("No provisioned throughput specified for the table")
    return int(throughput.get("ReadCapacityUnits", 0)), int(throughput.get("WriteCapacityUnits", 0))


def projection(raw: Any) -> dict[str, Any]:
    raw = dict(raw or {})
    kind = raw.get("ProjectionType", "ALL")
    v = Violations()
    v.enum(kind, "projection.projectionType", ["ALL", "KEYS_ONLY", "INCLUDE"])
    raise_violations(v)
    result: dict[str, Any] = {"ProjectionType": kind}
    if kind == "INCLUDE":
        result["NonKeyAttributes"] = list(raw.get("NonKeyAttributes") or [])
    elif raw.get("NonKeyAttributes"):
        # unverified: wording from memory of AWS's message
        raise Validation(_INVALID + "ProjectionType is " + kind + ", but NonKeyAttributes is specified")
    return result


def attribute_types(params: dict[str, Any]) -> dict[str, str]:
    types: dict[str, str] = {}
    v = Violations()
    for i, definition in enumerate(params.get("AttributeDefinitions") or [], 1):
        v.enum(definition.get("AttributeType"), f"attributeDefinitions.{i}.member.attributeType", ["B", "N", "S"])
        types[definition["AttributeName"]] = definition.get("AttributeType", "S")
    raise_violations(v)
    return types


def index_def(raw: dict[str, Any], kind: str, types: dict[str, str], billing: str, table_hash: KeyAttr) -> IndexDef:
    name = raw.get("IndexName", "")
    v = Violations()
    v.length(name, "indexName", 255, 3)
    v.pattern(name, "indexName", _TABLE_NAME_RE, TABLE_NAME_PATTERN)
    raise_violations(v)
    hash_key, range_key = _key_schema(list(raw.get("KeySchema") or []), types, "")
    read, write = (0, 0) if kind == "LSI" else _throughput(raw, billing, name)
    if kind == "LSI":
        if range_key is None:
            raise Validation(_INVALID + f"Index KeySchema does not have a range key for index: {name}")
        if hash_key != table_hash:
            raise Validation(
                _INVALID + f"Index KeySchema does not have the same leading hash key as table KeySchema for index: "
                f"{name}. index hash key: {hash_key.name}, table hash key: {table_hash.name}"
            )
    return IndexDef(name, kind, hash_key, range_key, projection(raw.get("Projection")), read, write)


def table_from_request(params: dict[str, Any], table_id: str, now: float) -> TableDef:
    """The TableDef a CreateTable request describes; ValidationException with AWS's text if it is invalid."""
    name = check_table_name(params.get("TableName"))
    types = attribute_types(params)
    hash_key, range_key = _key_schema(list(params.get("KeySchema") or []), types, "")
    billing = params.get("BillingMode") or "PROVISIONED"
    v = Violations()
    v.enum(billing, "billingMode", ["PROVISIONED", "PAY_PER_REQUEST"])
    raise_violations(v)
    read, write = _throughput(params, billing)
    indexes: list[IndexDef] = []
    for raw in params.get("GlobalSecondaryIndexes") or []:
        indexes.append(index_def(raw, "GSI", types, billing, hash_key))
    local = params.get("LocalSecondaryIndexes") or []
    if local and range_key is None:
        raise Validation(
            _INVALID + "Table KeySchema does not have a range key, which is required when specifying a "
            "LocalSecondaryIndex"
        )
    for raw in local:
        indexes.append(index_def(raw, "LSI", types, billing, hash_key))
    seen: set[str] = set()
    for index in indexes:
        if index.name in seen:
            raise Validation(_INVALID + f"Duplicate index name: {index.name}")
        seen.add(index.name)
    used = {hash_key.name} | ({range_key.name} if range_key else set())
    for index in indexes:
        used.update(index.key_names())
    if used != set(types):
        raise Validation(
            _INVALID + "Number of attributes in KeySchema does not exactly match number of attributes defined in "
            "AttributeDefinitions"
        )
    enabled, view = stream_settings(params.get("StreamSpecification"))
    return TableDef(
        name=name,
        table_id=table_id,
        created=now,
        hash=hash_key,
        range=range_key,
        attribute_definitions=[{"AttributeName": n, "AttributeType": t} for n, t in types.items()],
        billing_mode=billing,
        read_cu=read,
        write_cu=write,
        indexes=indexes,
        stream_enabled=enabled,
        stream_view_type=view,
        stream_label=stream_label(now) if enabled else None,
    )


def updated_table(table: TableDef, params: dict[str, Any]) -> tuple[TableDef, list[IndexDef]]:
    """``table`` as UpdateTable ``params`` change it, and the indexes it creates (to be backfilled)."""
    name = table.name
    billing = params.get("BillingMode") or table.billing_mode
    read_cu, write_cu = table.read_cu, table.write_cu
    if params.get("ProvisionedThroughput"):
        throughput = params["ProvisionedThroughput"]
        read_cu, write_cu = int(throughput["ReadCapacityUnits"]), int(throughput["WriteCapacityUnits"])
    if billing == "PAY_PER_REQUEST":
        read_cu, write_cu = 0, 0
    types = {d["AttributeName"]: d["AttributeType"] for d in table.attribute_definitions}
    types.update(attribute_types(params))
    indexes = list(table.indexes)
    created: list[IndexDef] = []
    for change in params.get("GlobalSecondaryIndexUpdates") or []:
        if "Create" in change:
            index = index_def(change["Create"], "GSI", types, billing, table.hash)
            if table.index(index.name) is not None:
                # unverified: wording from memory of AWS's message
                raise Validation(f"One or more parameter values were invalid: Index already exists: {index.name}")
            indexes.append(index)
            created.append(index)
        elif "Delete" in change:
            index_name = change["Delete"].get("IndexName")
            if table.index(index_name) is None:
                # unverified: wording from memory of AWS's message
                raise TableNotFound(f"Requested resource not found: Index: {index_name} not found")
            indexes = [i for i in indexes if i.name != index_name]
        elif "Update" in change:
            index_name = change["Update"].get("IndexName")
            old = table.index(index_name)
            if old is None:
                raise TableNotFound(f"Requested resource not found: Index: {index_name} not found")
            throughput = change["Update"].get("ProvisionedThroughput") or {}
            updated = msgspec.structs.replace(
                old,
                read_cu=int(throughput.get("ReadCapacityUnits", old.read_cu)),
                write_cu=int(throughput.get("WriteCapacityUnits", old.write_cu)),
            )
            indexes = [updated if i.name == index_name else i for i in indexes]
    enabled, view, label = table.stream_enabled, table.stream_view_type, table.stream_label
    if "StreamSpecification" in params:
        want, want_view = stream_settings(params["StreamSpecification"])
        # Both texts as reported from live AWS probes in public notes, not from AWS's documentation.
        if want and table.stream_enabled:
            raise Validation(f"Table already has an enabled stream: TableName: {name}")
        if not want and not table.stream_enabled:
            raise Validation(f"Table has no stream to disable: TableName: {name}")
        enabled, view = want, want_view
        if want:
            label = stream_label(time.time())
            while label == table.stream_label:  # a new stream needs a new label (a millisecond timestamp)
                time.sleep(0.001)
                label = stream_label(time.time())
    used = set(table.key_names())
    for index in indexes:
        used.update(index.key_names())
    definitions = [{"AttributeName": n, "AttributeType": t} for n, t in types.items() if n in used]
    new = msgspec.structs.replace(
        table,
        billing_mode=billing,
        read_cu=read_cu,
        write_cu=write_cu,
        indexes=indexes,
        attribute_definitions=definitions,
        stream_enabled=enabled,
        stream_view_type=view,
        stream_label=label,
    )
    return new, created


def stream_settings(spec: Any) -> tuple[bool, str | None]:
    if not spec:
        return False, None
    enabled = bool(spec.get("StreamEnabled"))
    view = spec.get("StreamViewType")
    if enabled:
        v = Violations()
        v.enum(view, "streamSpecification.streamViewType", STREAM_VIEW_TYPES)
        raise_violations(v)
        if view is None:
            # unverified: wording from memory of AWS's message
            raise Validation(_INVALID + "You must specify a StreamViewType when enabling a stream")
        return True, view
    return False, None


def stream_label(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


def table_arn(region: str, account: str, name: str) -> str:
    return f"arn:aws:dynamodb:{region}:{account}:table/{name}"


def describe(
    table: TableDef, region: str, account: str, counts: dict[str, tuple[int, int]], status: str = "ACTIVE"
) -> dict[str, Any]:
    """The TableDescription of ``table``; ``counts`` maps "" (the table) and index names to (items, bytes)."""
    arn = table_arn(region, account, table.name)
    items, size = counts.get("", (0, 0))
    description: dict[str, Any] = {
        "AttributeDefinitions": table.attribute_definitions,
        "TableName": table.name,
        "KeySchema": key_schema(table.hash, table.range),
        "TableStatus": status,
        "CreationDateTime": table.created,
        "ProvisionedThroughput": {
            "NumberOfDecreasesToday": 0,
            "ReadCapacityUnits": table.read_cu,
            "WriteCapacityUnits": table.write_cu,
        },
        "TableSizeBytes": size,
        "ItemCount": items,
        "TableArn": arn,
        "TableId": table.table_id,
        "DeletionProtectionEnabled": False,
    }
    if table.billing_mode == "PAY_PER_REQUEST":
        description["BillingModeSummary"] = {
            "BillingMode": "PAY_PER_REQUEST",
            "LastUpdateToPayPerRequestDateTime": table.created,
        }
    gsis, lsis = [], []
    for index in table.indexes:
        index_items, index_size = counts.get(index.name, (0, 0))
        entry: dict[str, Any] = {
            "IndexName": index.name,
            "KeySchema": key_schema(index.hash, index.range),
            "Projection": index.projection,
            "IndexSizeBytes": index_size,
            "ItemCount": index_items,
            "IndexArn": f"{arn}/index/{index.name}",
        }
        if index.kind == "GSI":
            entry["IndexStatus"] = "ACTIVE"
            entry["ProvisionedThroughput"] = {
                "NumberOfDecreasesToday": 0,
                "ReadCapacityUnits": index.read_cu,
                "WriteCapacityUnits": index.write_cu,
            }
            gsis.append(entry)
        else:
            lsis.append(entry)
    if gsis:
        description["GlobalSecondaryIndexes"] = gsis
    if lsis:
        description["LocalSecondaryIndexes"] = lsis
    if table.stream_enabled:
        description["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": table.stream_view_type}
    if table.stream_label is not None:
        description["LatestStreamLabel"] = table.stream_label
        description["LatestStreamArn"] = f"{arn}/stream/{table.stream_label}"
    return description


def key_schema(hash_key: KeyAttr, range_key: KeyAttr | None) -> list[dict[str, str]]:
    schema = [{"AttributeName": hash_key.name, "KeyType": "HASH"}]
    if range_key is not None:
        schema.append({"AttributeName": range_key.name, "KeyType": "RANGE"})
    return schema


# --- keys of items -------------------------------------------------------------------------------------------
def item_key(table: TableDef, item: Item) -> Item:
    return {name: item[name] for name in table.key_names() if name in item}


def check_item_keys(table: TableDef, item: Item) -> None:
    """An item to write must carry the table's key attributes, typed as defined, non-empty, within size."""
    for attr, limit, label in ((table.hash, 2048, "hash"), (table.range, 1024, "range")):
        if attr is None:
            continue
        value = item.get(attr.name)
        if value is None:
            raise Validation(_INVALID + f"Missing the key {attr.name} in the item")
        _check_key_value(attr, value, limit, label)


def _check_key_value(attr: KeyAttr, value: Value, limit: int, label: str) -> None:
    kind = type_of(value)
    if kind != attr.type:
        raise Validation(_INVALID + f"Type mismatch for key {attr.name} expected: {attr.type} actual: {kind}")
    if kind in ("S", "B") and not value[kind]:
        raise Validation(
            "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an "
            f"empty {'string' if kind == 'S' else 'binary'} value. Key: {attr.name}"
        )
    if len(encode_key(value)) > limit:
        if label == "hash":
            # AWS's own wording, missing space included.
            raise Validation(_INVALID + "Size of hashkey has exceeded the maximum size limit of2048 bytes")
        raise Validation(_INVALID + "Aggregated size of all range keys has exceeded the size limit of 1024 bytes")


def check_key(table: TableDef, key: Item) -> None:
    """A ``Key`` parameter must name exactly the table's key attributes, with their types."""
    names = table.key_names()
    if set(key) != set(names):
        raise Validation("The provided key element does not match the schema")
    for attr in (table.hash, table.range):
        if attr is not None and type_of(key[attr.name]) != attr.type:
            raise Validation("The provided key element does not match the schema")
    check_item_keys(table, key)


def index_key_problem(index: IndexDef, item: Item) -> str | None:
    """Why ``item`` cannot be written because of this index's key types (None if it can)."""
    for attr in (index.hash, index.range):
        if attr is None or attr.name not in item:
            continue
        kind = type_of(item[attr.name])
        if kind != attr.type:
            return (
                _INVALID + f"Type mismatch for Index Key {attr.name} Expected: {attr.type} Actual: {kind} "
                f"IndexName: {index.name}"
            )
        if kind in ("S", "B") and not item[attr.name][kind]:
            noun = "string" if kind == "S" else "binary"
            return (
                "One or more parameter values are not valid. A value specified for a secondary index key is not "
                f"supported. The AttributeValue for a key attribute cannot contain an empty {noun} value. "
                f"IndexName: {index.name}, IndexKey: {attr.name}"
            )
    return None
