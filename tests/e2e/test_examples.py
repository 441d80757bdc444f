"""The seed's pipelines (``examples/``), each deployed as its own stack and driven end to end
against the shared live server, exactly as ``squall demo`` runs them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from squall.demo.pipelines import EXAMPLES, Server, discover, run_pipeline

from .conftest import SquallServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def server_of(squall: SquallServer) -> Server:
    key, secret = squall.credentials()
    return Server(
        endpoint_url=squall.url,
        gateway_url=f"http://127.0.0.1:{squall.gateway_port}",
        data_dir=squall.data_dir,
        region="us-east-1",
        account_id="000000000000",
        access_key=key,
        secret_key=secret,
    )


@pytest.fixture(scope="module")
def examples_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SquallServer]:
    """A server of their own: the pipelines write to outboxes and tables other tests count."""
    server = SquallServer(tmp_path_factory.mktemp("examples") / "data")
    server.start()
    yield server
    server.stop()


@pytest.mark.timeout(180)
@pytest.mark.parametrize("folder", discover(EXAMPLES), ids=lambda folder: folder.name)
def test_pipeline_produces_its_expected_output(examples_server: SquallServer, folder: Path) -> None:
    lines: list[str] = []
    report = run_pipeline(server_of(examples_server), folder, lines.append)
    assert report.failure is None, (report.failure, lines)
    assert report.outcome is not None and report.outcome.ok, (report.outcome, lines)
    assert report.outcome.went_in and report.outcome.came_out
    assert report.bill.invocations > 0 and report.bill.gb_seconds > 0 and report.bill.dollars > 0
    assert report.bill.errors == 0


def test_every_pipeline_has_a_docs_page_with_the_commands_tested_here() -> None:
    """Each page's commands are the two this file and test_cli run: the demo of that pipeline, and
    the deployment of its template (run_pipeline deploys it through the same Deployer)."""
    from .test_cli import code_blocks

    docs = EXAMPLES.parent / "docs" / "pipelines"
    for folder in discover(EXAMPLES):
        page = docs / f"{folder.name}.md"
        assert page.is_file(), f"docs/pipelines/{folder.name}.md is missing"
        commands = [code for language, code in code_blocks(page.read_text()) if language == "bash"]
        assert commands == [
            f"squall demo --only {folder.name}\nsquall deploy examples/{folder.name}/template.yaml\n"
        ], page
