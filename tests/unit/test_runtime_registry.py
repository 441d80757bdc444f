"""The runtime registry: which runtimes Squall runs and how their sandboxes start."""

from __future__ import annotations

import sys

import pytest

from squall.api import lambda_wire
from squall.errors import InvalidParameterValue
from squall.runtime import runtimes
from squall.runtime.bootstrap.zygote import ENTRIES


def test_names() -> None:
    assert runtimes.names() == (
        "python3.11",
        "python3.12",
        "python3.13",
        "nodejs18.x",
        "nodejs20.x",
        "nodejs22.x",
        "provided",
        "provided.al2",
        "provided.al2023",
    )
    assert runtimes.names() == lambda_wire.SUPPORTED_RUNTIMES


def test_every_runtime_has_an_in_sandbox_entry() -> None:
    assert {runtimes.get(name).entry for name in runtimes.names()} <= set(ENTRIES)


def test_python_runtimes_are_native_with_a_zygote_each() -> None:
    runtime = runtimes.get("python3.11")
    assert (runtime.entry, runtime.zygote_key, runtime.sets_execution_env) == ("native", "python3.11", True)
    assert runtime.zygote_setup() == {}


def test_custom_runtimes_share_one_zygote_without_preloads() -> None:
    keys = {runtimes.get(name).zygote_key for name in ("provided", "provided.al2", "provided.al2023")}
    assert keys == {"provided"}
    runtime = runtimes.get("provided.al2023")
    assert runtime.entry == "runtime-api"
    assert runtime.sets_execution_env is False
    assert runtime.zygote_setup() == {"preload": False}
    interpreter = runtime.interpreter()
    assert interpreter.extra_site == []  # no site-packages of Squall's inside the sandbox
    assert interpreter.executable == getattr(sys, "_base_executable", sys.executable)


def test_unknown_runtime() -> None:
    with pytest.raises(InvalidParameterValue, match=r"java21 is not supported"):
        runtimes.get("java21")
