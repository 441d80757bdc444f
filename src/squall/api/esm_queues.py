"""What is particular to event source mappings on queues: their checks, defaults and shape.

The event-source-mapping operations (``esm_api``) hand a queue ARN's mapping here to be created,
changed and rendered; the queue's poller runs in ``sources/queues.py``.
"""

from __future__ import annotations

import uuid
from typing import Any

from squall.api import lambda_wire as wire
from squall.errors import InvalidParameterValue
from squall.services.queues.errors import QueueDoesNotExist
from squall.services.queues.service import QueueService
from squall.sources.mappings import EventSourceMapping

DEFAULT_BATCH_SIZE = 10
MAX_BATCH_SIZE = 10_000
MAX_FIFO_BATCH_SIZE = 10
MAX_BATCH_WITHOUT_WINDOW = 10
#: Members only stream sources take; Lambda refuses each of them on a queue mapping.
_STREAM_ONLY = (
    "StartingPosition",
    "StartingPositionTimestamp",
    "ParallelizationFactor",
    "BisectBatchOnFunctionError",
    "MaximumRetryAttempts",
    "MaximumRecordAgeInSeconds",
    "TumblingWindowInSeconds",
    "DestinationConfig",
)


def check(data: dict[str, Any], mapping: EventSourceMapping | None, fifo: bool) -> None:
    """Refuse what Lambda refuses on a queue mapping (``mapping``: the one being updated, if any)."""
    for member in _STREAM_ONLY:
        if data.get(member) not in (None, {}, False):
            if member == "StartingPosition":
                raise InvalidParameterValue("StartingPosition is not valid for SQS event sources.")
            # unverified: Lambda refuses stream-only members on SQS mappings; this wording follows the
            # StartingPosition message above
            raise InvalidParameterValue(f"{member} is not valid for SQS event sources.")
    scaling = data.get("ScalingConfig") or {}
    v = wire.Violations()
    v.at_least(scaling.get("MaximumConcurrency"), "scalingConfig.maximumConcurrency", 2)
    v.at_most(scaling.get("MaximumConcurrency"), "scalingConfig.maximumConcurrency", 1000)
    v.raise_if_any()
    size = data.get("BatchSize", mapping.batch_size if mapping else DEFAULT_BATCH_SIZE)
    window = data.get("MaximumBatchingWindowInSeconds", mapping.maximum_batching_window_s if mapping else 0)
    if fifo and size > MAX_FIFO_BATCH_SIZE:
        # unverified: wording of the FIFO batch-size limit (the limit itself is documented)
        raise InvalidParameterValue(
            f"BatchSize must be between 1 and {MAX_FIFO_BATCH_SIZE} for FIFO queues; got {size}."
        )
    if size > MAX_BATCH_WITHOUT_WINDOW and not window:
        raise InvalidParameterValue(
            "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10"
        )


def create(data: dict[str, Any], function_arn: str) -> EventSourceMapping:
    """A new queue mapping from a CreateEventSourceMapping body (already checked by ``check``)."""
    source = str(data["EventSourceArn"])
    mapping = EventSourceMapping(
        uuid=str(uuid.uuid4()),
        function_arn=function_arn,
        event_source_arn=source,
        batch_size=DEFAULT_BATCH_SIZE,
        starting_position="",
        enabled=data.get("Enabled", True) is not False,
        state_transition_reason="USER_INITIATED",
    )
    apply(mapping, data)
    return mapping


def apply(mapping: EventSourceMapping, data: dict[str, Any]) -> None:
    """The queue-only members of a Create or Update body."""
    if "ScalingConfig" in data:
        mapping.maximum_concurrency = (data.get("ScalingConfig") or {}).get("MaximumConcurrency")


def queue_is_fifo(queues: QueueService, arn: str) -> bool:
    """Whether the queue is FIFO; InvalidParameterValue when there is no such queue."""
    name = queues.name_of_arn(arn)
    try:
        if name is None:
            raise QueueDoesNotExist()
        return queues.queue(name).fifo
    except QueueDoesNotExist as exc:
        # Lambda passes on the error of its first ReceiveMessage (the form emulators checked against AWS use).
        raise InvalidParameterValue(
            f"Error occurred while ReceiveMessage. SQS Error Code: {exc.query_code}. SQS Error Message: {exc}"
        ) from None


def render(mapping: EventSourceMapping, region: str, account: str) -> dict[str, Any]:
    """GetEventSourceMapping's shape for a queue mapping: no stream-only members."""
    body: dict[str, Any] = {
        "UUID": mapping.uuid,
        "BatchSize": mapping.batch_size,
        "MaximumBatchingWindowInSeconds": mapping.maximum_batching_window_s,
        "EventSourceArn": mapping.event_source_arn,
        "FunctionArn": mapping.function_arn,
        "LastModified": round(mapping.last_modified, 3),
        "State": mapping.state,
        "StateTransitionReason": mapping.state_transition_reason,
        "FunctionResponseTypes": mapping.function_response_types,
        "EventSourceMappingArn": f"arn:aws:lambda:{region}:{account}:event-source-mapping:{mapping.uuid}",
    }
    if mapping.maximum_concurrency is not None:
        body["ScalingConfig"] = {"MaximumConcurrency": mapping.maximum_concurrency}
    if mapping.filter_patterns:
        body["FilterCriteria"] = {"Filters": [{"Pattern": p} for p in mapping.filter_patterns]}
    return body
