"""Settings: defaults, SQUALL_* variables, then command-line values."""

from pathlib import Path

import pytest

from squall.config import Settings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SQUALL_PORT", "SQUALL_DATA_DIR", "SQUALL_NO_AUTH", "SQUALL_REGION"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings.load()
    assert (settings.host, settings.port, settings.gateway_port) == ("127.0.0.1", 8990, 8991)
    assert settings.data_dir == Path(".squall")
    assert (settings.account_id, settings.region, settings.concurrency_limit) == (
        "000000000000",
        "us-east-1",
        1000,
    )
    assert settings.keep_alive_s == 600.0 and settings.no_auth is False


def test_environment_then_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SQUALL_PORT", "9100")
    monkeypatch.setenv("SQUALL_NO_AUTH", "true")
    monkeypatch.setenv("SQUALL_DATA_DIR", "/tmp/elsewhere")
    monkeypatch.setenv("SQUALL_KEEP_ALIVE_S", "2.5")
    settings = Settings.load(port=9200, region=None)
    assert settings.port == 9200  # the command line wins
    assert settings.no_auth is True
    assert settings.data_dir == Path("/tmp/elsewhere")
    assert settings.keep_alive_s == 2.5
    assert settings.endpoint_url == "http://127.0.0.1:9200"
