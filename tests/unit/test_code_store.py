"""The code store: checks on the way in, content addressing, and safe, shareable unpacking."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import stat
import threading
import time
import warnings
import zipfile
from pathlib import Path

import pytest

from squall.config import CODE_SIZE_UNZIPPED, CODE_SIZE_ZIPPED
from squall.errors import InvalidParameterValue, RequestTooLarge, StoreUnavailable
from squall.stores.code import UNZIP_FAILED, CodeMissing, CodeRef, CodeStore

HANDLER = b"def handler(event, context):\n    return event\n"


def make_zip(*entries: tuple[str, bytes, int], system: int = 3) -> bytes:
    """A zip of (name, data, unix mode) entries; a mode with S_IFLNK makes a symlink."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name)
            info.create_system = system
            if not stat.S_IFMT(mode):
                mode |= stat.S_IFDIR if name.endswith("/") else stat.S_IFREG
            info.external_attr = mode << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # duplicate names are made on purpose
                zf.writestr(info, data)
    return buf.getvalue()


def symlink(name: str, target: str) -> tuple[str, bytes, int]:
    return (name, target.encode(), stat.S_IFLNK | 0o777)


def zeros_zip(*sizes: int) -> bytes:
    """Files of zeros, streamed in: hundreds of MB unzipped, a few hundred KB zipped."""
    buf = io.BytesIO()
    chunk = bytes(8 * 1024 * 1024)
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for i, size in enumerate(sizes):
            with zf.open(f"zeros-{i}.bin", "w", force_zip64=True) as out:
                left = size
                while left:
                    n = min(left, len(chunk))
                    out.write(chunk[:n])
                    left -= n
    return buf.getvalue()


@pytest.fixture
def store(tmp_path: Path) -> CodeStore:
    return CodeStore(tmp_path / "code")


def stored_names(store: CodeStore) -> list[str]:
    return sorted(p.name for p in store.root.iterdir())


# --- put / get ----------------------------------------------------------------------------------


def test_put_stores_a_valid_zip_under_its_sha256(store: CodeStore) -> None:
    data = make_zip(("app.py", HANDLER, 0o644))
    ref = store.put(data)
    digest = hashlib.sha256(data).digest()
    assert ref == CodeRef(sha256_b64=base64.b64encode(digest).decode(), hex=digest.hex(), size=len(data))
    assert store.has(ref.hex)
    assert store.get(ref.hex) == data
    assert store.size_of(ref.hex) == len(data)
    assert stored_names(store) == [f"{ref.hex}.zip"]
    assert stat.S_IMODE((store.root / f"{ref.hex}.zip").stat().st_mode) == 0o600
    assert stat.S_IMODE(store.root.stat().st_mode) == 0o711


def test_put_is_idempotent(store: CodeStore) -> None:
    data = make_zip(("app.py", HANDLER, 0o644))
    first = store.put(data)
    inode = (store.root / f"{first.hex}.zip").stat().st_ino
    assert store.put(data) == first
    assert stored_names(store) == [f"{first.hex}.zip"]
    assert (store.root / f"{first.hex}.zip").stat().st_ino == inode


def test_concurrent_puts_of_the_same_bytes_agree(store: CodeStore) -> None:
    data = make_zip(("app.py", HANDLER, 0o644))
    barrier = threading.Barrier(6)
    refs: list[CodeRef] = []

    def put() -> None:
        barrier.wait()
        refs.append(store.put(data))

    threads = [threading.Thread(target=put) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(refs) == 6 and len(set(refs)) == 1
    assert stored_names(store) == [f"{refs[0].hex}.zip"]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"definitely not a zip",
        b"PK\x03\x04" + b"\x00" * 100,
        make_zip(("app.py", HANDLER, 0o644))[:-30],  # truncated: no end of central directory
    ],
    ids=["empty", "text", "bad-header", "truncated"],
)
def test_put_refuses_what_is_not_a_zip_with_lambdas_message(store: CodeStore, data: bytes) -> None:
    with pytest.raises(InvalidParameterValue) as caught:
        store.put(data)
    assert caught.value.message == UNZIP_FAILED
    assert UNZIP_FAILED == "Could not unzip uploaded file. Please check your file, then try to upload again."
    assert caught.value.code == "InvalidParameterValueException" and caught.value.status == 400
    assert stored_names(store) == []


def test_put_refuses_a_zip_with_corrupted_contents(store: CodeStore) -> None:
    payload = b"x = 'some handler code that is stored uncompressed'\n" * 20
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("app.py", payload)
    data = bytearray(buf.getvalue())
    at = bytes(data).index(payload) + 100
    data[at] ^= 0xFF  # the directory still parses; the CRC no longer matches
    with pytest.raises(InvalidParameterValue, match="Could not unzip"):
        store.put(bytes(data))
    assert stored_names(store) == []


def test_put_refuses_a_zip_over_the_direct_upload_limit(store: CodeStore) -> None:
    data = b"\0" * (CODE_SIZE_ZIPPED + 1)
    with pytest.raises(RequestTooLarge) as caught:
        store.put(data)
    assert caught.value.message == "Request must be smaller than 69905067 bytes for the CreateFunction operation"
    assert caught.value.code == "RequestEntityTooLargeException" and caught.value.status == 413
    with pytest.raises(RequestTooLarge, match="for the UpdateFunctionCode operation"):
        store.put(data, operation="UpdateFunctionCode")
    # Without the direct-upload limit (code from a bucket) the same bytes get to the zip check.
    with pytest.raises(InvalidParameterValue, match="Could not unzip"):
        store.put(data, max_zipped=None)


@pytest.mark.slow
def test_put_refuses_300_mb_of_zeros_unzipped(store: CodeStore) -> None:
    data = zeros_zip(300 * 1024 * 1024)
    assert len(data) < 2 * 1024 * 1024
    with pytest.raises(InvalidParameterValue) as caught:
        store.put(data)
    assert caught.value.message == "Unzipped size must be smaller than 262144000 bytes"
    assert stored_names(store) == []


@pytest.mark.slow
def test_unzipped_limit_counts_every_file_and_is_exclusive(store: CodeStore) -> None:
    half = CODE_SIZE_UNZIPPED // 2
    with pytest.raises(InvalidParameterValue, match=r"^Unzipped size must be smaller than 262144000 bytes$"):
        store.put(zeros_zip(half, CODE_SIZE_UNZIPPED - half))  # exactly the limit: refused
    ref = store.put(zeros_zip(half, CODE_SIZE_UNZIPPED - half - 1))  # one byte less: fine
    assert store.has(ref.hex)


# --- unsafe packages ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "entries",
    [
        [("../evil.py", b"x", 0o644)],
        [("/etc/evil.py", b"x", 0o644)],
        [("lib/../../evil.py", b"x", 0o644)],
        [symlink("escape", "../../etc/passwd")],
        [symlink("absolute", "/etc/passwd")],
        [symlink("lib/up", "../.."), ("app.py", HANDLER, 0o644)],
        # Each link looks harmless alone; followed as the kernel does, ``q`` leaves the package.
        [symlink("d/s", ".."), symlink("q", "d/s/..")],
        # A symlink used as a directory would let a later file be written through it.
        [symlink("lib", "."), ("lib/app.py", HANDLER, 0o644)],
        [("app.py", HANDLER, 0o644), ("app.py/inner", b"x", 0o644)],
        [("app.py", HANDLER, 0o644), symlink("app.py", "other.py")],
    ],
    ids=[
        "dotdot",
        "absolute",
        "nested-dotdot",
        "link-out",
        "link-absolute",
        "link-up-too-far",
        "link-chain",
        "write-through-link",
        "file-as-dir",
        "file-and-link",
    ],
)
def test_put_refuses_packages_that_could_escape_their_directory(
    store: CodeStore, entries: list[tuple[str, bytes, int]]
) -> None:
    with pytest.raises(InvalidParameterValue, match="Could not unzip"):
        store.put(make_zip(*entries))
    assert stored_names(store) == []


def test_unpacked_refuses_a_planted_zip_slip_package(store: CodeStore, tmp_path: Path) -> None:
    # Bypass put()'s checks, as a damaged or tampered store would.
    data = make_zip(("ok.py", b"x", 0o644), ("../../escaped.py", b"pwned", 0o644))
    hex = hashlib.sha256(data).hexdigest()
    (store.root / f"{hex}.zip").write_bytes(data)
    with pytest.raises(StoreUnavailable) as caught:
        store.unpacked(hex)
    assert isinstance(caught.value.__cause__, InvalidParameterValue)
    assert not (tmp_path / "escaped.py").exists()
    assert not (store.root / "escaped.py").exists()
    assert stored_names(store) == [f"{hex}.zip"]  # no tree, no temporary left behind


def test_unpacked_refuses_a_planted_symlink_chain(store: CodeStore) -> None:
    data = make_zip(symlink("d/s", ".."), symlink("q", "d/s/.."))
    hex = hashlib.sha256(data).hexdigest()
    (store.root / f"{hex}.zip").write_bytes(data)
    with pytest.raises(StoreUnavailable):
        store.unpacked(hex)
    assert stored_names(store) == [f"{hex}.zip"]


# --- unpacking ----------------------------------------------------------------------------------


def test_unpacked_tree_is_readable_not_writable_and_keeps_the_executable_bit(store: CodeStore) -> None:
    data = make_zip(
        ("bootstrap", b"#!/bin/sh\necho hi\n", 0o755),
        ("app.py", HANDLER, 0o600),  # owner-only in the zip: still readable by the sandbox
        ("pkg/", b"", 0o700),
        ("pkg/mod.py", b"X = 1\n", 0o664),
        ("deep/er/tool", b"#!/bin/sh\n", 0o700),
    )
    old = os.umask(0o077)  # the tree's modes must not depend on the server's umask
    try:
        tree = store.unpacked(store.put(data).hex)
    finally:
        os.umask(old)
    modes = {str(p.relative_to(tree)): stat.S_IMODE(p.stat().st_mode) for p in [tree, *sorted(tree.rglob("*"))]}
    assert modes == {
        ".": 0o755,
        "app.py": 0o644,
        "bootstrap": 0o755,
        "deep": 0o755,
        "deep/er": 0o755,
        "deep/er/tool": 0o755,
        "pkg": 0o755,
        "pkg/mod.py": 0o644,
    }
    assert (tree / "app.py").read_bytes() == HANDLER
    assert all(p.stat().st_uid == os.getuid() for p in tree.rglob("*"))
    assert tree == store.root / hashlib.sha256(data).hexdigest()


def test_zip_without_unix_modes_unpacks_as_plain_readable_files(store: CodeStore) -> None:
    data = make_zip(("app.py", HANDLER, 0), system=0)  # as written on Windows
    tree = store.unpacked(store.put(data).hex)
    assert stat.S_IMODE((tree / "app.py").stat().st_mode) == 0o644


def test_symlinks_inside_the_package_are_kept(store: CodeStore) -> None:
    data = make_zip(
        ("lib/real/mod.py", b"X = 1\n", 0o644),
        symlink("lib/current", "real"),
        symlink("top", "lib/current/mod.py"),
        symlink("dangling", "not/there"),
    )
    tree = store.unpacked(store.put(data).hex)
    assert os.readlink(tree / "lib" / "current") == "real"
    assert (tree / "top").read_bytes() == b"X = 1\n"
    assert (tree / "dangling").is_symlink()


def test_a_repeated_file_entry_is_taken_from_the_last_one(store: CodeStore) -> None:
    data = make_zip(("app.py", b"old", 0o644), ("app.py", b"new", 0o755))
    tree = store.unpacked(store.put(data).hex)
    assert (tree / "app.py").read_bytes() == b"new"
    assert stat.S_IMODE((tree / "app.py").stat().st_mode) == 0o755


def test_unpacked_is_done_once(store: CodeStore) -> None:
    hex = store.put(make_zip(("app.py", HANDLER, 0o644))).hex
    tree = store.unpacked(hex)
    marker = tree / "app.py"
    inode = marker.stat().st_ino
    assert store.unpacked(hex) == tree
    assert marker.stat().st_ino == inode


def test_concurrent_unpacks_share_one_complete_tree(store: CodeStore) -> None:
    files = [(f"pkg/m{i}.py", f"X = {i}\n".encode() * 500, 0o644) for i in range(200)]
    hex = store.put(make_zip(*files, ("bootstrap", b"#!/bin/sh\n", 0o755))).hex
    threads = 8
    barrier = threading.Barrier(threads)
    results: list[Path] = []
    errors: list[BaseException] = []

    def unpack() -> None:
        barrier.wait()
        try:
            results.append(store.unpacked(hex))
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=unpack) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == []
    assert len(results) == threads and len(set(results)) == 1
    tree = results[0]
    assert len(list((tree / "pkg").iterdir())) == 200
    assert (tree / "pkg" / "m7.py").read_bytes() == b"X = 7\n" * 500
    assert stored_names(store) == sorted([hex, f"{hex}.zip"])


def test_a_second_store_on_the_same_root_reuses_the_tree(store: CodeStore) -> None:
    hex = store.put(make_zip(("app.py", HANDLER, 0o644))).hex
    tree = store.unpacked(hex)
    other = CodeStore(store.root)
    assert other.has(hex)
    assert other.unpacked(hex) == tree


# --- addressing and housekeeping ----------------------------------------------------------------


def test_missing_packages_raise_code_missing(store: CodeStore) -> None:
    hex = "0" * 64
    assert not store.has(hex)
    for call in (store.get, store.size_of, store.unpacked):
        with pytest.raises(CodeMissing):
            call(hex)
    assert issubclass(CodeMissing, LookupError)


@pytest.mark.parametrize("bad", ["../../etc/passwd", "A" * 64, "abc", "0" * 63 + "/"])
def test_addresses_must_be_sha256_hex(store: CodeStore, bad: str) -> None:
    with pytest.raises(ValueError):
        store.unpacked(bad)
    with pytest.raises(ValueError):
        store.get(bad)


def test_stale_temporaries_are_swept_on_open(tmp_path: Path) -> None:
    root = tmp_path / "code"
    root.mkdir()
    old_dir = root / ".unpack-deadbeef-x"
    (old_dir / "sub").mkdir(parents=True)
    old_file = root / ".put-abc.zip"
    old_file.write_bytes(b"half")
    fresh = root / ".unpack-fresh-y"
    fresh.mkdir()
    keep = root / ("a" * 64 + ".zip")
    keep.write_bytes(b"kept")
    past = time.time() - 7200
    for path in (old_dir, old_file, keep):
        os.utime(path, (past, past))
    CodeStore(root)
    assert sorted(p.name for p in root.iterdir()) == sorted([fresh.name, keep.name])
