"""``--executor`` and ``--store``, the issue's spelling of the tier, resolve to the tier settings, and
contradictions are refused with a message that says what to pass."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from squall.cli.main import main
from squall.config import Settings

DSN = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.mark.parametrize(
    ("executor", "tier", "address"),
    [
        ("local", "embedded", None),
        ("ray", "ray", None),
        ("auto", "ray", "auto"),
        ("ray://10.0.0.5:6379", "ray", "10.0.0.5:6379"),
    ],
)
def test_executor_sets_the_tier_and_the_ray_address(executor: str, tier: str, address: str | None) -> None:
    store = DSN if tier == "ray" else "sqlite"
    settings = Settings.load(executor=executor, store=store)
    assert (settings.tier, settings.ray_address) == (tier, address)
    assert settings.postgres_dsn == (DSN if tier == "ray" else None)


def test_environment_variables_spell_them_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SQUALL_EXECUTOR", "auto")
    monkeypatch.setenv("SQUALL_STORE", DSN)
    settings = Settings.load()
    assert (settings.tier, settings.ray_address, settings.postgres_dsn) == ("ray", "auto", DSN)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"executor": "kubernetes"}, "--executor must be local, ray, auto or ray://HOST:PORT"),
        ({"executor": "ray://"}, "--executor must be local, ray, auto or ray://HOST:PORT"),
        ({"executor": "local", "tier": "ray"}, "contradicts --tier ray"),
        ({"executor": "auto", "ray_address": "h:1"}, "contradicts --ray-address h:1"),
        ({"store": DSN}, "pass --executor ray, auto or ray://HOST:PORT as well"),
        ({"store": "mysql://x"}, "--store must be sqlite or a postgresql:// URL"),
        ({"store": "sqlite", "executor": "ray"}, "the ray tier keeps its state in PostgreSQL"),
        ({"store": DSN, "executor": "ray", "postgres_dsn": "postgresql://other/db"}, "name different databases"),
    ],
)
def test_contradictions_are_refused(options: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("?", r"\?").replace("*", r"\*")):
        Settings.load(**options)


def test_the_server_command_reports_them_as_usage_errors() -> None:
    result = CliRunner().invoke(main, ["server", "--store", DSN])
    assert result.exit_code == 2
    assert "--store postgresql://... is the scale-out tier's shared state" in result.output
