"""Lambda layers: published layer versions, and the merged ``/opt`` tree a function's layers make.

A layer version is immutable: its zip lives in the ``CodeStore`` (by SHA-256) and its metadata in
its own SQLite file (the scale-out tier: the shared configuration database), with the version's
permissions policy (AddLayerVersionPermission: stored and returned, not enforced). Version numbers
of a layer are never reused, even after deletion. A function keeps the code address of each of its
layers, so deleting a layer version does not break the functions that already use it (as on Lambda).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import msgspec

from squall.errors import InvalidParameterValue, ResourceNotFound
from squall.models import LayerRef
from squall.policies import NO_POLICY, check_revision, document, statement, with_statement, without_statement
from squall.stores.code import CodeStore
from squall.stores.config import PolicyTable, SqlBacked, Statements
from squall.stores.sql import SqlDatabase

#: How many layers one function may use.
MAX_LAYERS = 5


class LayerVersion(msgspec.Struct, kw_only=True):
    """One published version of a layer."""

    name: str
    version: int
    description: str = ""
    created_date: str = ""
    compatible_runtimes: list[str] = msgspec.field(default_factory=list)
    compatible_architectures: list[str] = msgspec.field(default_factory=list)
    license_info: str | None = None
    code_sha256: str = ""  # base64, as Lambda reports it
    code_hex: str = ""
    code_size: int = 0


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(LayerVersion).decode


class LayerStore(SqlBacked):
    """Layer versions in their own SQLite file, or the shared configuration database; safe to share
    between threads and between servers."""

    def __init__(self, source: Path | SqlDatabase) -> None:
        super().__init__(
            source,
            [
                "CREATE TABLE IF NOT EXISTS layer_versions (name TEXT NOT NULL, version INTEGER NOT NULL,"
                " config TEXT NOT NULL, PRIMARY KEY (name, version)) WITHOUT ROWID",
                "CREATE TABLE IF NOT EXISTS layer_counters (name TEXT PRIMARY KEY, last INTEGER NOT NULL)",
                "CREATE TABLE IF NOT EXISTS layer_policies (name TEXT NOT NULL, version INTEGER NOT NULL,"
                " statements TEXT NOT NULL, revision_id TEXT NOT NULL, PRIMARY KEY (name, version)) WITHOUT ROWID",
            ],
            "Layer store",
        )
        self.policies = PolicyTable(self.db, "layer_policies", ("name", "version"))

    def publish(self, layer: LayerVersion) -> LayerVersion:
        """Store ``layer`` as the next version of its name (numbers are never reused)."""
        with self.db.write() as conn:
            # One statement takes the number: servers publishing at once wait for each other's row.
            number = int(
                conn.execute(
                    "INSERT INTO layer_counters (name, last) VALUES (?, 1)"
                    " ON CONFLICT (name) DO UPDATE SET last = layer_counters.last + 1 RETURNING last",
                    (layer.name,),
                ).fetchone()[0]
            )
            stored = msgspec.structs.replace(layer, version=number)
            conn.execute(
                "INSERT INTO layer_versions (name, version, config) VALUES (?, ?, ?)",
                (layer.name, number, _encode(stored).decode()),
            )
        return stored

    def get(self, name: str, version: int) -> LayerVersion | None:
        rows = self._query("SELECT config FROM layer_versions WHERE name = ? AND version = ?", (name, version))
        return _decode(str(rows[0][0])) if rows else None

    def versions(self, name: str) -> list[LayerVersion]:
        """Every version of a layer, newest first."""
        rows = self._query("SELECT config FROM layer_versions WHERE name = ? ORDER BY version DESC", (name,))
        return [_decode(str(row[0])) for row in rows]

    def names(self) -> list[str]:
        return [str(row[0]) for row in self._query("SELECT DISTINCT name FROM layer_versions ORDER BY name", ())]

    def delete(self, name: str, version: int) -> None:
        with self.db.write() as conn:
            conn.execute("DELETE FROM layer_versions WHERE name = ? AND version = ?", (name, version))
            conn.execute("DELETE FROM layer_policies WHERE name = ? AND version = ?", (name, version))

    def policy(self, name: str, version: int) -> tuple[Statements, str] | None:
        """A layer version's policy statements and revision id; None if it has none."""
        return self.policies.get((name, version))

    def edit_policy(self, name: str, version: int, edit: Callable[[Statements, str | None], Statements]) -> str | None:
        """Replace a layer version's statements by ``edit(statements, revision id)``.

        Returns the new revision id, or None if the layer version does not exist. No statements left:
        the policy is gone. Whatever ``edit`` raises leaves the policy as it was.
        """
        if self.get(name, version) is None:
            return None
        return self.policies.edit((name, version), edit)

    def _query(self, sql: str, params: tuple[object, ...]) -> list[Any]:
        with self.db.read() as conn:
            return conn.execute(sql, params).fetchall()


class LayerRegistry:
    """Publishing and resolving layer versions for one account and region."""

    def __init__(self, store: LayerStore, code: CodeStore, account_id: str, region: str) -> None:
        self.store = store
        self.code = code
        self.account_id = account_id
        self.region = region

    def layer_arn(self, name: str) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account_id}:layer:{name}"

    def version_arn(self, name: str, version: int) -> str:
        return f"{self.layer_arn(name)}:{version}"

    def resolve(self, arns: Sequence[str]) -> list[LayerRef]:
        """The code of each layer version a function names, in order; Lambda's errors otherwise."""
        if len(arns) > MAX_LAYERS:
            raise InvalidParameterValue(f"Cannot reference more than {MAX_LAYERS} layers.")
        refs: list[LayerRef] = []
        seen: dict[str, str] = {}
        prefix = self.layer_arn("")
        for arn in arns:
            parts = arn.split(":")
            if len(parts) > 3 and parts[3] and parts[3] != self.region:
                raise InvalidParameterValue(
                    "Layers are not in the same region as the function. "
                    f"Layers are expected to be in region {self.region}."
                )
            name, _, number = arn[len(prefix) :].rpartition(":")
            layer = self.store.get(name, int(number)) if arn.startswith(prefix) and number.isdigit() else None
            if layer is None:
                raise InvalidParameterValue(f"Layer version {arn} does not exist.")
            layer_arn = arn.rpartition(":")[0]
            if layer_arn in seen:
                raise InvalidParameterValue(
                    "Two different versions of the same layer are not allowed to be referenced in the same "
                    f"function. {seen[layer_arn]} and {arn} are versions of the same layer."
                )
            seen[layer_arn] = arn
            refs.append(LayerRef(arn=arn, code_hex=layer.code_hex, code_size=layer.code_size))
        return refs

    # --- permissions (stored and returned, not enforced) -----------------------------------------
    def add_permission(
        self, name: str, version: int, request: dict[str, Any], revision_id: str | None
    ) -> tuple[dict[str, Any], str]:
        """AddLayerVersionPermission with validated members: the statement added and the new revision."""
        new = statement(
            {
                "StatementId": request["StatementId"],
                "Action": request["Action"],
                "Principal": request["Principal"],
                "PrincipalOrgID": request.get("OrganizationId"),
            },
            self.version_arn(name, version),
        )

        def add(statements: Statements, revision: str | None) -> Statements:
            # unverified: the text names GetLayerVersionPolicy as GetPolicy's does; not seen from Lambda.
            check_revision(revision_id, revision, "GetLayerVersionPolicy")
            return with_statement(statements, new)

        revision = self.store.edit_policy(name, version, add)
        if revision is None:
            raise ResourceNotFound(self._missing(name, version))
        return new, revision

    def remove_permission(self, name: str, version: int, sid: str, revision_id: str | None) -> None:
        def remove(statements: Statements, revision: str | None) -> Statements:
            if revision is None:
                raise ResourceNotFound(NO_POLICY)
            check_revision(revision_id, revision, "GetLayerVersionPolicy")
            return without_statement(statements, sid)

        if self.store.edit_policy(name, version, remove) is None:
            raise ResourceNotFound(self._missing(name, version))

    def policy(self, name: str, version: int) -> tuple[str, str]:
        """GetLayerVersionPolicy: the policy document and its revision id."""
        if self.store.get(name, version) is None:
            raise ResourceNotFound(self._missing(name, version))
        current = self.store.policy(name, version)
        if current is None:
            raise ResourceNotFound(NO_POLICY)
        return document(current[0]), current[1]

    def _missing(self, name: str, version: int) -> str:
        # unverified: Lambda's text when a function names a missing layer version (issues of
        # keithrozario/Klayers and jonrau1/SyntheticSun); assumed the same for the permission calls.
        return f"Layer version {self.version_arn(name, version)} does not exist."


def merged_tree(code: CodeStore, hexes: Sequence[str], root: Path) -> Path:
    """One read-only tree holding every layer's files, later layers overriding earlier ones.

    Addressed by the hash of the layers' code hashes, built once and renamed into place atomically,
    so every sandbox of any function with the same layer list shares it.
    """
    key = hashlib.sha256("\n".join(hexes).encode()).hexdigest()
    final = root / key
    if final.is_dir():
        return final
    sources = [code.unpacked(h) for h in hexes]
    root.mkdir(mode=0o711, parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".merge-", dir=root))
    try:
        for source in sources:
            _overlay(str(source), str(tmp))
        os.chmod(tmp, 0o755)
        try:
            os.rename(tmp, final)
        except OSError:
            if not final.is_dir():
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another builder got there first
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _remove(path: str) -> None:
    if os.path.islink(path) or (os.path.exists(path) and not os.path.isdir(path)):
        os.unlink(path)
    elif os.path.isdir(path):
        shutil.rmtree(path)


def _overlay(source: str, dest: str) -> None:
    """Copy ``source``'s entries over ``dest``; an entry replaces whatever was at its path."""
    for entry in os.scandir(source):
        target = os.path.join(dest, entry.name)
        if entry.is_symlink():
            _remove(target)
            os.symlink(os.readlink(entry.path), target)
        elif entry.is_dir():
            if os.path.islink(target) or (os.path.exists(target) and not os.path.isdir(target)):
                _remove(target)
            os.makedirs(target, mode=0o755, exist_ok=True)
            os.chmod(target, 0o755)
            _overlay(entry.path, target)
        else:
            _remove(target)
            try:
                os.link(entry.path, target)  # packages are never modified once unpacked
            except OSError:
                shutil.copy2(entry.path, target)
