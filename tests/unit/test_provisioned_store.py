"""The provisioned concurrency config store: a real SQLite file, across reopenings."""

import re
from pathlib import Path

import pytest

from squall.errors import StoreUnavailable
from squall.invoke.provisioned_store import ProvisionedConfig, ProvisionedStore, timestamp


def config(function: str, qualifier: str, requested: int = 1) -> ProvisionedConfig:
    return ProvisionedConfig(
        function_name=function, qualifier=qualifier, requested=requested, last_modified=timestamp(0)
    )


def test_put_replaces_get_list_and_survive_reopening(tmp_path: Path) -> None:
    store = ProvisionedStore(tmp_path / "provisioned.db")
    store.put(config("b", "2"))
    store.put(config("a", "live", 3))
    store.put(config("a", "1"))
    store.put(config("a", "1", 5))  # replaces
    assert store.get("a", "1") == config("a", "1", 5)
    assert store.get("a", "9") is None
    assert [(c.function_name, c.qualifier) for c in store.list()] == [("a", "1"), ("a", "live"), ("b", "2")]
    assert [c.qualifier for c in store.list("a")] == ["1", "live"]
    store.close()

    again = ProvisionedStore(tmp_path / "provisioned.db")
    assert again.get("a", "live") == config("a", "live", 3)
    assert len(again.list()) == 3
    again.close()


def test_delete_one_or_all_of_a_function(tmp_path: Path) -> None:
    store = ProvisionedStore(tmp_path / "provisioned.db")
    for qualifier in ("1", "2", "live"):
        store.put(config("a", qualifier))
    store.put(config("b", "1"))
    assert store.delete("a", "2") is True
    assert store.delete("a", "2") is False
    assert [c.qualifier for c in store.list("a")] == ["1", "live"]
    assert store.delete("a") is True
    assert store.list("a") == [] and [c.function_name for c in store.list()] == ["b"]
    assert store.delete("a") is False
    store.close()


def test_timestamp_format() -> None:
    assert timestamp(1577824129.9) == "2019-12-31T20:28:49+0000"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000", timestamp())


def test_errors_are_translated(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable):
        ProvisionedStore(tmp_path / "missing-dir" / "provisioned.db")
    store = ProvisionedStore(tmp_path / "provisioned.db")
    store.close()
    with pytest.raises(StoreUnavailable, match="Provisioned concurrency store failure"):
        store.list()
