"""The examples of docs/ pages beyond getting-started, run as a reader would run them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import SquallServer
from .test_cli import DOCS, code_blocks

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def run_python(squall: SquallServer, workdir: Path, code: str) -> str:
    env = {**squall.cli_env(), "AWS_ENDPOINT_URL": squall.url}
    result = subprocess.run(
        [sys.executable, "-c", code.replace("http://127.0.0.1:8990", squall.url)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=workdir,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_event_sources_examples_run(squall: SquallServer, lam: Any) -> None:
    blocks = [code for language, code in code_blocks((DOCS / "event-sources.md").read_text()) if language == "python"]
    function_source, stream_session, queue_session, bucket_session = blocks
    workdir = squall.data_dir.parent / "event-sources"
    workdir.mkdir()
    (workdir / "process.py").write_text(function_source)
    # one Python session, as the page says
    output = run_python(squall, workdir, stream_session + queue_session + bucket_session)
    assert output.splitlines() == [
        "stream record: click 2",
        "queue message: order 42",
        "object: ObjectCreated:Put daily+report.csv",
    ]
    for mapping in lam.list_event_source_mappings(FunctionName="process")["EventSourceMappings"]:
        lam.delete_event_source_mapping(UUID=mapping["UUID"])
    lam.delete_function(FunctionName="process")
    s3 = squall.client("s3")
    s3.delete_object(Bucket="uploads", Key="skipped.txt")
    s3.delete_object(Bucket="uploads", Key="daily report.csv")
    s3.delete_bucket(Bucket="uploads")
