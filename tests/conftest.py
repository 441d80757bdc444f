"""Shared test fixtures: deployment packages built from the functions in ``tests/functions``."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

FUNCTIONS = Path(__file__).parent / "functions"


def make_zip(files: dict[str, str | bytes]) -> bytes:
    """A deployment package from file names and contents."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def function_zip(module: str, as_name: str | None = None) -> bytes:
    """The package holding ``tests/functions/<module>.py`` (as ``<as_name>.py`` if given)."""
    source = (FUNCTIONS / f"{module}.py").read_text()
    return make_zip({f"{as_name or module}.py": source})
