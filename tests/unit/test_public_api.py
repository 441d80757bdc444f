"""The public API is pinned: changing it is a decision, not an accident."""

import subprocess
import sys

import squall


def test_public_names() -> None:
    assert sorted(squall.__all__) == sorted(
        [
            "Executor",
            "LocalExecutor",
            "MetadataStore",
            "Platform",
            "Settings",
            "SqliteMetadataStore",
            "__version__",
        ]
    )
    for name in squall.__all__:
        assert getattr(squall, name) is not None


def test_importing_squall_stays_light() -> None:
    # Sandboxes import squall's bootstrap with only the standard library available.
    code = (
        "import sys, squall.runtime.bootstrap.shim; "
        "print(sorted(m for m in ('msgspec', 'starlette', 'uvicorn') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
