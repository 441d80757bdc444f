"""The ``squall`` command line against a live server: logs, cost, help, the docs' examples."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import function_zip

from .conftest import SquallServer

pytestmark = pytest.mark.e2e
DOCS = Path(__file__).resolve().parents[2] / "docs"


def squall_cli(*args: str, server: SquallServer | None = None, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    extra = ["--data-dir", str(server.data_dir)] if server else []
    return subprocess.run(
        [sys.executable, "-m", "squall", *args, *extra], capture_output=True, text=True, timeout=60, **kwargs
    )


def test_every_command_has_help() -> None:
    for command in ([], ["server"], ["logs"], ["cost"], ["streams"], ["cluster"], ["cluster", "status"]):
        result = squall_cli(*command, "--help")
        assert result.returncode == 0, result.stderr
        assert "Usage:" in result.stdout
    assert "--data-dir" in squall_cli("server", "--help").stdout


def test_logs_and_cost(squall: SquallServer, lam: Any, make_function: Any) -> None:
    make_function("cli-fn", function_zip("probe", "app"), MemorySize=512)
    for text in ("first line", "second line"):
        lam.invoke(FunctionName="cli-fn", Payload=json.dumps({"action": "print", "text": text}).encode())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        out = squall_cli("logs", "cli-fn", server=squall).stdout
        if out.count("REPORT RequestId") == 2:
            break
        time.sleep(0.1)
    lines = out.splitlines()
    assert "first line" in lines and "second line" in lines
    assert sum(line.startswith("START RequestId: ") for line in lines) == 2
    assert sum("Init Duration" in line for line in lines) == 1

    report = json.loads(squall_cli("cost", "--json", "--function", "cli-fn", server=squall).stdout)
    text = json.dumps(report)
    assert "cli-fn" in text
    table = squall_cli("cost", server=squall).stdout
    assert "cli-fn" in table and "GB-S" in table.upper()


def test_logs_follow_prints_new_lines(squall: SquallServer, lam: Any, make_function: Any) -> None:
    make_function("follow-fn", function_zip("probe", "app"))
    follower = subprocess.Popen(
        [sys.executable, "-m", "squall", "logs", "follow-fn", "--follow", "--data-dir", str(squall.data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        time.sleep(1.0)
        lam.invoke(FunctionName="follow-fn", Payload=b'{"action": "print", "text": "live line"}')
        assert follower.stdout is not None
        seen = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            line = follower.stdout.readline().rstrip("\n")
            seen.append(line)
            if line == "live line":
                break
        assert "live line" in seen
    finally:
        follower.terminate()
        follower.wait(10)
        if follower.stdout is not None:
            follower.stdout.close()


def test_logs_of_an_unknown_function(squall: SquallServer) -> None:
    result = squall_cli("logs", "never-created", server=squall)
    assert result.returncode == 0
    assert "No log lines yet for never-created" in result.stderr


def test_cost_without_a_data_dir(tmp_path: Path) -> None:
    result = squall_cli("cost", "--data-dir", str(tmp_path / "nothing"))
    assert result.returncode != 0
    assert "No Squall data" in result.stderr


def code_blocks(markdown: str) -> list[tuple[str, str]]:
    """(language, code) of every fenced block, in order."""
    blocks, language, lines = [], None, []
    for line in markdown.splitlines():
        if line.startswith("```"):
            if language is None:
                language, lines = line[3:].strip(), []
            else:
                blocks.append((language, "\n".join(lines) + "\n"))
                language = None
        elif language is not None:
            lines.append(line)
    return blocks


def test_getting_started_examples_run(squall: SquallServer, lam: Any) -> None:
    """Every code block of docs/getting-started.md, run as a reader would."""
    text = (DOCS / "getting-started.md").read_text()
    env = {**squall.cli_env(), "AWS_ENDPOINT_URL": squall.url}
    blocks = code_blocks(text)
    function_source, deploy_script = [code for language, code in blocks if language == "python"]
    workdir = squall.data_dir.parent / "getting-started"
    workdir.mkdir()
    (workdir / "app.py").write_text(function_source)
    code = deploy_script.replace("http://127.0.0.1:8990", squall.url)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60, cwd=workdir
    )
    assert result.returncode == 0, result.stderr
    assert "'hello': 'Ada'" in result.stdout
    cli = next(code for language, code in blocks if "lambda invoke" in code)
    command = cli.replace("\\\n", " ").replace("http://127.0.0.1:8990", squall.url).splitlines()[0]
    bin_dir = Path(sys.executable).parent
    result = subprocess.run(
        command,
        shell=True,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=workdir,
        env={**env, "PATH": f"{bin_dir}{os.pathsep}{env['PATH']}"},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads((workdir / "out.json").read_text())["hello"] == "Grace"
    lam.delete_function(FunctionName="hello")


def demo_env(tmp_path: Path) -> dict[str, str]:
    """A demo server of its own: free ports and a data dir under ``tmp_path``."""
    from .conftest import free_port

    return {
        **os.environ,
        "SQUALL_PORT": str(free_port()),
        "SQUALL_GATEWAY_PORT": str(free_port()),
        "SQUALL_DATA_DIR": str(tmp_path / "demo-data"),
    }


@pytest.mark.timeout(300)
def test_make_demo_runs_end_to_end(tmp_path: Path) -> None:
    """`make demo`: the sample function, then every pipeline of examples/, on a server of its own."""
    from squall.demo.pipelines import EXAMPLES, discover

    from .conftest import free_port

    env = {
        **os.environ,
        "SQUALL_PORT": str(free_port()),
        "SQUALL_GATEWAY_PORT": str(free_port()),
        "SQUALL_DATA_DIR": str(tmp_path / "demo-data"),
    }
    result = subprocess.run(
        [sys.executable, "-m", "squall", "demo"], capture_output=True, text=True, timeout=280, env=env
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "Hello, Ada!" in result.stdout and "Hello, Linus!" in result.stdout
    assert "REPORT RequestId:" in result.stdout and "Init Duration" in result.stdout
    assert "hello     x86_64         3" in result.stdout  # the cost table
    pipelines = discover(EXAMPLES)
    assert f"==> {len(pipelines)} of {len(pipelines)} pipelines passed" in result.stdout
    for folder in pipelines:
        assert f"==> {folder.name}: " in result.stdout and f"  [{folder.name}] deployed " in result.stdout
    assert result.stdout.count("-> PASS") == len(pipelines)
    assert "left no process behind" in result.stdout


def test_demo_of_one_pipeline_and_an_unknown_one(tmp_path: Path) -> None:
    env = demo_env(tmp_path)
    demo = [sys.executable, "-m", "squall", "demo", "--only"]
    result = subprocess.run([*demo, "bucket-chain"], capture_output=True, text=True, timeout=110, env=env)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "Hello, Ada!" not in result.stdout  # --only skips the sample function
    assert "==> 1 of 1 pipelines passed" in result.stdout and "out: apples: 7" in result.stdout
    unknown = subprocess.run([*demo, "nope"], capture_output=True, text=True, timeout=60, env=env)
    assert unknown.returncode == 1 and "no such pipeline: nope (see examples/)" in unknown.stderr
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the demo's server just left it
        taken.bind(("127.0.0.1", int(env["SQUALL_PORT"])))
        taken.listen()
        busy = subprocess.run([*demo, "bucket-chain"], capture_output=True, text=True, timeout=60, env=env)
    assert busy.returncode == 1 and f"port {env['SQUALL_PORT']} on 127.0.0.1 is in use" in busy.stderr


def test_readme_usage_commands_run(squall: SquallServer, make_function: Any) -> None:
    """The README's "Using it" block, against the live server (its port instead of 8990)."""
    make_function("readme-fn", function_zip("probe", "app"))
    readme = (DOCS.parent / "README.md").read_text()
    block = next(code for _, code in code_blocks(readme) if "list-functions" in code)
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]
    assert commands[0].startswith(".venv/bin/squall server")  # the server under test plays this part
    exports = dict(item.split("=", 1) for item in commands[1].removeprefix("export ").split())
    assert exports == {
        "AWS_SHARED_CREDENTIALS_FILE": ".squall/credentials",
        "AWS_PROFILE": "squall",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    env = {
        **squall.cli_env(),
        "AWS_PROFILE": exports["AWS_PROFILE"],
        "AWS_DEFAULT_REGION": "us-east-1",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    command = commands[2].replace("http://127.0.0.1:8990", squall.url)
    result = subprocess.run(command, shell=True, capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "readme-fn" in [f["FunctionName"] for f in json.loads(result.stdout)["Functions"]]
