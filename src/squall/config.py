"""Settings, limits and defaults in one place.

Values come from, in order of precedence: the command line, ``SQUALL_*`` environment variables,
then the defaults below.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

# Lambda's limits (spec section 6.1).
TIMEOUT_MIN_S = 1
TIMEOUT_MAX_S = 900
TIMEOUT_DEFAULT_S = 3
MEMORY_MIN_MB = 128
MEMORY_MAX_MB = 10_240
MEMORY_DEFAULT_MB = 128
EPHEMERAL_MIN_MB = 512
EPHEMERAL_MAX_MB = 10_240
SYNC_PAYLOAD_LIMIT = 6 * 1024 * 1024
ASYNC_PAYLOAD_LIMIT = 1024 * 1024
RESPONSE_PAYLOAD_LIMIT = 6 * 1024 * 1024 + 100
#: A streamed response's limit: Lambda's default maximum is 200 MB since July 2025 (20 MB before).
# unverified: whether Lambda counts 200 MB as 200 * 2**20 bytes.
STREAM_PAYLOAD_LIMIT = 200 * 1024 * 1024
ENV_VARS_LIMIT = 4 * 1024
INIT_TIMEOUT_S = 10.0
CODE_SIZE_ZIPPED = 52_428_800
CODE_SIZE_UNZIPPED = 262_144_000
TOTAL_CODE_SIZE = 80_530_636_800
CLIENT_CONTEXT_LIMIT = 3583
SANDBOX_MAX_FILES = 1024
SANDBOX_MAX_PROCS = 1024
LOG_TAIL_BYTES = 4096
MIN_UNRESERVED_CONCURRENCY = 100

PYTHON_RUNTIMES = ("python3.11", "python3.12", "python3.13")


def _env_name(name: str) -> str:
    return "SQUALL_" + name.upper()


@dataclass(frozen=True)
class Settings:
    """Everything the server needs to know to start."""

    host: str = "127.0.0.1"
    port: int = 8990
    gateway_port: int = 8991
    data_dir: Path = Path(".squall")
    account_id: str = "000000000000"
    region: str = "us-east-1"
    no_auth: bool = False
    access_key_id: str | None = None
    secret_access_key: str | None = None
    concurrency_limit: int = 1000
    keep_alive_s: float = 600.0
    #: "adaptive": a keep-alive window per function learned from its idle times (the hybrid
    #: histogram policy; ``keep_alive_s`` is its fallback and upper bound); "fixed": ``keep_alive_s``.
    keep_alive_policy: str = "adaptive"
    #: The width of the adaptive policy's idle-time bins (240 of them); tests shrink the time scale.
    keep_alive_bin_s: float = 60.0
    #: Below this much available memory (MemAvailable, or room under the server's cgroup limit),
    #: idle sandboxes are stopped, the least likely to be used soon first; 0 turns it off.
    memory_floor_mb: float = 512.0
    #: "quota": each sandbox's CPU capped in proportion to its memory, as on Lambda (1,769 MB = one
    #: CPU; realistic durations); "none": sandboxes use whatever CPU the machine has (fast local work).
    cpu_limit: str = "none"
    shutdown_grace_s: float = 10.0
    #: Run sandboxes as unprivileged users in their own namespaces when Squall runs as root.
    isolation: bool = True
    #: How the server forwards log lines: "info" prints a line per request too.
    log_level: str = "info"
    #: Compresses the async queue's timeline: multiplies every retry and backoff delay and every
    #: MaximumEventAgeInSeconds (tests use 0.01 to run minutes in seconds).
    async_retry_scale: float = 1.0
    #: Where functions run: "embedded" (this machine, SQLite) or "ray" (a Ray cluster, PostgreSQL).
    tier: str = "embedded"
    #: The Ray cluster of the "ray" tier (``host:port`` or ``auto``); None starts a local Ray.
    ray_address: str | None = None
    #: The API endpoint sandboxes are given (``AWS_ENDPOINT_URL``): a URL that functions on every
    #: node can reach, such as a load balancer in front of several servers; None: ``endpoint_url``.
    advertise_url: str | None = None
    #: The PostgreSQL database of the "ray" tier's metadata and leases.
    postgres_dsn: str | None = None
    #: The schema inside it (one per deployment; tests use a scratch one). It also names the
    #: deployment's node agents, which every server of the deployment shares.
    postgres_schema: str = "squall"
    #: A node agent that no server has called for this many seconds stops (its last server is gone).
    ray_agent_orphan_s: float = 60.0
    #: Shorthand for ``tier`` and ``ray_address`` (see :func:`resolve_executor`); None: use those.
    executor: str | None = None
    #: Shorthand for the stores (see :func:`resolve_store`); None: use ``postgres_dsn``.
    store: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """Defaults, then ``SQUALL_*`` variables, then explicit (command-line) overrides."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "extra":
                continue
            raw = os.environ.get(_env_name(f.name))
            if raw is not None:
                values[f.name] = _coerce(f.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "data_dir" in values:
            values["data_dir"] = Path(values["data_dir"])
        resolve_executor(values)
        resolve_store(values)
        return cls(**values)

    @property
    def endpoint_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"

    @property
    def sandbox_endpoint_url(self) -> str:
        """Where functions reach the AWS APIs: ``advertise_url``, else this server's own URL."""
        return (self.advertise_url or self.endpoint_url).rstrip("/")


def resolve_executor(values: dict[str, Any]) -> None:
    """Turn ``executor`` into ``tier`` and ``ray_address``: ``local`` (this machine), ``ray`` (a Ray
    started by the server), ``auto`` (the Ray cluster this machine belongs to) or ``ray://HOST:PORT``
    (join the cluster whose head is HOST:PORT, as ``ray start --address`` does)."""
    executor = values.get("executor")
    if executor is None:
        return
    if executor == "local":
        tier, address = "embedded", None
    elif executor == "ray":
        tier, address = "ray", None
    elif executor == "auto":
        tier, address = "ray", "auto"
    elif executor.startswith("ray://") and len(executor) > len("ray://"):
        tier, address = "ray", executor.removeprefix("ray://")
    else:
        raise ValueError(f"--executor must be local, ray, auto or ray://HOST:PORT, not {executor!r}")
    if values.get("tier", tier) != tier:
        raise ValueError(f"--executor {executor} contradicts --tier {values['tier']}: pass only one of them")
    values["tier"] = tier
    if address is not None:
        if values.get("ray_address", address) != address:
            raise ValueError(f"--executor {executor} contradicts --ray-address {values['ray_address']}")
        values["ray_address"] = address


def resolve_store(values: dict[str, Any]) -> None:
    """Turn ``store`` into ``postgres_dsn``: ``sqlite`` (files in the data dir) or a
    ``postgresql://`` URL, which holds the scale-out tier's shared state and so needs a Ray executor."""
    store = values.get("store")
    if store is None or store == "sqlite":
        if store == "sqlite" and values.get("tier") == "ray":
            raise ValueError("--store sqlite is the embedded tier's: the ray tier keeps its state in PostgreSQL")
        return
    if not store.startswith(("postgresql://", "postgres://")):
        raise ValueError(f"--store must be sqlite or a postgresql:// URL, not {store!r}")
    if values.get("tier", "embedded") != "ray":
        raise ValueError(
            "--store postgresql://... is the scale-out tier's shared state: pass --executor ray, auto or "
            "ray://HOST:PORT as well (the embedded tier keeps its state in SQLite files)"
        )
    if values.get("postgres_dsn", store) != store:
        raise ValueError("--store and --postgres-dsn name different databases: pass only one of them")
    values["postgres_dsn"] = store


def _coerce(kind: Any, raw: str) -> Any:
    text = str(kind)
    if "bool" in text:
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if "int" in text and "str" not in text:
        return int(raw)
    if "float" in text:
        return float(raw)
    return raw
