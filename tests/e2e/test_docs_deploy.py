"""docs/deploy.md, followed step by step against a live server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import SquallServer
from .test_cli import DOCS, code_blocks

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_deploy_page_examples_run(squall: SquallServer, lam: Any, tmp_path: Path) -> None:
    blocks = code_blocks((DOCS / "deploy.md").read_text())
    template = next(code for language, code in blocks if language == "yaml")
    source = next(code for language, code in blocks if language == "python")
    commands = [code.strip() for language, code in blocks if not language]
    app = tmp_path / "inbox-app"
    (app / "src").mkdir(parents=True)
    (app / "template.yaml").write_text(template)
    (app / "src" / "app.py").write_text(source)
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}

    def run(command: str) -> subprocess.CompletedProcess[str]:
        argv = command.replace(".venv/bin/squall", "squall").split()
        argv += ["--endpoint-url", squall.url, "--data-dir", str(squall.data_dir)]
        return subprocess.run(argv, capture_output=True, text=True, cwd=app, env=env, timeout=180)

    first = run(commands[0])
    assert first.returncode == 0, first.stderr
    outputs = dict(line.split("\t", 1) for line in first.stdout.splitlines() if "\t" in line)
    name = outputs["ReaderName"]
    assert name.startswith("inbox-app-Reader-") and "/inbox-app-Inbox-" in outputs["InboxUrl"]
    assert json.loads(lam.invoke(FunctionName=name, Payload=b"{}")["Payload"].read()) == {"greeting": "hello"}
    second = run(commands[1])
    assert second.returncode == 0 and "updating Reader" in second.stderr
    assert json.loads(lam.invoke(FunctionName=name, Payload=b"{}")["Payload"].read()) == {"greeting": "bonjour"}
    gone = run(".venv/bin/squall deploy template.yaml --delete")
    assert gone.returncode == 0 and "resource(s) deleted" in gone.stdout
