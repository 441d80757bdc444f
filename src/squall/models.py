"""The records Squall passes between its parts.

They are plain ``msgspec`` structs: cheap to build, to copy and to serialise, so they can cross a
process boundary (a sandbox pipe, a Ray task) unchanged.
"""

from __future__ import annotations

from typing import Any

import msgspec

LATEST = "$LATEST"


class LayerRef(msgspec.Struct, kw_only=True, frozen=True):
    """A function's reference to one layer version: its ARN and the address of its code."""

    arn: str
    code_hex: str
    code_size: int


class FunctionConfig(msgspec.Struct, kw_only=True):
    """One function version's configuration, as stored. ``version`` is ``$LATEST`` or a number."""

    name: str
    runtime: str
    role: str
    handler: str
    code_sha256: str  # base64 of the SHA-256 of the zip, as Lambda reports it
    code_size: int
    version: str = LATEST
    description: str = ""
    timeout: int = 3
    memory_size: int = 128
    environment: dict[str, str] = msgspec.field(default_factory=dict)
    architectures: list[str] = msgspec.field(default_factory=lambda: ["x86_64"])
    ephemeral_storage: int = 512
    package_type: str = "Zip"
    tracing_mode: str = "PassThrough"
    dead_letter_target: str | None = None
    kms_key_arn: str | None = None
    layers: list[str] = msgspec.field(default_factory=list)
    #: The layer versions ``layers`` names, resolved when set (a deleted layer version keeps working).
    layer_refs: list[LayerRef] = msgspec.field(default_factory=list)
    logging_config: dict[str, str] = msgspec.field(default_factory=dict)
    last_modified: str = ""
    revision_id: str = ""
    state: str = "Pending"
    state_reason: str | None = None
    state_reason_code: str | None = None
    last_update_status: str = "Successful"
    last_update_status_reason: str | None = None
    last_update_status_reason_code: str | None = None
    tags: dict[str, str] = msgspec.field(default_factory=dict)
    #: On ``$LATEST``: the highest version number ever published (numbers are never reused).
    last_version: int = 0
    #: On a published version: what ``$LATEST``'s code and configuration were when it was published.
    source_signature: str = ""

    @property
    def code_hex(self) -> str:
        """The code's SHA-256 as hex: its address in the code store."""
        import base64

        return base64.b64decode(self.code_sha256).hex()


class Alias(msgspec.Struct, kw_only=True):
    """A named pointer to a version, optionally splitting traffic with a second version."""

    function_name: str
    name: str
    function_version: str
    description: str = ""
    #: RoutingConfig.AdditionalVersionWeights: at most one extra version and its share (0.0-1.0).
    weights: dict[str, float] = msgspec.field(default_factory=dict)
    revision_id: str = ""


class SandboxSpec(msgspec.Struct, kw_only=True, frozen=True):
    """What an executor needs to run one function version: code by address, plus settings."""

    function_name: str
    version: str
    revision_id: str
    runtime: str
    handler: str
    code_hex: str
    memory_mb: int
    timeout_s: int
    ephemeral_mb: int
    environment: dict[str, str]
    architecture: str = "x86_64"
    log_format: str = "Text"
    log_level: str | None = None
    #: The code of the function's layers, in order (merged into ``/opt``, later ones on top).
    layer_hexes: tuple[str, ...] = ()

    @property
    def pool_key(self) -> str:
        """Warm sandboxes are shared only between invocations of the same version and revision."""
        key = f"{self.function_name}:{self.version}:{self.revision_id}"
        return f"{key}:{','.join(self.layer_hexes)}" if self.layer_hexes else key


class InvokeRequest(msgspec.Struct, kw_only=True):
    """One invocation handed to an executor."""

    request_id: str
    payload: bytes
    invoked_arn: str
    client_context: str | None = None  # decoded JSON text
    cognito_identity: str | None = None  # JSON text
    trace_id: str = ""
    trigger: str = "api"
    initialization_type: str = "on-demand"
    #: How the sandbox builds the event from ``payload`` (``squall.runtime.bootstrap.batch_events``);
    #: None when the payload is the event itself.
    shape: dict[str, Any] | None = None


class Usage(msgspec.Struct, kw_only=True):
    """What one invocation consumed, as Lambda bills it."""

    start: float  # epoch seconds
    duration_ms: float
    billed_ms: int
    memory_mb: int
    max_memory_mb: int
    cold: bool
    init_ms: float | None = None

    @property
    def gb_seconds(self) -> float:
        return self.memory_mb / 1024 * self.billed_ms / 1000


class InvokeResult(msgspec.Struct, kw_only=True):
    """The outcome of one invocation, with the logs it wrote and the usage it consumed.

    ``function_error`` is ``Unhandled`` when the payload is an error object; ``error_type``
    names that error (``Sandbox.Timedout``, ``Runtime.ExitError``...) for metering and logs.
    """

    request_id: str
    payload: bytes
    function_error: str | None
    error_type: str | None
    log: bytes
    log_stream: str
    usage: Usage

    @property
    def outcome(self) -> str:
        if self.function_error is None:
            return "success"
        if self.error_type == "Sandbox.Timedout":
            return "timeout"
        return "error"


class UsageRecord(msgspec.Struct, kw_only=True):
    """The durable metering record of one invocation."""

    function_name: str
    version: str
    request_id: str
    start: float
    duration_ms: float
    billed_ms: int
    memory_mb: int
    gb_seconds: float
    max_memory_mb: int
    cold: bool
    init_ms: float | None
    outcome: str
    trigger: str
    architecture: str = "x86_64"


class LogEvent(msgspec.Struct, kw_only=True):
    """One line of a log stream."""

    timestamp: int  # epoch milliseconds
    message: str


class AsyncEvent(msgspec.Struct, kw_only=True):
    """An event accepted with InvocationType=Event, waiting in the durable queue."""

    id: int
    request_id: str
    function_name: str
    qualifier: str
    payload: bytes
    enqueued_at: float
    attempts: int = 0
    not_before: float = 0.0
