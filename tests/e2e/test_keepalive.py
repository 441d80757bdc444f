"""The adaptive keep-alive policy on a real server, with its time scale shrunk through settings
(idle-time bins of half a second instead of a minute): a learned short window reaps a sandbox long
before the fixed keep-alive would, and a learned pre-warming window replaces the sandbox just
before the next arrival."""

import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import function_zip

from .test_hostile import create

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FIXED_KEEP_ALIVE_S = 120.0
#: The histogram's bin: 0.5 s leaves a quarter of a second either way for a loaded machine's jitter.
BIN_S = 0.5


@pytest.fixture
def server(new_server: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("SQUALL_KEEP_ALIVE_BIN_S", str(BIN_S))
    return new_server("--keep-alive-policy", "adaptive", "--keep-alive", str(FIXED_KEEP_ALIVE_S))


def call(lam: Any, name: str) -> tuple[str, bool]:
    """Invoke; returns the sandbox's log stream and whether it was a cold start."""
    response = lam.invoke(FunctionName=name, Payload=json.dumps({"action": "context"}), LogType="Tail")
    stream = json.loads(response["Payload"].read())["log_stream_name"]
    report = base64.b64decode(response["LogResult"]).decode()
    return stream, "Init Duration" in report


def sandbox_dir(server: Any, stream: str) -> Path:
    return Path(server.data_dir) / "sandboxes" / stream.rsplit("]", 1)[1]


def test_a_learned_short_window_reaps_long_before_the_fixed_keep_alive(server: Any) -> None:
    lam = server.client("lambda")
    create(lam, "ka-chatty", function_zip("probe", "app"))
    began = time.monotonic()
    streams = [call(lam, "ka-chatty") for _ in range(12)]  # back to back: idle times under a second
    assert [cold for _, cold in streams] == [True] + [False] * 11
    assert len({stream for stream, _ in streams}) == 1  # kept warm between them
    directory = sandbox_dir(server, streams[-1][0])
    assert directory.exists()
    deadline = time.monotonic() + 60
    while directory.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not directory.exists(), "the sandbox outlived its learned window"
    assert time.monotonic() - began < FIXED_KEEP_ALIVE_S / 2
    stream, cold = call(lam, "ka-chatty")
    assert cold and stream != streams[-1][0]


def test_a_learned_prewarm_replaces_the_sandbox_before_the_next_arrival(server: Any) -> None:
    lam = server.client("lambda")
    create(lam, "ka-periodic", function_zip("probe", "app"))
    # An idle time of 5.5 bins, eleven times: head and tail in bin 5, so the sandbox is not kept
    # after an invocation and a new one is started 4.5 bins after it (kept until 6.6 bins).
    gap_s = 5.5 * BIN_S
    seen: list[tuple[str, bool]] = []
    for _ in range(11):
        seen.append(call(lam, "ka-periodic"))
        time.sleep(gap_s)
    # Pre-warmed: a warm start (no Init Duration) on a sandbox other than the last one. The
    # fixed policy would reuse the last one; a missed pre-warm would be a cold start. Allow a
    # late pre-warm on a loaded machine to miss once.
    prewarmed = 0
    for _ in range(4):
        stream, cold = call(lam, "ka-periodic")
        if not cold and stream != seen[-1][0]:
            prewarmed += 1
        seen.append((stream, cold))
        time.sleep(gap_s)
    assert prewarmed >= 3, seen[-5:]
    assert not sandbox_dir(server, seen[-2][0]).exists()  # the ones that ran were not kept
