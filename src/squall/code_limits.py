"""Lambda's limit on a function's code plus all its layers, unzipped (262,144,000 bytes).

Sizes come from each zip's central directory (the sizes its entries declare), so checking a package
never decompresses it; the code store has already verified, when it stored a package, that its
entries really hold what they declare. Stored packages never change, so their sizes are cached.
"""

from __future__ import annotations

import io
import threading
import zipfile
from collections.abc import Sequence
from typing import IO

from squall.config import CODE_SIZE_UNZIPPED
from squall.errors import InvalidParameterValue
from squall.models import LayerRef
from squall.stores.code import CodeStore


def combined_too_large(actual: int, limit: int = CODE_SIZE_UNZIPPED) -> str:
    """Lambda's message (InvalidParameterValueException), as users quote it from real responses."""
    return (
        f"Function code combined with layers exceeds the maximum allowed size of {limit} bytes. "
        f"The actual size is {actual} bytes."
    )


def unzipped_size(archive: IO[bytes]) -> int:
    """What a zip's files add up to once unpacked, from its central directory alone."""
    with zipfile.ZipFile(archive) as zf:
        return sum(info.file_size for info in zf.infolist() if not info.is_dir())


class PackageSizes:
    """Checks the code-plus-layers limit against packages in a ``CodeStore``."""

    def __init__(self, code: CodeStore, limit: int = CODE_SIZE_UNZIPPED) -> None:
        self.code = code
        self.limit = limit
        self._sizes: dict[str, int] = {}
        self._lock = threading.Lock()

    def stored_size(self, code_hex: str) -> int:
        """The unzipped size of a stored package (the store's layout: ``<root>/<hex>.zip``)."""
        with self._lock:
            cached = self._sizes.get(code_hex)
        if cached is not None:
            return cached
        self.code.size_of(code_hex)  # CodeMissing with the store's message if it is not there
        with open(self.code.root / f"{code_hex}.zip", "rb") as archive:
            size = unzipped_size(archive)
        with self._lock:
            self._sizes[code_hex] = size
        return size

    def check(self, code: bytes | str, layers: Sequence[LayerRef]) -> None:
        """Refuse a function whose code (new zip bytes, or a stored package's hex) and layers are too big.

        Without layers the code store's own unzipped-size check applies. New bytes that are not a
        readable zip are left to the code store too, which refuses them with Lambda's message.
        """
        if not layers:
            return
        if isinstance(code, bytes):
            try:
                total = unzipped_size(io.BytesIO(code))
            except (zipfile.BadZipFile, OSError, ValueError, EOFError):
                return
        else:
            total = self.stored_size(code)
        total += sum(self.stored_size(layer.code_hex) for layer in layers)
        if total > self.limit:
            raise InvalidParameterValue(combined_too_large(total, self.limit))
