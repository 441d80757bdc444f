"""The server's root credentials file: generation, reuse, overrides, and botocore reading it."""

from __future__ import annotations

import re
import shlex
import stat
from pathlib import Path

import boto3
import pytest

from squall.api.credentials import credentials_path, load_or_create_credentials, usage_hint


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def read_with_botocore(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """What boto3 finds in the file through the documented environment variables."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(path))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(path.parent / "no-such-config"))
    found = boto3.Session(profile_name="squall").get_credentials()
    assert found is not None
    return found.access_key, found.secret_key


def test_first_start_generates_aws_shaped_keys_in_a_private_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "data"
    creds = load_or_create_credentials(data_dir, None, None)
    assert creds.created
    assert re.fullmatch(r"AKIA[A-Z2-7]{16}", creds.access_key_id)
    assert re.fullmatch(r"[A-Za-z0-9+/]{40}", creds.secret_access_key)
    path = credentials_path(data_dir)
    assert mode(path) == 0o600
    assert read_with_botocore(path, monkeypatch) == (creds.access_key_id, creds.secret_access_key)
    assert sorted(p.name for p in data_dir.iterdir()) == ["credentials"]  # no temporary file left over
    assert creds.secret_access_key not in repr(creds)


def test_later_starts_reuse_the_stored_keys(tmp_path: Path) -> None:
    first = load_or_create_credentials(tmp_path, None, None)
    before = credentials_path(tmp_path).read_bytes()
    again = load_or_create_credentials(tmp_path, None, None)
    assert (again.access_key_id, again.secret_access_key) == (first.access_key_id, first.secret_access_key)
    assert not again.created
    assert credentials_path(tmp_path).read_bytes() == before


def test_two_servers_get_different_keys(tmp_path: Path) -> None:
    one = load_or_create_credentials(tmp_path / "one", None, None)
    two = load_or_create_credentials(tmp_path / "two", None, None)
    assert one.access_key_id != two.access_key_id
    assert one.secret_access_key != two.secret_access_key


def test_explicit_keys_win_and_are_written_for_clients(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    load_or_create_credentials(tmp_path, None, None)
    chosen = load_or_create_credentials(tmp_path, "AKIACHOSENKEY0000000", "chosen/secret+value")
    assert (chosen.access_key_id, chosen.secret_access_key) == ("AKIACHOSENKEY0000000", "chosen/secret+value")
    assert chosen.created
    assert read_with_botocore(credentials_path(tmp_path), monkeypatch) == (
        "AKIACHOSENKEY0000000",
        "chosen/secret+value",
    )
    assert not load_or_create_credentials(tmp_path, "AKIACHOSENKEY0000000", "chosen/secret+value").created
    assert load_or_create_credentials(tmp_path, None, None).access_key_id == "AKIACHOSENKEY0000000"


def test_secrets_with_percent_signs_survive_the_round_trip(tmp_path: Path) -> None:
    load_or_create_credentials(tmp_path, "AKIAPERCENT000000000", "100%sure%(x)s")
    assert load_or_create_credentials(tmp_path, None, None).secret_access_key == "100%sure%(x)s"


@pytest.mark.parametrize(
    ("key", "secret"),
    [("AKIAONLYKEY000000000", None), (None, "only-secret"), ("", "s"), ("AKIA/SLASH", "s"), ("K", " s ")],
)
def test_refuses_incomplete_or_unusable_explicit_keys(tmp_path: Path, key: str | None, secret: str | None) -> None:
    with pytest.raises(ValueError):
        load_or_create_credentials(tmp_path, key, secret)
    assert not credentials_path(tmp_path).exists()


def test_keeps_other_profiles_in_the_file(tmp_path: Path) -> None:
    path = credentials_path(tmp_path)
    path.write_text("[other]\naws_access_key_id = AKIAOTHER\naws_secret_access_key = othersecret\n")
    creds = load_or_create_credentials(tmp_path, None, None)
    assert creds.created
    text = path.read_text()
    assert "[other]" in text and "othersecret" in text and creds.secret_access_key in text


def test_tightens_a_file_whose_permissions_were_loosened(tmp_path: Path) -> None:
    load_or_create_credentials(tmp_path, None, None)
    path = credentials_path(tmp_path)
    path.chmod(0o644)
    load_or_create_credentials(tmp_path, None, None)
    assert mode(path) == 0o600


def test_refuses_a_corrupt_file_instead_of_overwriting_it(tmp_path: Path) -> None:
    path = credentials_path(tmp_path)
    path.write_text("this is not ini\n")
    with pytest.raises(ValueError, match="not a valid AWS credentials file"):
        load_or_create_credentials(tmp_path, None, None)
    assert path.read_text() == "this is not ini\n"


def test_usage_hint_tells_how_to_reach_the_server(tmp_path: Path) -> None:
    path = tmp_path / "dir with space" / "credentials"
    hint = usage_hint(path, "http://127.0.0.1:8990", "eu-west-1")
    export = next(line for line in hint.splitlines() if "AWS_SHARED_CREDENTIALS_FILE" in line)
    words = shlex.split(export.strip())
    assert words[0] == "export"
    assert dict(w.split("=", 1) for w in words[1:]) == {
        "AWS_SHARED_CREDENTIALS_FILE": str(path),
        "AWS_PROFILE": "squall",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }
    assert "aws --endpoint-url http://127.0.0.1:8990 lambda list-functions" in hint
    assert 'boto3.client("lambda", endpoint_url="http://127.0.0.1:8990", region_name="eu-west-1")' in hint
