"""The merged /opt tree of a function's layers, and the layer and policy stores."""

from __future__ import annotations

import asyncio
import io
import json
import os
import stat
import zipfile
from pathlib import Path

import msgspec
import pytest

from squall.errors import InvalidParameterValue, PreconditionFailed, ResourceConflict, ResourceNotFound
from squall.executors.local import LocalExecutor
from squall.layers import LayerRegistry, LayerStore, LayerVersion, merged_tree
from squall.models import InvokeRequest, SandboxSpec
from squall.policies import Policies, PolicyLengthExceeded, PolicyStore, statement
from squall.stores.code import CodeStore
from tests.conftest import make_zip


def _zip_with_link(name: str, target: str, files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, content in files.items():
            archive.writestr(path, content)
        info = zipfile.ZipInfo(name)
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, target)
    return buffer.getvalue()


def test_later_layers_override_earlier_ones(tmp_path: Path) -> None:
    code = CodeStore(tmp_path / "code")
    first = code.put(
        _zip_with_link(
            "python/link.py", "real.py", {"python/a.py": "A1", "python/real.py": "R", "python/pkg/x.py": "X1"}
        )
    )
    second = code.put(make_zip({"python/a.py": "A2", "python/link.py": "L2", "python/pkg": "now a file"}))
    merged = merged_tree(code, [first.hex, second.hex], tmp_path / "merged")
    assert (merged / "python/a.py").read_text() == "A2"
    assert (merged / "python/real.py").read_text() == "R"
    # A file replaces a symlink (never writes through it) and a directory.
    assert not (merged / "python/link.py").is_symlink()
    assert (merged / "python/link.py").read_text() == "L2"
    assert (code.unpacked(first.hex) / "python/real.py").read_text() == "R"
    assert (merged / "python/pkg").read_text() == "now a file"
    # The other order gives another tree; the same order gives the same one, built once.
    reverse = merged_tree(code, [second.hex, first.hex], tmp_path / "merged")
    assert reverse != merged
    assert (reverse / "python/a.py").read_text() == "A1"
    assert os.path.islink(reverse / "python/link.py")
    assert merged_tree(code, [first.hex, second.hex], tmp_path / "merged") == merged
    assert sorted(p.name for p in (tmp_path / "merged").iterdir()) == sorted([merged.name, reverse.name])


def test_layer_versions_are_never_reused(tmp_path: Path) -> None:
    store = LayerStore(tmp_path / "layers.db")
    code = CodeStore(tmp_path / "code")
    registry = LayerRegistry(store, code, "000000000000", "us-east-1")
    ref = code.put(make_zip({"a.txt": "a"}))
    one = store.publish(LayerVersion(name="l", version=0, code_hex=ref.hex, code_size=ref.size))
    two = store.publish(LayerVersion(name="l", version=0, code_hex=ref.hex, code_size=ref.size))
    assert (one.version, two.version) == (1, 2)
    store.delete("l", 2)
    assert store.publish(LayerVersion(name="l", version=0)).version == 3
    assert [v.version for v in store.versions("l")] == [3, 1]
    refs = registry.resolve(["arn:aws:lambda:us-east-1:000000000000:layer:l:1"])
    assert refs[0].code_hex == ref.hex and refs[0].code_size == ref.size
    with pytest.raises(InvalidParameterValue, match="layer:l:2 does not exist"):
        registry.resolve(["arn:aws:lambda:us-east-1:000000000000:layer:l:2"])
    with pytest.raises(InvalidParameterValue, match="does not exist"):  # another account's layer
        registry.resolve(["arn:aws:lambda:us-east-1:111111111111:layer:l:1"])
    with pytest.raises(InvalidParameterValue, match=r"Cannot reference more than 5 layers\."):
        registry.resolve(["arn:aws:lambda:us-east-1:000000000000:layer:l:1"] * 6)
    store.close()


def test_policy_store(tmp_path: Path) -> None:
    policies = Policies(PolicyStore(tmp_path / "policies.db"))
    with pytest.raises(ResourceNotFound):
        policies.get("f", "")
    policies.add("f", "", statement({"StatementId": "a", "Action": "*", "Principal": "*"}, "arn"), None)
    _, revision = policies.get("f", "")
    with pytest.raises(ResourceConflict):
        policies.add("f", "", statement({"StatementId": "a", "Action": "*", "Principal": "*"}, "arn"), None)
    with pytest.raises(PreconditionFailed):
        policies.remove("f", "", "a", "other")
    with pytest.raises(PolicyLengthExceeded):
        policies.add("f", "", statement({"StatementId": "b", "Action": "*", "Principal": "x" * 21000}, "arn"), None)
    policies.remove("f", "", "a", revision)
    with pytest.raises(ResourceNotFound):
        policies.get("f", "")
    policies.store.close()


LAYERED_HANDLER = """
import sys
import shared
def handler(event, context):
    ends = ("/python", "site-packages")
    return {"who": shared.WHO, "path": [p for p in sys.path if "python" in p and p.endswith(ends)]}
"""


@pytest.mark.parametrize("isolation", [True, False], ids=["isolated", "unconfined"])
def test_sandbox_sees_layers(tmp_path: Path, isolation: bool) -> None:
    """Confined: the merged tree at /opt; unconfined: its python dirs on sys.path in place."""
    code = CodeStore(tmp_path / "code")
    function = code.put(make_zip({"app.py": LAYERED_HANDLER}))
    base = code.put(make_zip({"python/shared.py": "WHO = 'base'\n"}))
    top = code.put(make_zip({"python/shared.py": "WHO = 'top'\n"}))
    executor = LocalExecutor(code, tmp_path / "sandboxes", "us-east-1", lambda name: {}, isolation=isolation)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(executor.start())
    try:
        spec = SandboxSpec(
            function_name="fn",
            version="$LATEST",
            revision_id="r1",
            runtime="python3.11",
            handler="app.handler",
            code_hex=function.hex,
            memory_mb=128,
            timeout_s=10,
            ephemeral_mb=512,
            environment={},
            layer_hexes=(base.hex, top.hex),
        )
        request = InvokeRequest(request_id="req", payload=b"{}", invoked_arn="arn:fn")
        result = json.loads(loop.run_until_complete(executor.invoke(spec, request)).payload)
        assert result["who"] == "top", result
        opt = "/opt" if executor.isolation else str(merged_tree(code, [base.hex, top.hex], code.root / "merged"))
        assert result["path"][:2] == [f"{opt}/python/lib/python3.11/site-packages", f"{opt}/python"]
        reordered = msgspec.structs.replace(spec, layer_hexes=(top.hex, base.hex))
        assert reordered.pool_key != spec.pool_key
        assert json.loads(loop.run_until_complete(executor.invoke(reordered, request)).payload)["who"] == "base"
    finally:
        loop.run_until_complete(executor.shutdown(1.0))
        loop.close()
