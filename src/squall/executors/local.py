"""``LocalExecutor``: sandboxes forked from warm zygotes on this machine, pooled per version."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import logging
import os
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from squall import config
from squall.errors import SandboxError
from squall.executors.base import PROVISIONED_INIT, Executor, ProvisionedState
from squall.executors.keepalive import KeepAlivePolicy
from squall.executors.memory import available_mb
from squall.invoke.streaming import ResponseStream
from squall.layers import merged_tree
from squall.logs import format as logfmt
from squall.metering.pricing import billed_ms
from squall.models import InvokeRequest, InvokeResult, SandboxSpec, Usage
from squall.runtime import runtimes
from squall.runtime.cgroups import MB_PER_VCPU, CgroupManager
from squall.runtime.sandbox import Outcome, Sandbox
from squall.runtime.zygote import Zygote
from squall.stores.code import CodeStore

log = logging.getLogger(__name__)

UID_BASE = 200_000
#: Each server takes a block of uids of its own, so sandboxes of two servers never share one.
UID_BLOCK = 10_000
UID_BLOCKS = 1_000
UID_LOCK_DIR = Path("/run/squall-uids") if Path("/run").is_dir() else Path("/tmp/squall-uids")
WATCHDOG_INTERVAL_S = 0.05
#: The watchdog pauses for this many times as long as its last pass took (see ``_watch_memory``).
WATCHDOG_SHARE = 10
#: How long a watcher waits for an idle provisioned sandbox to exit (in effect: for ever).
_FOREVER_S = 10.0**9
ON_DEMAND_INIT = "on-demand"


class _ProvisionedPool:
    """One version's provisioned sandboxes: idle ones, busy ones, and what keeps them at ``target``."""

    def __init__(self, spec: SandboxSpec, target: int) -> None:
        self.spec = spec
        self.target = target
        self.active = True
        self.idle: list[Sandbox] = []
        self.busy: set[Sandbox] = set()
        self.failure: str | None = None
        self.filler: asyncio.Task[None] | None = None

    @property
    def size(self) -> int:
        return len(self.idle) + len(self.busy)

    def state(self) -> ProvisionedState:
        return ProvisionedState(target=self.target, allocated=self.size, idle=len(self.idle), failure=self.failure)


class LocalExecutor(Executor):
    """Runs sandboxes as confined local processes. ``api_env`` gives a function's sandboxes the
    variables that reach Squall (endpoint, the function's own keys)."""

    def __init__(
        self,
        code_store: CodeStore,
        work_dir: Path,
        region: str,
        api_env: Callable[[str], dict[str, str]],
        isolation: bool = True,
        preload_runtimes: tuple[str, ...] = ("python3.11",),
        keep_alive: KeepAlivePolicy | None = None,
        memory_floor_mb: float = 0.0,
        memory_reader: Callable[[], float | None] = available_mb,
        cpu_quota: bool = False,
    ) -> None:
        self.code_store = code_store
        self.work_dir = work_dir
        self.region = region
        self.api_env = api_env
        self.isolation = isolation and os.geteuid() == 0
        self.preload_runtimes = preload_runtimes
        #: Cap each sandbox's CPU at its share (Lambda's hard limit) instead of only weighing it.
        self.cpu_quota = cpu_quota
        self.cgroups: CgroupManager | None = None
        self._zygotes: dict[str, Zygote] = {}
        self._zygote_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._idle: defaultdict[str, list[Sandbox]] = defaultdict(list)
        self._busy: set[Sandbox] = set()
        self._free_uids: list[int] = []
        self._uid_lock: int | None = None
        self._cleanups: set[asyncio.Task[None]] = set()
        self._unpacked: dict[str, Path] = {}
        self._watchdog: asyncio.Task[None] | None = None
        self._provisioned: dict[str, _ProvisionedPool] = {}
        #: The provisioned pool each provisioned sandbox belongs to, and its exit watcher.
        self._owners: dict[Sandbox, _ProvisionedPool] = {}
        self._exit_watchers: dict[Sandbox, asyncio.Task[None]] = {}
        #: What a provisioned or pre-warmed sandbox printed while it initialised, logged with its
        #: first invocation.
        self._init_logs: dict[Sandbox, bytes] = {}
        #: How long idle sandboxes stay warm (``reap_idle`` sets its fixed window); the last spec
        #: each pool key ran with, to pre-warm it; pre-warmed sandboxes not used yet, with the end
        #: of their keep-alive window; the pre-warms under way.
        self.keep_alive = keep_alive or KeepAlivePolicy(600.0, adaptive=False)
        self._specs: dict[str, SandboxSpec] = {}
        self._prewarm_until: dict[Sandbox, float] = {}
        self._prewarms: set[asyncio.Task[None]] = set()
        #: Cold starts an invocation waits for, and whether there are none: pre-warms wait for them.
        self._demand_starts = 0
        self._no_demand_starts = asyncio.Event()
        self._no_demand_starts.set()
        self._closing = False
        #: Below this much available memory (MB), idle sandboxes are evicted; 0 turns it off.
        self.memory_floor_mb = memory_floor_mb
        self.memory_reader = memory_reader
        self._freeing_mb = 0.0

    # --- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.work_dir, 0o700)
        # The mount point of every spare's future root (each mounts it in its own namespace).
        (self.work_dir / ".root").mkdir(mode=0o700, exist_ok=True)
        if self.isolation:
            self.cgroups = CgroupManager.detect(f"squall-{os.getpid()}")
            first = self._claim_uid_block()
            self._free_uids = list(range(first + UID_BLOCK - 1, first, -1))
        else:
            log.warning(
                "sandbox isolation is off (Squall is not running as root): functions run as "
                "this user, without their own namespaces or memory cgroup"
            )
        if self.cgroups is None:
            log.warning("no writable memory cgroup: memory limits fall back to an RSS watchdog")
        if self.cpu_quota and (self.cgroups is None or not self.cgroups.cpu):
            log.warning("no writable CPU cgroup: sandboxes' CPU is not limited in proportion to their memory")
        elif self.cpu_quota and self.cgroups is not None:
            log.info("CPU cgroup: v%d, %d MB of memory per CPU", self.cgroups.version, MB_PER_VCPU)
        self._watchdog = asyncio.ensure_future(self._watch_memory())
        for runtime in self.preload_runtimes:
            with contextlib.suppress(Exception):
                await self._zygote(runtime)

    async def shutdown(self, grace_s: float) -> None:
        self._closing = True
        if self._watchdog is not None:
            self._watchdog.cancel()
        deadline = time.monotonic() + grace_s
        while self._busy and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        fillers = [pool.filler for pool in self._provisioned.values() if pool.filler is not None]
        for provisioned in list(self._provisioned):
            await self.unprovision(provisioned)
        if fillers or self._prewarms:
            await asyncio.wait([*fillers, *self._prewarms], timeout=max(grace_s, 0.1))
        everyone = [*self._busy, *(sb for pool in self._idle.values() for sb in pool)]
        self._idle.clear()
        await asyncio.gather(*(sb.cleanup() for sb in everyone), return_exceptions=True)
        await asyncio.gather(*self._cleanups, return_exceptions=True)
        for zygote in self._zygotes.values():
            await zygote.stop()
        self._zygotes.clear()
        if self.cgroups is not None:
            await asyncio.to_thread(self.cgroups.close)
        if self._uid_lock is not None:
            os.close(self._uid_lock)
            self._uid_lock = None

    def _claim_uid_block(self) -> int:
        """Lock a block of sandbox uids for this server's lifetime (the lock dies with the process)."""
        UID_LOCK_DIR.mkdir(mode=0o700, exist_ok=True)
        for block in range(UID_BLOCKS):
            fd = os.open(UID_LOCK_DIR / f"block-{block}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self._uid_lock = fd
            return UID_BASE + block * UID_BLOCK
        raise SandboxError(f"every sandbox uid block is taken (locks in {UID_LOCK_DIR})")

    @property
    def busy(self) -> int:
        return len(self._busy)

    @property
    def warm(self) -> int:
        provisioned_idle = sum(len(pool.idle) for pool in self._provisioned.values())
        return len(self._busy) + sum(len(pool) for pool in self._idle.values()) + provisioned_idle

    def idle_by_key(self) -> dict[str, int]:
        """Idle sandboxes per pool key, on-demand and provisioned alike (keys with none are left out)."""
        counts = {key: len(pool) for key, pool in self._idle.items() if pool}
        for key, provisioned in self._provisioned.items():
            if provisioned.idle:
                counts[key] = counts.get(key, 0) + len(provisioned.idle)
        return counts

    async def retire(self, function_name: str) -> None:
        for key in [k for k in self._idle if k.split(":", 1)[0] == function_name]:
            for sandbox in self._idle.pop(key):
                self._cleanup_later(sandbox)
        for key in [k for k in self._specs if k.split(":", 1)[0] == function_name]:
            del self._specs[key]
            self.keep_alive.forget(key)

    # --- keep-alive, pre-warming and memory pressure -----------------------------------------------
    async def reap_idle(self, keep_alive_s: float) -> int:
        """Stop idle sandboxes past their key's keep-alive window (``keep_alive_s`` when the policy
        has learned nothing better, and at most that), pre-warm keys whose pre-warming window has
        come, and evict idle sandboxes while memory is short."""
        policy = self.keep_alive
        policy.set_fixed(keep_alive_s)
        now = time.monotonic()
        reaped = 0
        for key, pool in list(self._idle.items()):
            keep_s = policy.keep_used_s(key)
            for sandbox in [sb for sb in pool if now > self._warm_until(sb, keep_s)]:
                pool.remove(sandbox)
                self._cleanup_later(sandbox)
                reaped += 1
            if not pool:
                self._idle.pop(key, None)
        for key, spec in self._specs.items():
            if key in self._provisioned:
                continue  # its provisioned sandboxes are its warm ones
            due = policy.prewarm(key, now)
            if due is not None:
                self._start_prewarm(spec, due.count, due.until)
        return reaped + self.relieve_memory(now)

    def _warm_until(self, sandbox: Sandbox, keep_s: float) -> float:
        until = self._prewarm_until.get(sandbox)
        return sandbox.last_used + keep_s if until is None else until

    def _start_prewarm(self, spec: SandboxSpec, count: int, until: float) -> None:
        task = asyncio.ensure_future(self._prewarm(spec, count, until))
        self._prewarms.add(task)
        task.add_done_callback(self._prewarms.discard)

    async def _prewarm(self, spec: SandboxSpec, count: int, until: float) -> None:
        """Start sandboxes off the request path until the key has ``count`` idle ones (as the
        provisioned filler does, with the on-demand initialisation type)."""
        key = spec.pool_key
        while not self._closing and len(self._idle.get(key, ())) < count and time.monotonic() < until:
            if self._memory_shortfall() > 0:
                return  # it would be the first evicted
            if not await self._after_demand_starts(until):
                return
            try:
                sandbox, failure = await self._cold_start(spec, ON_DEMAND_INIT)
            except Exception as exc:
                log.warning("pre-warming %s failed: %s", key, exc)
                return
            init_log = sandbox.read_log()
            if failure is not None or self._closing or key not in self._specs:  # (not retired)
                # A failing init is left to the next invocation, which reports it as Lambda does.
                self._cleanup_later(sandbox)
                return
            self._init_logs[sandbox] = init_log
            self._prewarm_until[sandbox] = until
            self._idle[key].append(sandbox)

    async def _after_demand_starts(self, until: float) -> bool:
        """Wait until no invocation waits for a cold start; False if ``until`` (monotonic) comes
        first. Cold starts queue at the runtime's zygote, so a speculative one started during a
        burst would delay the burst's own, which invocations are waiting for."""
        if self._no_demand_starts.is_set():
            return True
        try:
            await asyncio.wait_for(self._no_demand_starts.wait(), max(0.0, until - time.monotonic()))
        except TimeoutError:
            return False
        return not self._closing

    def relieve_memory(self, now: float) -> int:
        """While available memory is under the floor, stop idle on-demand sandboxes, the ones whose
        key's next use is predicted furthest away first; returns how many stopped."""
        short = self._memory_shortfall()
        # What evictions under way will free is not in the figure yet: count it as freed.
        needed = short - self._freeing_mb
        if needed <= 0:
            return 0
        candidates = [(self.keep_alive.predicted_next_use(key, now), key) for key, pool in self._idle.items() if pool]
        evicted = 0
        for _, key in sorted(candidates, reverse=True):
            pool = self._idle[key]
            while pool and needed > 0:
                sandbox = pool.pop(0)  # the one idle longest
                freed = float(sandbox.rss_mb() or sandbox.spec.memory_mb)
                needed -= freed
                self._freeing_mb += freed
                self._cleanup_later(sandbox).add_done_callback(functools.partial(self._freed, freed))
                evicted += 1
            if not pool:
                self._idle.pop(key, None)
            if needed <= 0:
                break
        if evicted:
            log.warning("memory is short (%.0f MB under the floor): stopped %d idle sandboxes", short, evicted)
        return evicted

    def _freed(self, mb: float, _task: asyncio.Task[None]) -> None:
        self._freeing_mb = max(0.0, self._freeing_mb - mb)

    def _memory_shortfall(self) -> float:
        """How many MB available memory is under the floor (0 or less: none, or no floor)."""
        if self.memory_floor_mb <= 0:
            return 0.0
        available = self.memory_reader()
        return 0.0 if available is None else self.memory_floor_mb - available

    # --- the hot path ------------------------------------------------------------------------------
    async def invoke(
        self, spec: SandboxSpec, request: InvokeRequest, stream: ResponseStream | None = None
    ) -> InvokeResult:
        key = spec.pool_key
        self._specs[key] = spec
        self.keep_alive.arrival(key, time.monotonic())
        try:
            return await self._invoke(spec, request, stream)
        finally:
            self.keep_alive.end(key, time.monotonic())

    async def _invoke(
        self, spec: SandboxSpec, request: InvokeRequest, stream: ResponseStream | None = None
    ) -> InvokeResult:
        start_wall = time.time()
        init_log = b""
        sandbox: Sandbox | None = None
        provisioned = self._provisioned.get(spec.pool_key)
        if provisioned is not None and provisioned.idle:
            # A provisioned environment first; when all are busy, spill over to on-demand ones.
            sandbox = provisioned.idle.pop()
            provisioned.busy.add(sandbox)
            init_log = self._init_logs.pop(sandbox, b"")
        else:
            pool = self._idle.get(spec.pool_key)
            sandbox = pool.pop() if pool else None
            while sandbox is not None and sandbox.zygote.has_exited(sandbox.pid):
                # Its runtime ended between invocations (a bootstrap may exit after a response).
                self._cleanup_later(sandbox)
                sandbox = pool.pop() if pool else None
            if sandbox is not None and self._init_logs:
                init_log = self._init_logs.pop(sandbox, b"")  # a pre-warmed one's
        cold = sandbox is None
        if sandbox is None:
            self.relieve_memory(time.monotonic())  # room for this one before it has to start
            self._demand_starts += 1
            self._no_demand_starts.clear()
            try:
                sandbox, failure = await self._cold_start(spec, request.initialization_type, request.request_id)
            finally:
                self._demand_starts -= 1
                if not self._demand_starts:
                    self._no_demand_starts.set()
            init_log = sandbox.read_log()
            if failure is not None:
                return self._finish(sandbox, spec, request, failure, init_log, b"", 0.0, start_wall, cold)
        self._busy.add(sandbox)
        header = {
            "id": request.request_id,
            "arn": request.invoked_arn,
            "trace": request.trace_id,
            "deadline_ms": int((time.time() + spec.timeout_s) * 1000),
            "cc": request.client_context,
            "ci": request.cognito_identity,
        }
        if request.shape is not None:
            header["shape"] = request.shape
        started = time.monotonic()
        try:
            outcome = await sandbox.invoke(header, request.payload, spec.timeout_s, stream)
        finally:
            self._busy.discard(sandbox)
        if outcome.unstarted and not cold and (provisioned is None or sandbox not in provisioned.busy):
            # Its runtime exited after answering the last event (as Node's does after an uncaught
            # exception): like Lambda, run this one on a fresh sandbox.
            self._cleanup_later(sandbox)
            return await self._invoke(spec, request, stream)
        duration_ms = (time.monotonic() - started) * 1000
        return self._finish(
            sandbox, spec, request, outcome, init_log, sandbox.read_log(), duration_ms, start_wall, cold
        )

    async def _watch_memory(self) -> None:
        """Hold every busy sandbox to its function's memory size.

        The cgroup's hard limit covers memory plus the tmpfs ``/tmp`` (their sum can never be
        exceeded); the function's memory size alone is held here, from the cgroup's anonymous
        memory, or the process's RSS where there is no cgroup. One timer watches all sandboxes,
        so the invoke path pays nothing for it.
        """
        pause = WATCHDOG_INTERVAL_S
        while True:
            await asyncio.sleep(pause)
            began = time.monotonic()
            for sandbox in list(self._busy):
                used = sandbox.cgroup.anon_mb() if sandbox.cgroup is not None else sandbox.rss_mb()
                if used is not None and used > sandbox.spec.memory_mb and not sandbox.dead:
                    sandbox.oom_detected = True
                    await sandbox.kill()
            # A pass costs ~30 us per busy sandbox, on the event loop: with hundreds busy (a burst),
            # the pause grows so the watchdog never takes more than a tenth of the loop.
            pause = max(WATCHDOG_INTERVAL_S, (time.monotonic() - began) * WATCHDOG_SHARE)

    def _finish(
        self,
        sandbox: Sandbox,
        spec: SandboxSpec,
        request: InvokeRequest,
        outcome: Outcome,
        init_log: bytes,
        fn_log: bytes,
        duration_ms: float,
        start_wall: float,
        cold: bool,
    ) -> InvokeResult:
        init_ms = sandbox.init_ms if cold else None
        billed = billed_ms(duration_ms, init_ms)
        max_memory = min(outcome.max_memory_mb or spec.memory_mb, spec.memory_mb)
        rid = request.request_id
        lines = [init_log, logfmt.start_line(rid, spec.version).encode() + b"\n", fn_log]
        if outcome.status == "timeout":
            lines.append(logfmt.timeout_line(rid, duration_ms / 1000 or spec.timeout_s).encode() + b"\n")
        lines.append(logfmt.end_line(rid).encode() + b"\n")
        report = logfmt.report_line(
            rid,
            duration_ms,
            billed,
            spec.memory_mb,
            max_memory,
            init_ms,
            status=outcome.status,
            error_type=outcome.error_type if outcome.status else None,
        )
        lines.append(report.encode() + b"\n")
        self._put_back(sandbox, spec, outcome.alive)
        return InvokeResult(
            request_id=rid,
            payload=outcome.payload,
            function_error="Unhandled" if outcome.error_type else None,
            error_type=outcome.error_type,
            log=b"".join(lines),
            log_stream=sandbox.log_stream,
            usage=Usage(
                start=start_wall,
                duration_ms=duration_ms,
                billed_ms=billed,
                memory_mb=spec.memory_mb,
                max_memory_mb=max_memory,
                cold=cold,
                init_ms=init_ms,
            ),
        )

    def _put_back(self, sandbox: Sandbox, spec: SandboxSpec, alive: bool) -> None:
        """After an invocation: back to its pool (provisioned or warm), or gone if it cannot be reused."""
        owner = self._owners.get(sandbox)
        if owner is not None:
            owner.busy.discard(sandbox)
            if alive and not sandbox.dead and owner.active and owner.size < owner.target:
                owner.idle.append(sandbox)
            else:
                self._drop_provisioned(sandbox)
                self._fill(owner)
            return
        if alive and not sandbox.dead:
            sandbox.last_used = time.monotonic()
            self._prewarm_until.pop(sandbox, None)
            self._idle[spec.pool_key].append(sandbox)
        else:
            self._cleanup_later(sandbox)

    # --- provisioned concurrency -------------------------------------------------------------------
    async def provision(self, spec: SandboxSpec, count: int) -> None:
        pool = self._provisioned.get(spec.pool_key)
        if pool is None:
            pool = self._provisioned[spec.pool_key] = _ProvisionedPool(spec, count)
        pool.target = count
        pool.failure = None
        while pool.size > pool.target and pool.idle:
            sandbox = pool.idle.pop()
            self._drop_provisioned(sandbox)
        self._fill(pool)

    async def unprovision(self, key: str) -> None:
        pool = self._provisioned.pop(key, None)
        if pool is None:
            return
        # A sandbox being started now is stopped by the filler itself once it is up (cancelling the
        # start would leave its process behind).
        pool.active = False
        for sandbox in pool.idle:
            self._drop_provisioned(sandbox)
        pool.idle.clear()

    def provisioned(self) -> dict[str, ProvisionedState]:
        return {key: pool.state() for key, pool in self._provisioned.items()}

    def _fill(self, pool: _ProvisionedPool) -> None:
        if pool.active and (pool.filler is None or pool.filler.done()):
            pool.filler = asyncio.ensure_future(self._fill_pool(pool))

    async def _fill_pool(self, pool: _ProvisionedPool) -> None:
        """Start sandboxes one at a time until the pool is full; an initialisation failure stops it."""
        while pool.active and pool.failure is None and pool.size < pool.target:
            try:
                sandbox, failure = await self._cold_start(pool.spec, PROVISIONED_INIT)
            except Exception as exc:
                log.warning("provisioning %s failed: %s", pool.spec.pool_key, exc)
                pool.failure = str(exc)
                return
            init_log = sandbox.read_log()
            if failure is not None:
                pool.failure = failure.error_type or "Runtime.Unknown"
                self._cleanup_later(sandbox)
                return
            if not pool.active or pool.size >= pool.target:
                self._cleanup_later(sandbox)
                return
            pool.idle.append(sandbox)
            self._owners[sandbox] = pool
            self._init_logs[sandbox] = init_log
            self._exit_watchers[sandbox] = asyncio.ensure_future(self._watch_exit(sandbox, pool))

    async def _watch_exit(self, sandbox: Sandbox, pool: _ProvisionedPool) -> None:
        """An idle provisioned sandbox that dies (killed, crashed) is replaced."""
        status = await sandbox.zygote.exit_status(sandbox.pid, timeout=_FOREVER_S)
        if status is not None and sandbox in pool.idle:
            pool.idle.remove(sandbox)
            self._exit_watchers.pop(sandbox, None)
            self._drop_provisioned(sandbox)
            self._fill(pool)

    def _drop_provisioned(self, sandbox: Sandbox) -> None:
        self._owners.pop(sandbox, None)
        self._init_logs.pop(sandbox, None)
        watcher = self._exit_watchers.pop(sandbox, None)
        if watcher is not None:
            watcher.cancel()
        self._cleanup_later(sandbox)

    # --- cold starts -------------------------------------------------------------------------------
    async def _zygote(self, name: str) -> Zygote:
        runtime = runtimes.get(name)
        key = runtime.zygote_key
        zygote = self._zygotes.get(key)
        if zygote is not None and zygote.alive:
            return zygote
        async with self._zygote_locks[key]:
            zygote = self._zygotes.get(key)
            if zygote is None or not zygote.alive:
                setup: dict[str, Any] = runtime.zygote_setup()
                if self.isolation:
                    setup["root_dir"] = str(self.work_dir / ".root")
                if self.cgroups is not None:
                    setup.update(self.cgroups.spare_setup(cpu=self.cpu_quota))
                zygote = Zygote(await asyncio.to_thread(runtime.interpreter), setup)
                await zygote.start()
                self._zygotes[key] = zygote
        return zygote

    async def _cold_start(
        self, spec: SandboxSpec, init_type: str, request_id: str = ""
    ) -> tuple[Sandbox, Outcome | None]:
        runtime = runtimes.get(spec.runtime)
        zygote = await self._zygote(spec.runtime)
        task_dir = self._unpacked.get(spec.code_hex)
        if task_dir is None:
            task_dir = await asyncio.to_thread(self.code_store.unpacked, spec.code_hex)
            self._unpacked[spec.code_hex] = task_dir
        opt_dir = None
        if spec.layer_hexes:
            opt_dir = await asyncio.to_thread(
                merged_tree, self.code_store, spec.layer_hexes, self.code_store.root / "merged"
            )
        uid = self._free_uids.pop() if self.isolation else None
        sandbox = Sandbox(spec, zygote, Path(), None, uid)
        sandbox.directory = self.work_dir / sandbox.id
        sandbox.log_path = sandbox.directory / "log"
        tmp_dir = sandbox.directory / "tmp"
        # Two mkdirs: cheaper inline than a hop to a worker thread. (Confined sandboxes get a
        # tmpfs for /tmp; the directory is the unconfined fallback.)
        sandbox.directory.mkdir(mode=0o700)
        if not self.isolation:
            tmp_dir.mkdir(mode=0o700)
        sandbox.log_stream = logfmt.log_stream_name(spec.version, sandbox.id, datetime.now(UTC).date())
        confine = {
            "isolate": self.isolation,
            "uid": uid,
            "gid": uid,
            "task_dir": str(task_dir),
            "tmp_mb": spec.ephemeral_mb,
            "max_files": config.SANDBOX_MAX_FILES,
            "max_procs": config.SANDBOX_MAX_PROCS,
            "max_file_bytes": spec.ephemeral_mb * 1024 * 1024,
            # Layers: the merged tree, bound at /opt (confined) or read in place (unconfined).
            "opt_dir": None if opt_dir is None else str(opt_dir),
            "opt_root": None if opt_dir is None else ("/opt" if self.isolation else str(opt_dir)),
            "entry": runtime.entry,
            "command": runtime.command(),
            "payload_limit": config.RESPONSE_PAYLOAD_LIMIT,
            "stream_limit": config.STREAM_PAYLOAD_LIMIT,
            # CPU follows memory (cgroups.py); None leaves the sandbox's CPU unlimited.
            "cpus": None if self.cgroups is None or not self.cpu_quota else self.cgroups.cpus(spec.memory_mb),
            "cpu_quota": self.cpu_quota,
        }
        task_root = "/var/task" if self.isolation else str(task_dir)
        env = self._environment(
            spec, sandbox.log_stream, task_root, init_type, "/tmp" if self.isolation else str(tmp_dir)
        )
        if not runtime.sets_execution_env:
            del env["AWS_EXECUTION_ENV"]
        failure = await sandbox.start(confine, env, self.cgroups, request_id)
        return sandbox, failure

    def _environment(
        self, spec: SandboxSpec, log_stream: str, task_root: str, init_type: str, tmp_dir: str
    ) -> dict[str, str]:
        """The function's variables, then Lambda's reserved ones, which win (spec section 2.3)."""
        env = {
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "PATH": "/usr/local/bin:/usr/bin/:/bin:/opt/bin",
            "LD_LIBRARY_PATH": (
                f"/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:{task_root}:{task_root}/lib:/opt/lib"
            ),
            "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
            "TMPDIR": tmp_dir,
        }
        env.update(spec.environment)
        env.update(self.api_env(spec.function_name))
        env.update(
            {
                "_HANDLER": spec.handler,
                "AWS_REGION": self.region,
                "AWS_DEFAULT_REGION": self.region,
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
                "AWS_LAMBDA_FUNCTION_NAME": spec.function_name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
                "AWS_LAMBDA_FUNCTION_VERSION": spec.version,
                "AWS_LAMBDA_INITIALIZATION_TYPE": init_type,
                "AWS_LAMBDA_LOG_GROUP_NAME": logfmt.log_group_name(spec.function_name),
                "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
                "LAMBDA_TASK_ROOT": task_root,
                "LAMBDA_RUNTIME_DIR": "/var/runtime",
            }
        )
        if spec.log_format == "JSON":
            env["AWS_LAMBDA_LOG_FORMAT"] = "JSON"
        if spec.log_level:
            env["AWS_LAMBDA_LOG_LEVEL"] = spec.log_level
        return env

    def _cleanup_later(self, sandbox: Sandbox) -> asyncio.Task[None]:
        self._prewarm_until.pop(sandbox, None)
        self._init_logs.pop(sandbox, None)
        task = asyncio.ensure_future(self._cleanup(sandbox))
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)
        return task

    async def _cleanup(self, sandbox: Sandbox) -> None:
        try:
            await sandbox.cleanup()
        finally:
            if sandbox.uid is not None:
                self._free_uids.append(sandbox.uid)
