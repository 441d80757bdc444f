"""The examples and figures of docs/scaling.md: the server commands start a server, the Python
example prints what the page says, and the simulation table is what the simulation gives."""

import re
import subprocess
import sys
from typing import Any

import pytest

from tests.unit.test_keepalive_simulation import run

from .test_cli import DOCS, code_blocks

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PAGE = (DOCS / "scaling.md").read_text()


def test_server_commands_start_a_server(new_server: Any) -> None:
    commands = [line for language, code in code_blocks(PAGE) if not language for line in code.splitlines() if line]
    assert commands and all(line.startswith("squall server ") for line in commands)
    for line in commands:
        server = new_server(*line.split()[2:])
        lam = server.client("lambda")
        assert lam.list_functions()["Functions"] == []
        server.stop()


def test_python_example_prints_what_the_page_says() -> None:
    (code,) = [code for language, code in code_blocks(PAGE) if language == "python"]
    expected = re.search(r"prints `([^`]+)`", PAGE)
    assert expected is not None
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected.group(1)


def test_simulation_table_matches_the_simulation() -> None:
    rows = [line for line in PAGE.splitlines() if re.match(r"\| [a-z0-9].* \| [\d,]+ \|", line)]
    figures = [[cell.strip().replace(",", "") for cell in row.strip("|").split("|")[1:]] for row in rows]
    expected = [
        [
            str(fixed.invocations),
            str(fixed.cold),
            str(adaptive.cold),
            f"{fixed.idle_s / 3600:.1f}",
            f"{adaptive.idle_s / 3600:.1f}",
        ]
        for fixed, adaptive in run().values()
    ]
    assert figures == expected
