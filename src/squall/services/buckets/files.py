"""Object bodies as files, written so that a crash never exposes half of one.

Every body gets a fresh random name and is written under ``tmp/``, fsynced, then renamed into
place (and the directory fsynced). Metadata in SQLite points to the name only after that, so an
object becomes visible whole or not at all, and an overwrite is a new file plus a metadata update
(the old file is removed afterwards; a reader that has it open keeps reading it). Names are spread
over 256 subdirectories. This is the embedded tier's ``store.Bodies``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

from squall.stores.sql import Connection, SqlDatabase

COPY_CHUNK = 1024 * 1024


class BodyStore:
    """The ``objects/`` directory of a data dir."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._tmp = root / "tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)
        # Leftovers of writes a crash interrupted: never referenced by any metadata.
        for leftover in self._tmp.iterdir():
            with contextlib.suppress(OSError):
                leftover.unlink()

    def path(self, name: str) -> Path:
        return self.root / name[:2] / name

    def write(self, data: bytes) -> str:
        """Store ``data`` durably under a new name, returned."""
        return self._commit(lambda out: out.write(data))

    def concatenate(self, names: Iterable[str]) -> str:
        """A new body made of the bodies ``names``, in order (assembling a multipart upload)."""

        def fill(out: BinaryIO) -> None:
            for name in names:
                with open(self.path(name), "rb") as part:
                    shutil.copyfileobj(part, out, COPY_CHUNK)

        return self._commit(fill)

    def write_stream(self, source: BinaryIO) -> str:
        """A new body with what is left to read of ``source``, copied in chunks."""
        return self._commit(lambda out: shutil.copyfileobj(source, out, COPY_CHUNK))

    def copy(self, name: str) -> str:
        with self.open(name) as source:
            return self.write_stream(source)

    def open(self, name: str) -> BinaryIO:
        return open(self.path(name), "rb")

    def adopt(self, conn: Connection, name: str) -> None:
        return None  # a file is referenced by the row alone

    def remove(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(name).unlink()

    def discard(self, name: str) -> None:
        self.remove(name)

    def recover(self, db: SqlDatabase) -> None:
        """Remove the files no object or part names (written, but the server died before the commit)."""
        with db.read() as conn:
            referenced = {row[0] for row in conn.execute("SELECT file FROM objects UNION SELECT file FROM parts")}
        for name in self.names() - referenced:
            self.remove(name)

    def names(self) -> set[str]:
        """Every stored body (to find orphans a crash left between rename and metadata commit)."""
        return {
            entry.name
            for directory in self.root.iterdir()
            if directory.is_dir() and directory != self._tmp
            for entry in directory.iterdir()
        }

    def _commit(self, fill: Callable[[BinaryIO], object]) -> str:
        name = uuid.uuid4().hex
        temp = self._tmp / name
        try:
            with open(temp, "xb") as out:
                fill(out)
                out.flush()
                os.fsync(out.fileno())
            final = self.path(name)
            final.parent.mkdir(exist_ok=True)
            os.rename(temp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                temp.unlink()
            raise
        _fsync_dir(final.parent)
        return name


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
