"""The operations the platform offers to its front ends (Lambda API, CLI, gateway, sources).

Front ends parse and validate the wire format, then call these; the platform owns the semantics.
"""

from __future__ import annotations

from typing import Any

import msgspec

from squall.models import LayerRef


class InvokeOutcome(msgspec.Struct, kw_only=True):
    """What the caller of Invoke gets back."""

    status_code: int  # 200 RequestResponse, 202 Event, 204 DryRun
    payload: bytes
    request_id: str
    executed_version: str | None = None
    function_error: str | None = None
    log_result: str | None = None  # base64 of the last 4 KB of the log, with LogType=Tail


class FunctionChanges(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Validated fields of UpdateFunctionConfiguration; UNSET fields stay as they are."""

    role: str | msgspec.UnsetType = msgspec.UNSET
    handler: str | msgspec.UnsetType = msgspec.UNSET
    description: str | msgspec.UnsetType = msgspec.UNSET
    timeout: int | msgspec.UnsetType = msgspec.UNSET
    memory_size: int | msgspec.UnsetType = msgspec.UNSET
    environment: dict[str, str] | msgspec.UnsetType = msgspec.UNSET
    runtime: str | msgspec.UnsetType = msgspec.UNSET
    ephemeral_storage: int | msgspec.UnsetType = msgspec.UNSET
    tracing_mode: str | msgspec.UnsetType = msgspec.UNSET
    dead_letter_target: str | msgspec.UnsetType | None = msgspec.UNSET
    kms_key_arn: str | msgspec.UnsetType | None = msgspec.UNSET
    layers: list[str] | msgspec.UnsetType = msgspec.UNSET
    layer_refs: list[LayerRef] | msgspec.UnsetType = msgspec.UNSET
    logging_config: dict[str, str] | msgspec.UnsetType = msgspec.UNSET

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in msgspec.structs.asdict(self).items() if v is not msgspec.UNSET}
