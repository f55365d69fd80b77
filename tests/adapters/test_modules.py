"""How the storage package holds together: no module reaches into another's private names,
retries live in the one wrapper, and every back end is found through its features."""

from __future__ import annotations

import ast
from pathlib import Path

import storage_adapters
from storage_adapters import fanout, filesystem, node
from storage_adapters.features import (
    FEATURE_FREE_SPACE,
    FEATURE_FLUSH,
    FEATURE_LOCAL_FILES,
    FEATURE_NODE_DIGEST,
    FEATURE_TEMPORARY_FILES,
    FEATURE_TRAFFIC,
    FEATURE_WITNESS,
)
from storage_adapters.wrappers import RetryingAdapter

PACKAGE = Path(storage_adapters.__file__).parent


def _modules() -> dict[str, ast.Module]:
    return {path.name: ast.parse(path.read_text(encoding="utf-8")) for path in sorted(PACKAGE.glob("*.py"))}


def test_no_module_imports_a_private_name_of_another():
    private = [
        (name, alias.name)
        for name, tree in _modules().items()
        for stmt in ast.walk(tree)
        if isinstance(stmt, ast.ImportFrom) and (stmt.level or (stmt.module or "").startswith("storage_adapters"))
        for alias in stmt.names
        if alias.name.startswith("_")
    ]
    assert private == []


def test_only_the_retry_wrapper_waits_to_try_again():
    waiting = [
        name
        for name, tree in _modules().items()
        for call in ast.walk(tree)
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "sleep"
    ]
    # fsverify's one sleep waits for a worker pool to wind down, not for a store
    assert sorted(set(waiting)) == ["fsverify.py", "wrappers.py"]
    assert issubclass(node.NodeAdapter, RetryingAdapter) and not issubclass(node.NodeStore, RetryingAdapter)


def test_back_ends_declare_their_abilities_and_the_fan_out_needs_no_store_class():
    assert filesystem.FilesystemAdapter.abilities == {FEATURE_LOCAL_FILES, FEATURE_FLUSH, FEATURE_TEMPORARY_FILES}
    assert node.NodeStore.abilities == {FEATURE_NODE_DIGEST, FEATURE_TRAFFIC, FEATURE_WITNESS, FEATURE_FREE_SPACE}
    assert not hasattr(fanout, "FilesystemAdapter")  # named in annotations only: the store passes itself in
