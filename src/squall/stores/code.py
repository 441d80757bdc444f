"""The code store: deployment packages addressed by the SHA-256 of their bytes.

Layout under ``root``: ``<hex>.zip`` is the package exactly as uploaded (mode 0600) and ``<hex>/``
its unpacked tree (dirs 0755, files 0644 or 0755 when the zip marks them executable), readable
but not writable by a sandbox user. Both appear atomically: they are built under a temporary
name in ``root`` and renamed into place, so a reader never sees half a package and concurrent
writers (threads or processes) simply race to an identical result.

Packages are checked on the way in with Lambda's rules and messages: a zip Python's ``zipfile``
can read and whose CRCs hold, unzipped size below ``CODE_SIZE_UNZIPPED``, and no entry that could
land outside its directory (absolute or ``..`` paths, symlinks that lead out).

With ``shared`` (``SharedPackages``; PostgreSQL in the scale-out tier) the zip bytes are written
there too, before they appear locally, and ``root`` becomes a cache that fills on first use: a
package one server stored is readable, checked by its digest and unpacked the same way on every
server.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import lzma
import os
import re
import shutil
import stat
import tempfile
import threading
import time
import zipfile
import zlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import msgspec

from squall.config import CODE_SIZE_UNZIPPED, CODE_SIZE_ZIPPED
from squall.errors import InvalidParameterValue, RequestTooLarge, ServiceError, StoreUnavailable

# The messages below are Lambda's own, as users quote them from real CreateFunction and
# UpdateFunctionCode responses (InvalidParameterValueException; RequestEntityTooLargeException).

#: Lambda's message for bytes that are not a readable zip archive.
UNZIP_FAILED = "Could not unzip uploaded file. Please check your file, then try to upload again."

_HEX = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1024 * 1024
_MAX_LINK = 4096  # longest symlink target we read from an archive
_MAX_HOPS = 40  # symlinks followed while resolving one path, as Linux's MAXSYMLINKS
_STALE_S = 3600.0  # temporary files older than this are leftovers of a crash
_TMP_PREFIXES = (".put-", ".unpack-")
# What a damaged or hostile archive can make zipfile raise while reading it.
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    OSError,
    RuntimeError,  # encrypted entries
    NotImplementedError,  # unsupported compression methods
    ValueError,  # includes UnicodeDecodeError
)


class CodeRef(msgspec.Struct, frozen=True, kw_only=True):
    """The address of a stored package: ``sha256_b64`` is what Lambda reports as ``CodeSha256``."""

    sha256_b64: str
    hex: str
    size: int


class CodeMissing(ServiceError, LookupError):
    """A package the metadata refers to is not in the code store."""


def unzipped_too_large(limit: int = CODE_SIZE_UNZIPPED) -> str:
    """Lambda's message for a package whose files add up to ``limit`` bytes or more."""
    return f"Unzipped size must be smaller than {limit} bytes"


def request_too_large(limit: int, operation: str) -> str:
    """Lambda's message for a zip over the direct-upload limit; it counts the base64 request body."""
    return f"Request must be smaller than {-(-limit * 4 // 3)} bytes for the {operation} operation"


class SharedPackages(ABC):
    """Where the zip bytes of every package live when several servers share one code store."""

    @abstractmethod
    def put(self, hex: str, zip_bytes: bytes) -> None:
        """Store a package under its SHA-256; storing it again is a no-op."""

    @abstractmethod
    def get(self, hex: str) -> bytes | None:
        """The package's bytes, or None if it was never stored."""

    @abstractmethod
    def size(self, hex: str) -> int | None:
        """The package's zipped size, or None if it was never stored."""

    @abstractmethod
    def total_size(self) -> int:
        """Bytes of every stored package."""

    @abstractmethod
    def close(self) -> None: ...


@dataclass(frozen=True)
class _Entry:
    info: zipfile.ZipInfo
    parts: tuple[str, ...]
    kind: str  # "dir", "file" or "link"
    executable: bool
    link: str = ""


class CodeStore:
    """Content-addressed deployment packages on the local filesystem (a cache of ``shared``, when
    given); safe across threads."""

    def __init__(self, root: Path, shared: SharedPackages | None = None) -> None:
        self.root = Path(root)
        self.shared = shared
        try:
            # Traversable but not listable: sandboxes reach their own tree by name, nothing else.
            self.root.mkdir(mode=0o711, parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(f"Cannot create code store {self.root}: {exc}") from exc
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._sweep()

    # --- packages ------------------------------------------------------------------------------
    def put(
        self,
        zip_bytes: bytes,
        *,
        max_zipped: int | None = CODE_SIZE_ZIPPED,
        operation: str = "CreateFunction",
    ) -> CodeRef:
        """Check and store a package; storing the same bytes again is a no-op.

        ``max_zipped`` is the direct-upload limit (None for packages fetched from a bucket, which
        Lambda bounds by their unzipped size only); ``operation`` names the API call in its message.
        """
        if max_zipped is not None and len(zip_bytes) > max_zipped:
            raise RequestTooLarge(request_too_large(max_zipped, operation))
        digest = hashlib.sha256(zip_bytes).digest()
        ref = CodeRef(sha256_b64=base64.b64encode(digest).decode(), hex=digest.hex(), size=len(zip_bytes))
        final = self._zip_path(ref.hex)
        # Locally present means shared too (shared is written first), unless this cache outlived
        # the shared store it was filled from; then the shared copy is written again.
        if final.is_file() and (self.shared is None or self.shared.size(ref.hex) is not None):
            return ref
        _check_package(zip_bytes)
        if self.shared is not None:
            self.shared.put(ref.hex, zip_bytes)
        self._write_zip(final, zip_bytes)
        return ref

    def has(self, hex: str) -> bool:
        """Whether the package ``hex`` is stored."""
        return self._zip_path(hex).is_file() or (self.shared is not None and self.shared.size(hex) is not None)

    def get(self, hex: str) -> bytes:
        """The package's zip bytes, as uploaded."""
        try:
            return self._cached(hex).read_bytes()
        except FileNotFoundError as exc:
            raise CodeMissing(f"Code package {hex} is not in the code store") from exc
        except OSError as exc:
            raise StoreUnavailable(f"Cannot read package {hex}: {exc}") from exc

    def total_size(self) -> int:
        """Bytes of every stored package: AccountUsage.TotalCodeSize."""
        if self.shared is not None:
            return self.shared.total_size()
        return sum(path.stat().st_size for path in self.root.glob("*.zip"))

    def size_of(self, hex: str) -> int:
        """The package's zipped size in bytes."""
        try:
            return self._zip_path(hex).stat().st_size
        except FileNotFoundError as exc:
            size = None if self.shared is None else self.shared.size(hex)
            if size is None:
                raise CodeMissing(f"Code package {hex} is not in the code store") from exc
            return size
        except OSError as exc:
            raise StoreUnavailable(f"Cannot read package {hex}: {exc}") from exc

    def close(self) -> None:
        if self.shared is not None:
            self.shared.close()

    def unpacked(self, hex: str) -> Path:
        """The directory holding the package's files, unpacking it on first use."""
        final = self._tree_path(hex)
        if final.is_dir():
            return final
        with self._lock_for(hex):
            if final.is_dir():  # another thread finished while we waited
                return final
            source = self._cached(hex)
            if not source.is_file():
                raise CodeMissing(f"Code package {hex} is not in the code store")
            try:
                self._unpack(source, final)
            except InvalidParameterValue as exc:
                # It passed these checks when stored, so the stored file is damaged or was planted.
                raise StoreUnavailable(f"Stored package {hex} cannot be unpacked: {exc}") from exc
            except _ZIP_ERRORS as exc:  # OSError included
                raise StoreUnavailable(f"Cannot unpack package {hex}: {exc}") from exc
        return final

    # --- internals -------------------------------------------------------------------------------
    def _write_zip(self, final: Path, zip_bytes: bytes) -> None:
        """Write a package's bytes to ``final`` atomically and durably."""
        try:
            fd, tmp_name = tempfile.mkstemp(prefix=".put-", suffix=".zip", dir=self.root)
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(zip_bytes)
                    out.flush()
                    os.fsync(out.fileno())
                # Replacing a file raced in by another writer is harmless: the bytes are identical.
                os.replace(tmp_name, final)
            except BaseException:
                _unlink_quietly(Path(tmp_name))
                raise
            _fsync_dir(self.root)
        except OSError as exc:
            raise StoreUnavailable(f"Cannot store package {final.stem}: {exc}") from exc

    def _cached(self, hex: str) -> Path:
        """The package's local zip, fetched from ``shared`` first if this cache lacks it (the path
        may still not exist: the package is nowhere)."""
        final = self._zip_path(hex)
        if self.shared is None or final.is_file():
            return final
        zip_bytes = self.shared.get(hex)
        if zip_bytes is None:
            return final
        if hashlib.sha256(zip_bytes).hexdigest() != hex:
            raise StoreUnavailable(f"Shared package {hex} does not match its SHA-256")
        self._write_zip(final, zip_bytes)
        return final

    def _zip_path(self, hex: str) -> Path:
        return self.root / f"{_checked_hex(hex)}.zip"

    def _tree_path(self, hex: str) -> Path:
        return self.root / _checked_hex(hex)

    def _lock_for(self, hex: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(hex, threading.Lock())

    def _unpack(self, source: Path, final: Path) -> None:
        tmp = Path(tempfile.mkdtemp(prefix=f".unpack-{final.name[:16]}-", dir=self.root))
        try:
            with zipfile.ZipFile(source) as zf:
                _extract(zf, tmp)
            # Make the new files durable before they become visible: a tree that exists after a
            # crash is trusted as complete. One sync beats an fsync per file of a large package.
            os.sync()
            try:
                os.rename(tmp, final)
            except OSError:
                if not final.is_dir():
                    raise
                shutil.rmtree(tmp, ignore_errors=True)  # another process got there first
            _fsync_dir(self.root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _sweep(self) -> None:
        """Remove temporary files and trees left behind by a crash."""
        cutoff = time.time() - _STALE_S
        try:
            leftovers = [p for p in self.root.iterdir() if p.name.startswith(_TMP_PREFIXES)]
        except OSError:
            return
        for path in leftovers:
            try:
                if path.lstat().st_mtime >= cutoff:
                    continue
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink()
            except OSError:
                continue


def _checked_hex(hex: str) -> str:
    if not _HEX.fullmatch(hex):
        raise ValueError(f"Not a SHA-256 hex digest: {hex!r}")
    return hex


def _check_package(zip_bytes: bytes) -> None:
    """Raise ``InvalidParameterValue`` with Lambda's message unless the bytes are a usable package."""
    try:
        with zipfile.ZipFile(io.BytesIO(zip_bytes)) as zf:
            _entries(zf)  # layout and size checks first: they are cheap
            bad = zf.testzip()  # then every CRC, which reads every byte
    except InvalidParameterValue:
        raise
    except _ZIP_ERRORS as exc:
        raise InvalidParameterValue(UNZIP_FAILED) from exc
    if bad is not None:
        raise InvalidParameterValue(UNZIP_FAILED)


def _entries(zf: zipfile.ZipFile) -> list[_Entry]:
    """Classify every entry, refusing unsafe paths, conflicting entries and oversize packages."""
    entries: list[_Entry] = []
    kinds: dict[tuple[str, ...], str] = {}
    links: dict[tuple[str, ...], str] = {}
    total = 0
    for info in zf.infolist():
        name = info.filename
        if not name or "\x00" in name or name.startswith("/"):
            raise InvalidParameterValue(UNZIP_FAILED)
        parts = tuple(p for p in name.split("/") if p not in ("", "."))
        if ".." in parts:
            raise InvalidParameterValue(UNZIP_FAILED)
        mode = info.external_attr >> 16
        if info.is_dir() or stat.S_ISDIR(mode):
            kind = "dir"
        elif stat.S_ISLNK(mode):
            kind = "link"
        else:
            kind = "file"
        if not parts:
            if kind == "dir":
                continue  # an entry for the archive's root directory
            raise InvalidParameterValue(UNZIP_FAILED)
        _claim_path(kinds, parts, kind)
        link = ""
        if kind == "link":
            if info.file_size > _MAX_LINK:
                raise InvalidParameterValue(UNZIP_FAILED)
            link = zf.read(info).decode()
            if not link or link.startswith("/") or "\x00" in link:
                raise InvalidParameterValue(UNZIP_FAILED)
            links[parts] = link
        if kind != "dir":
            total += info.file_size
        entries.append(_Entry(info, parts, kind, bool(mode & 0o111), link))
    if total >= CODE_SIZE_UNZIPPED:
        raise InvalidParameterValue(unzipped_too_large())
    for parts in links:
        if _resolve(parts, links) is None:
            raise InvalidParameterValue(UNZIP_FAILED)
    return entries


def _claim_path(kinds: dict[tuple[str, ...], str], parts: tuple[str, ...], kind: str) -> None:
    """Record where an entry lands; refuse one that clashes with an earlier entry's kind."""
    for depth in range(1, len(parts)):
        parent = parts[:depth]
        if kinds.setdefault(parent, "dir") != "dir":
            raise InvalidParameterValue(UNZIP_FAILED)  # a file or symlink used as a directory
    if kinds.setdefault(parts, kind) != kind:
        raise InvalidParameterValue(UNZIP_FAILED)  # the same path as a file, a dir or a symlink


def _resolve(path: tuple[str, ...], links: dict[tuple[str, ...], str]) -> tuple[str, ...] | None:
    """Where ``path`` leads once the package's own symlinks are followed, as the kernel would
    (``..`` applies after a symlink is replaced by its target); None if it climbs out."""
    resolved: list[str] = []
    pending = list(path)
    hops = 0
    while pending:
        part = pending.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if not resolved:
                return None
            resolved.pop()
            continue
        resolved.append(part)
        target = links.get(tuple(resolved))
        if target is not None:
            hops += 1
            if hops > _MAX_HOPS:
                break  # a loop: opening it fails with ELOOP, it leads nowhere
            resolved.pop()
            pending = target.split("/") + pending
    return tuple(resolved)


def _extract(zf: zipfile.ZipFile, dest: Path) -> None:
    """Write the package into the fresh private directory ``dest``."""
    entries = _entries(zf)
    budget = CODE_SIZE_UNZIPPED
    for entry in entries:
        target = dest.joinpath(*entry.parts)
        if entry.kind == "dir":
            target.mkdir(parents=True, exist_ok=True)
        elif entry.kind == "file":
            target.parent.mkdir(parents=True, exist_ok=True)
            budget -= _write_file(zf, entry, target, budget)
    # Symlinks last, so that no file above was ever written through one.
    real_dest = os.path.realpath(dest)
    for entry in entries:
        if entry.kind != "link":
            continue
        target = dest.joinpath(*entry.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink():
            target.unlink()  # a repeated entry: the last one wins, as with files
        os.symlink(entry.link, target)
    # Now that every link exists, follow each chain for real (``a -> b/..`` tricks included).
    for entry in entries:
        if entry.kind == "link":
            real = os.path.realpath(dest.joinpath(*entry.parts))
            if real != real_dest and not real.startswith(real_dest + os.sep):
                raise InvalidParameterValue(UNZIP_FAILED)
    for here, dirs, _files in os.walk(dest):  # does not follow symlinks
        for name in dirs:
            os.chmod(os.path.join(here, name), 0o755)
    os.chmod(dest, 0o755)


def _write_file(zf: zipfile.ZipFile, entry: _Entry, target: Path, budget: int) -> int:
    """Copy one entry to ``target`` and return the bytes written, never more than ``budget``."""
    mode = 0o755 if entry.executable else 0o644
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    written = 0
    with os.fdopen(fd, "wb") as out, zf.open(entry.info) as src:
        os.fchmod(out.fileno(), mode)  # whatever the umask says
        while chunk := src.read(_CHUNK):
            written += len(chunk)
            if written >= budget:
                raise InvalidParameterValue(unzipped_too_large())
            out.write(chunk)
    return written


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()
