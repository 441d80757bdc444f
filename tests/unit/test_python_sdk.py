"""boto3 for Python runtimes other than Squall's own interpreter."""

import subprocess
from pathlib import Path

import pytest

from squall.runtime import python_sdk
from squall.runtime.interpreters import _candidates


def test_the_sdk_is_boto3_and_what_it_requires_without_extras() -> None:
    names = {dist.metadata["Name"].lower() for dist in python_sdk.distributions()}
    assert {"boto3", "botocore", "s3transfer", "jmespath"} <= names
    assert "awscrt" not in names  # botocore's optional [crt] extra


def test_another_python_imports_boto3_from_the_folder_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = [p for v in ("3.13", "3.12", "3.10") for p in _candidates(v)]
    other = next((p for p in runs if subprocess.run([p, "-c", "pass"], capture_output=True).returncode == 0), None)
    if other is None:
        pytest.skip("no Python other than Squall's own on this machine")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    python_sdk.sdk_site.cache_clear()
    site = python_sdk.sdk_site()
    assert Path(site).parent == tmp_path / "squall"
    assert Path(site).stat().st_mode & 0o777 == 0o755  # sandboxes run as uids of their own
    assert not any(Path(site).rglob("*.so"))  # pure Python only: nothing built for our interpreter
    code = f"import sys; sys.path.insert(0, {site!r}); import boto3; print(boto3.__file__)"
    result = subprocess.run([other, "-I", "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(site)
    assert python_sdk.sdk_site() == site  # made once
    python_sdk.sdk_site.cache_clear()
