"""Hostile functions: each must stay contained while Squall keeps serving a well-behaved function.

Every test runs its hostile invocation in a thread and, meanwhile, invokes a well-behaved function
again and again: each of those calls must answer correctly and quickly. Afterwards Squall's health
endpoint must still say ok. The hostile side is ``tests/functions/probe.py``, whose event picks
what it tries.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.conftest import FUNCTIONS, function_zip, make_zip
from tests.e2e.conftest import ROLE, SquallServer

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="Squall isolates sandboxes only when it runs as root"),
]

T = TypeVar("T")
GOOD_MAX_LATENCY_S = 2.0
SANDBOX_MAX_PROCS = 1024  # docs/security.md: processes are limited to 1024 per sandbox uid
CANARY_VAR = "SQUALL_HOSTILE_CANARY"


# --- helpers -----------------------------------------------------------------------------------------
def call(lam: Any, name: str, event: Any) -> tuple[dict[str, Any], Any, float]:
    """Invoke ``name`` synchronously: the response, its decoded payload and the wall time it took."""
    started = time.monotonic()
    response = lam.invoke(FunctionName=name, Payload=json.dumps(event).encode())
    body = response["Payload"].read()
    return response, json.loads(body) if body else None, time.monotonic() - started


def assert_healthy(server: SquallServer) -> None:
    with urllib.request.urlopen(f"{server.url}/_squall/health", timeout=5) as response:
        assert response.status == 200
        assert json.loads(response.read()) == {"status": "ok"}


def while_serving(good_lam: Any, good: str, hostile: Callable[[], T], min_calls: int = 3) -> T:
    """Run ``hostile`` in a thread while invoking ``good`` over and over; return what ``hostile`` returned.

    Every call to ``good`` must answer its own nonce, without a function error, within
    ``GOOD_MAX_LATENCY_S``; at least ``min_calls`` of them are made.
    """
    latencies: list[float] = []
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(hostile)
        while not future.done() or len(latencies) < min_calls:
            nonce = uuid.uuid4().hex
            response, payload, elapsed = call(good_lam, good, {"action": "echo", "nonce": nonce})
            assert response["StatusCode"] == 200
            assert "FunctionError" not in response, payload
            assert payload["event"] == {"action": "echo", "nonce": nonce}
            assert elapsed < GOOD_MAX_LATENCY_S, f"the well-behaved function took {elapsed:.2f}s: {latencies}"
            latencies.append(elapsed)
            time.sleep(0.05)
        return future.result()


def sandbox_processes(uid: int) -> list[int]:
    """Host pids of the live (not zombie) processes running as ``uid``, read from the host's /proc.

    Every sandbox has a uid of its own (each server locks its own block of them), and inside its
    PID namespace a sandbox sees itself as pid 1, so the uid is how the host finds it.
    """
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        state = stat.rsplit(")", 1)[1].split()[0]
        real_uid = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("Uid:"))
        if real_uid == uid and state != "Z":
            found.append(int(entry))
    return found


def wait_until_gone(uid: int, timeout_s: float) -> list[int]:
    deadline = time.monotonic() + timeout_s
    left = sandbox_processes(uid)
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = sandbox_processes(uid)
    return left


def probe_with(extra: str) -> bytes:
    """The probe as ``app.py``, with ``extra`` appended to its source."""
    return make_zip({"app.py": (FUNCTIONS / "probe.py").read_text() + "\n" + extra + "\n"})


def create(lam: Any, name: str, zip_bytes: bytes, **kwargs: Any) -> None:
    lam.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": zip_bytes},
        **kwargs,
    )
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.05, "MaxAttempts": 200})


# --- fixtures ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def good_lam(squall: SquallServer) -> Any:
    """A client of its own for the well-behaved calls, so they never queue behind the hostile one."""
    return squall.client("lambda")


@pytest.fixture(scope="module")
def good(lam: Any, good_lam: Any) -> Iterator[str]:
    """A well-behaved function, warm."""
    name = "hostile-good-neighbour"
    create(lam, name, function_zip("probe", "app"), Timeout=5)
    response, payload, _ = call(good_lam, name, {"action": "echo", "nonce": "warm-up"})
    assert "FunctionError" not in response, payload
    yield name
    lam.delete_function(FunctionName=name)


@pytest.fixture(scope="module")
def canary_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SquallServer, str]]:
    """A server of its own whose process environment holds a secret (the canary) no function is given."""
    server = SquallServer(tmp_path_factory.mktemp("hostile-canary") / "data")
    canary = f"canary-{uuid.uuid4().hex}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CANARY_VAR, canary)
        server.start()
    yield server, canary
    server.stop()


# --- the file system ---------------------------------------------------------------------------------
def test_data_dir_is_not_reachable(
    squall: SquallServer, lam: Any, good_lam: Any, good: str, make_function: Any
) -> None:
    data = squall.data_dir
    assert (data / "credentials").is_file() and (data / "squall.db").is_file()  # the host side is real
    make_function("hostile-data-dir", function_zip("probe", "app"))
    server_pid = squall.proc.pid if squall.proc else 0
    attempts = [
        {"action": "read", "path": str(data / "credentials")},
        {"action": "read", "path": str(data / "squall.db")},
        {"action": "listdir", "path": str(data)},
        {"action": "listdir", "path": str(data.parent)},
        # Through the server's own view of the file system, in the shared /proc.
        {"action": "read", "path": f"/proc/{server_pid}/root{data}/credentials"},
        {"action": "listdir", "path": f"/proc/{server_pid}/cwd"},
        {"action": "listdir", "path": f"/proc/{server_pid}/root"},
    ]

    def hostile() -> list[Any]:
        return [call(lam, "hostile-data-dir", attempt)[1] for attempt in attempts]

    results = while_serving(good_lam, good, hostile)
    for attempt, result in zip(attempts, results, strict=True):
        assert result["ok"] is False, (attempt, result)
    # The same actions work where they are allowed to: the function's own code.
    _, own, _ = call(lam, "hostile-data-dir", {"action": "read", "path": "/var/task/app.py"})
    assert own["ok"] is True and "probe" in own["data"]
    assert_healthy(squall)


def test_other_functions_code_is_not_reachable(
    squall: SquallServer, lam: Any, good_lam: Any, good: str, make_function: Any
) -> None:
    secret = f"code-secret-{uuid.uuid4().hex}"
    make_function("hostile-code-a", probe_with(f"SECRET = {secret!r}"))
    make_function("hostile-code-b", function_zip("probe", "app"))
    # Where A's code lives on the host: <data_dir>/code/<hex>/app.py.
    code_dir = squall.data_dir / "code"
    hosts = [p for p in code_dir.glob("*/app.py") if secret in p.read_text()]
    assert hosts, f"A's code was not found under {code_dir}"
    # A reads its own code, and stays warm (so its sandbox process is alive during the attempts).
    _, own, _ = call(lam, "hostile-code-a", {"action": "contains", "path": "/var/task/app.py", "needle": secret})
    assert own == {"ok": True, "found": True}
    _, a_proc, _ = call(lam, "hostile-code-a", {"action": "pid"})
    attempts: list[dict[str, Any]] = [{"action": "contains", "path": str(host), "needle": secret} for host in hosts]
    attempts += [
        {"action": "listdir", "path": str(code_dir)},
        {"action": "listdir", "path": str(hosts[0].parent)},
        {"action": "contains", "path": f"/proc/{a_proc['pid']}/root/var/task/app.py", "needle": secret},
        {"action": "contains", "path": f"/proc/{a_proc['pid']}/cwd/app.py", "needle": secret},
        {"action": "contains", "path": "/var/task/app.py", "needle": secret},
    ]

    def hostile() -> list[Any]:
        return [call(lam, "hostile-code-b", attempt)[1] for attempt in attempts]

    results = while_serving(good_lam, good, hostile)
    for attempt, result in zip(attempts, results, strict=True):
        assert result.get("found") is not True, (attempt, result)
        if attempt["action"] == "listdir":
            assert result["ok"] is False, (attempt, result)
    assert_healthy(squall)


def test_writes_outside_tmp_fail(squall: SquallServer, lam: Any, good_lam: Any, good: str, make_function: Any) -> None:
    make_function("hostile-writer", function_zip("probe", "app"))
    mark = f"squall-hostile-{uuid.uuid4().hex}"
    forbidden = [
        f"/var/task/{mark}",
        f"/etc/{mark}",
        f"/{mark}",
        f"/usr/{mark}",
        f"/opt/{mark}",
        f"/var/{mark}",
        str(squall.data_dir / mark),
        str(squall.data_dir / "code" / mark),
    ]

    def hostile() -> tuple[list[Any], Any, Any]:
        denied = [call(lam, "hostile-writer", {"action": "write", "path": path})[1] for path in forbidden]
        wrote = call(lam, "hostile-writer", {"action": "write", "path": f"/tmp/{mark}"})[1]
        read = call(lam, "hostile-writer", {"action": "read", "path": f"/tmp/{mark}"})[1]
        return denied, wrote, read

    denied, wrote, read = while_serving(good_lam, good, hostile)
    for path, result in zip(forbidden, denied, strict=True):
        assert result["ok"] is False, (path, result)
    assert wrote == {"ok": True}
    assert read == {"ok": True, "data": "squall was here"}
    for path in (f"/etc/{mark}", f"/{mark}", f"/usr/{mark}", str(squall.data_dir / mark)):
        assert not os.path.exists(path), f"{path} appeared on the host"
    assert_healthy(squall)


@pytest.mark.slow
def test_tmp_is_limited_to_ephemeral_storage(
    squall: SquallServer, lam: Any, good_lam: Any, good: str, make_function: Any
) -> None:
    """/tmp holds EphemeralStorage in total, not per file: a function cannot fill the host's disk."""
    make_function("hostile-disk-filler", function_zip("probe", "app"), Timeout=30, EphemeralStorage={"Size": 512})

    def hostile() -> Any:
        return call(lam, "hostile-disk-filler", {"action": "fill_tmp", "mb": 640, "file_mb": 64})

    response, result, _ = while_serving(good_lam, good, hostile)
    assert_healthy(squall)
    assert "FunctionError" not in response, result
    assert result["written_mb"] <= 512, f"wrote {result['written_mb']} MiB into a 512 MiB /tmp"
    assert result["error"] is not None


def test_tmp_symlinks_do_not_redirect_cleanup(
    squall: SquallServer, lam: Any, good_lam: Any, good: str, make_function: Any, tmp_path: Path
) -> None:
    """Removing a sandbox's /tmp never follows a symlink the function left there into the host."""
    victim = tmp_path / "victim"
    victim.mkdir()
    victim.chmod(0o755)
    (victim / "keep").write_text("keep me")
    make_function("hostile-symlinker", function_zip("probe", "app"))

    def hostile() -> Any:
        return call(lam, "hostile-symlinker", {"action": "symlink", "path": "/tmp/link", "target": str(victim)})[1]

    assert while_serving(good_lam, good, hostile) == {"ok": True}
    # Where the sandbox's /tmp lives on the host, if it does: wait for Squall to remove it.
    links = [
        Path(root) / name
        for root, dirs, files in os.walk(squall.data_dir)
        for name in dirs + files
        if os.path.islink(os.path.join(root, name)) and os.readlink(os.path.join(root, name)) == str(victim)
    ]
    lam.delete_function(FunctionName="hostile-symlinker")
    deadline = time.monotonic() + 10
    while any(os.path.lexists(link) for link in links) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(os.path.lexists(link) for link in links), "the sandbox's /tmp was not removed"
    time.sleep(0.5 if links else 3)
    assert oct(victim.stat().st_mode & 0o7777) == oct(0o755), "Squall changed the mode of a host directory"
    assert (victim / "keep").read_text() == "keep me"
    assert_healthy(squall)


# --- environments ------------------------------------------------------------------------------------
def test_other_functions_environment_is_not_readable(
    squall: SquallServer, lam: Any, good_lam: Any, good: str, make_function: Any
) -> None:
    secret = f"env-secret-{uuid.uuid4().hex}"
    make_function("hostile-env-a", function_zip("probe", "app"), Environment={"Variables": {"A_SECRET": secret}})
    make_function("hostile-env-b", function_zip("probe", "app"))
    _, a_env, _ = call(lam, "hostile-env-a", {"action": "env"})
    assert a_env["A_SECRET"] == secret
    _, a_proc, _ = call(lam, "hostile-env-a", {"action": "pid"})  # A's sandbox stays warm and alive
    a_pid = a_proc["pid"]
    _, b_proc, _ = call(lam, "hostile-env-b", {"action": "pid"})
    assert b_proc["uid"] != a_proc["uid"]

    def hostile() -> dict[str, Any]:
        return {
            "environ_of": call(lam, "hostile-env-b", {"action": "environ_of", "pid": a_pid})[1],
            "contains": call(
                lam,
                "hostile-env-b",
                {"action": "contains", "path": f"/proc/{a_pid}/environ", "needle": secret},
            )[1],
            "scan": call(lam, "hostile-env-b", {"action": "scan_environ", "needle": secret})[1],
            "own_env": call(lam, "hostile-env-b", {"action": "env"})[1],
        }

    results = while_serving(good_lam, good, hostile)
    assert secret not in results["environ_of"].get("data", ""), results["environ_of"]
    assert results["contains"].get("found") is not True, results["contains"]
    assert results["scan"] == {"found": []}
    assert secret not in json.dumps(results["own_env"])
    assert_healthy(squall)


def test_other_functions_are_not_reachable_through_the_api(
    squall: SquallServer, lam: Any, good_lam: Any, good: str, make_function: Any
) -> None:
    """The credentials a function is given do not open other functions' environment and code."""
    secret = f"api-secret-{uuid.uuid4().hex}"
    make_function("hostile-api-a", function_zip("probe", "app"), Environment={"Variables": {"A_SECRET": secret}})
    make_function("hostile-api-b", function_zip("probe", "app"), Timeout=30)

    def hostile() -> list[Any]:
        return [
            call(lam, "hostile-api-b", {"action": "lambda_api", "operation": operation, "params": params})[1]
            for operation, params in (
                ("get_function_configuration", {"FunctionName": "hostile-api-a"}),
                ("get_function", {"FunctionName": "hostile-api-a"}),
            )
        ]

    configuration, function = while_serving(good_lam, good, hostile)
    assert_healthy(squall)
    assert "result" in configuration or "code" in configuration, configuration  # the call was made
    assert secret not in json.dumps(configuration), "B read A's environment through the Lambda API"
    assert "Location" not in json.dumps(function), "B got a download URL for A's code"
    assert configuration == {"ok": False, "code": "AccessDeniedException"}
    # What an execution role allows stays allowed: B invokes A with its own credentials.
    invoked = call(
        lam,
        "hostile-api-b",
        {"action": "lambda_api", "operation": "invoke", "params": {"FunctionName": "hostile-api-a", "Payload": "{}"}},
    )[1]
    assert invoked["ok"] is True and invoked["result"]["StatusCode"] == 200


def test_server_environment_is_not_readable_through_proc(canary_server: tuple[SquallServer, str]) -> None:
    server, canary = canary_server
    lam = server.client("lambda")
    create(lam, "hostile-proc-scan", function_zip("probe", "app"))
    create(lam, "hostile-proc-good", function_zip("probe", "app"))
    call(lam, "hostile-proc-good", {"action": "echo"})
    server_pid = server.proc.pid if server.proc else 0

    def hostile() -> dict[str, Any]:
        return {
            "scan_value": call(lam, "hostile-proc-scan", {"action": "scan_environ", "needle": canary})[1],
            "scan_name": call(lam, "hostile-proc-scan", {"action": "scan_environ", "needle": CANARY_VAR})[1],
            "server": call(
                lam,
                "hostile-proc-scan",
                {"action": "contains", "path": f"/proc/{server_pid}/environ", "needle": canary},
            )[1],
            "self": call(
                lam,
                "hostile-proc-scan",
                {"action": "contains", "path": "/proc/self/environ", "needle": canary},
            )[1],
            "env": call(lam, "hostile-proc-scan", {"action": "env"})[1],
        }

    results = while_serving(server.client("lambda"), "hostile-proc-good", hostile)
    assert results["scan_value"] == {"found": []}
    assert results["scan_name"] == {"found": []}
    assert results["server"].get("found") is not True, results["server"]
    assert results["self"].get("found") is not True, results["self"]
    assert CANARY_VAR not in results["env"]
    assert_healthy(server)


def test_server_environment_is_not_in_sandbox_memory(canary_server: tuple[SquallServer, str]) -> None:
    """The exec-time environment block a sandbox inherits from the zygote holds nothing of the server's.

    ``os.environ`` is replaced in a sandbox, but the block the kernel laid out when the zygote was
    exec'd stays in every fork's memory, and /proc/self/stat (env_start, env_end) says where.
    """
    server, canary = canary_server
    lam = server.client("lambda")
    create(lam, "hostile-exec-env", function_zip("probe", "app"))
    _, result, _ = call(lam, "hostile-exec-env", {"action": "exec_environ", "needle": canary})
    assert_healthy(server)
    assert result["located"] is True, result
    assert result["found"] is False, f"the server's {CANARY_VAR} is in the sandbox's environment block"


# --- processes and signals ---------------------------------------------------------------------------
@pytest.mark.slow
def test_sandboxes_of_two_servers_cannot_signal_each_other(tmp_path: Path) -> None:
    """Two servers on one host never hand out the same sandbox uid (signals, RLIMIT_NPROC are per uid)."""
    servers = [SquallServer(tmp_path / "one"), SquallServer(tmp_path / "two")]
    try:
        pids = []
        for server in servers:
            server.start()
            lam = server.client("lambda")
            create(lam, "hostile-neighbour", function_zip("probe", "app"))
            pids.append(call(lam, "hostile-neighbour", {"action": "pid"})[1])
        assert pids[0]["uid"] != pids[1]["uid"]
        (host_pid,) = sandbox_processes(pids[0]["uid"])
        lam = servers[1].client("lambda")
        _, result, _ = call(lam, "hostile-neighbour", {"action": "signal", "pid": host_pid, "sig": 0})
        for server in servers:
            assert_healthy(server)
        assert result["ok"] is False, f"a sandbox of one server can signal one of another: {pids}"
    finally:
        for server in servers:
            if server.proc is not None:
                server.stop()


@pytest.mark.slow
@pytest.mark.parametrize("memory_mb", [128, 1024])
def test_fork_bomb_is_contained(
    squall: SquallServer, lam: Any, good_lam: Any, good: str, make_function: Any, memory_mb: int
) -> None:
    name = f"hostile-fork-bomb-{memory_mb}"
    make_function(name, function_zip("probe", "app"), Timeout=8, MemorySize=memory_mb)
    _, sandbox, _ = call(lam, name, {"action": "pid"})  # the sandbox the bomb will run in (the only warm one)

    def hostile() -> Any:
        return call(lam, name, {"action": "fork_bomb"})

    response, result, elapsed = while_serving(good_lam, good, hostile)
    assert elapsed < 8 + 2
    if "FunctionError" in response:
        assert result["errorType"] in {"Sandbox.Timedout", "Runtime.OutOfMemory", "Runtime.ExitError"}, result
    else:
        assert result["error"] is not None and result["children"] < SANDBOX_MAX_PROCS, result
    alive = sandbox_processes(sandbox["uid"])
    assert len(alive) <= SANDBOX_MAX_PROCS
    if "FunctionError" not in response:
        # The children sleep for 30 s in the (still warm) sandbox: they are visible here.
        assert len(alive) >= result["children"]
    _, again, _ = call(good_lam, good, {"action": "echo", "after": "bomb"})
    assert again["event"]["after"] == "bomb"
    assert_healthy(squall)
    lam.delete_function(FunctionName=name)
    left = wait_until_gone(sandbox["uid"], timeout_s=10)
    assert not left, f"{len(left)} processes of the bomb's sandbox (uid {sandbox['uid']}) outlived it"


def test_memory_bomb_is_out_of_memory(
    squall: SquallServer, lam: Any, good_lam: Any, good: str, make_function: Any
) -> None:
    make_function("hostile-memory-bomb", function_zip("probe", "app"), Timeout=20, MemorySize=128)

    def hostile() -> Any:
        return call(lam, "hostile-memory-bomb", {"action": "memory", "mb": 2048})

    response, result, _ = while_serving(good_lam, good, hostile)
    assert response["FunctionError"] == "Unhandled"
    assert result["errorType"] == "Runtime.OutOfMemory", result
    # The function itself recovers in a fresh sandbox.
    response, result, _ = call(lam, "hostile-memory-bomb", {"action": "echo"})
    assert "FunctionError" not in response, result
    assert_healthy(squall)


@pytest.mark.slow
@pytest.mark.parametrize("action", ["busy", "ignore_sigterm"])
def test_runaway_is_killed_at_its_timeout(
    squall: SquallServer, lam: Any, good_lam: Any, good: str, make_function: Any, action: str
) -> None:
    timeout_s = 2
    name = f"hostile-{action.replace('_', '-')}"
    make_function(name, function_zip("probe", "app"), Timeout=timeout_s)
    _, sandbox, _ = call(lam, name, {"action": "pid"})
    assert len(sandbox_processes(sandbox["uid"])) == 1  # PID 1 of the sandbox's namespace

    def hostile() -> Any:
        return call(lam, name, {"action": action, "seconds": 60})

    response, result, elapsed = while_serving(good_lam, good, hostile)
    assert response["FunctionError"] == "Unhandled"
    assert result["errorType"] == "Sandbox.Timedout", result
    assert timeout_s - 0.1 <= elapsed <= timeout_s + 2, elapsed
    left = wait_until_gone(sandbox["uid"], timeout_s=3)
    assert not left, f"the timed-out sandbox is still running: {left}"
    assert_healthy(squall)
