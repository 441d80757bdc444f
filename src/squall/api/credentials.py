"""The root access key pair of a Squall server, kept in an AWS shared-credentials file.

On first start the server generates a key pair shaped like AWS's (``AKIA`` + 16 base32
characters, a 40-character secret) and writes ``<data_dir>/credentials`` with a ``[squall]``
profile, mode 0600, atomically. Later starts read it back, so clients keep working across
restarts. Explicit keys (``SQUALL_ACCESS_KEY_ID`` / ``SQUALL_SECRET_ACCESS_KEY``) win and are
written to the file too, so the profile always matches what the server accepts.
"""

from __future__ import annotations

import base64
import configparser
import contextlib
import os
import secrets
import shlex
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

PROFILE = "squall"
FILE_NAME = "credentials"
ACCESS_KEY_PREFIX = "AKIA"
_BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_HEADER = (
    "# Root credentials of this Squall server (AWS shared-credentials format).\n"
    "# Anyone who can read this file can call the server's API: keep it private.\n"
)


@dataclass(frozen=True)
class Credentials:
    """The server's root key pair; ``created`` is true when this start wrote new keys to the file."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    created: bool = False


def credentials_path(data_dir: Path) -> Path:
    """Where the credentials file of a data directory lives."""
    return data_dir / FILE_NAME


def load_or_create_credentials(data_dir: Path, access_key_id: str | None, secret_access_key: str | None) -> Credentials:
    """The server's key pair: the explicit one when both values are given, else the one in the
    credentials file, else a new one. Whatever is chosen is what the file holds afterwards."""
    if (access_key_id is None) != (secret_access_key is None):
        raise ValueError("set both SQUALL_ACCESS_KEY_ID and SQUALL_SECRET_ACCESS_KEY, or neither")
    path = credentials_path(data_dir)
    parser = _read(path)
    stored = _stored_pair(parser)
    if access_key_id is not None and secret_access_key is not None:
        _validate(access_key_id, secret_access_key)
        wanted = (access_key_id, secret_access_key)
    elif stored is not None:
        _restrict_mode(path)
        return Credentials(stored[0], stored[1], created=False)
    else:
        wanted = (generate_access_key_id(), generate_secret_access_key())
    if stored == wanted:
        _restrict_mode(path)
        return Credentials(*wanted, created=False)
    if not parser.has_section(PROFILE):
        parser.add_section(PROFILE)
    parser.set(PROFILE, "aws_access_key_id", wanted[0])
    parser.set(PROFILE, "aws_secret_access_key", wanted[1])
    _write_atomically(path, parser)
    return Credentials(*wanted, created=True)


def generate_access_key_id() -> str:
    """``AKIA`` followed by 16 random base32 characters, like an AWS access key id."""
    return ACCESS_KEY_PREFIX + "".join(secrets.choice(_BASE32) for _ in range(16))


def generate_secret_access_key() -> str:
    """40 random base64 characters (240 bits), like an AWS secret access key."""
    return base64.b64encode(secrets.token_bytes(30)).decode()


def usage_hint(path: Path, endpoint_url: str, region: str) -> str:
    """What the server prints on first start: how to point the AWS CLI and boto3 at it."""
    file = shlex.quote(str(path.absolute()))
    url = shlex.quote(endpoint_url)
    return (
        f"Squall API credentials were written to {path.absolute()} (profile '{PROFILE}').\n"
        "Use them from a shell:\n"
        "\n"
        f"  export AWS_SHARED_CREDENTIALS_FILE={file} AWS_PROFILE={PROFILE} AWS_DEFAULT_REGION={region}\n"
        f"  aws --endpoint-url {url} lambda list-functions\n"
        "\n"
        f"  (or also export AWS_ENDPOINT_URL={url} and drop --endpoint-url)\n"
        "\n"
        "or from Python, with the same variables exported:\n"
        "\n"
        "  import boto3\n"
        f'  client = boto3.client("lambda", endpoint_url="{endpoint_url}", region_name="{region}")\n'
        "  print(client.list_functions())\n"
    )


def _read(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return parser
    try:
        parser.read_string(text, source=str(path))
    except configparser.Error as exc:
        raise ValueError(f"{path} is not a valid AWS credentials file: {exc}") from exc
    return parser


def _stored_pair(parser: configparser.ConfigParser) -> tuple[str, str] | None:
    if not parser.has_section(PROFILE):
        return None
    key = parser.get(PROFILE, "aws_access_key_id", fallback="").strip()
    secret = parser.get(PROFILE, "aws_secret_access_key", fallback="").strip()
    return (key, secret) if key and secret else None


def _validate(access_key_id: str, secret_access_key: str) -> None:
    for name, value in (("access key id", access_key_id), ("secret access key", secret_access_key)):
        if not value or value != value.strip() or any(c in value for c in "\r\n"):
            raise ValueError(f"the {name} must be non-empty, on one line, without surrounding spaces")
    if "/" in access_key_id:
        raise ValueError("the access key id must not contain '/' (it is part of the SigV4 credential scope)")


def _write_atomically(path: Path, parser: configparser.ConfigParser) -> None:
    """Write to a private temporary file next to ``path``, fsync, then rename over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(_HEADER)
            parser.write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _restrict_mode(path: Path) -> None:
    """Take group and other permissions off a credentials file someone loosened."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        path.chmod(mode & 0o700)
