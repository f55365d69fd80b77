"""The storage interface stays small: what callers see of an adapter is pinned here.

Every adapter shows the eleven methods of :class:`StorageAdapter` and its
naming attributes.  A back end shows beyond them only the methods of the
optional abilities it provides itself (found through ``adapter.features``)
and, for the local store, the few hands its fan-out uses.  A wrapper shows
nothing more: it hands its inner adapter's features on.  A new public method
fails here until it is argued for (and this table, docs/architecture.md and
the StorageAdapter docstring are changed together).
"""

from __future__ import annotations

import inspect

import pytest

from preservation.errors import ObjectNotFound
from storage_adapters import exists, flush, read_all, sweep_temporary, traffic
from storage_adapters.base import ObjectInfo, StorageAdapter
from storage_adapters.features import (
    FEATURE_CHECKSUMS,
    FEATURE_FLUSH,
    FEATURE_FREE_SPACE,
    FEATURE_LOCAL_FILES,
    FEATURE_NODE_DIGEST,
    FEATURE_OBJECT_LOCK,
    FEATURE_SERVER_SIDE_COPY,
    FEATURE_TEMPORARY_FILES,
    FEATURE_TRAFFIC,
    FEATURE_WITNESS,
    LocalStore,
)
from storage_adapters.filesystem import FilesystemAdapter
from storage_adapters.node import NodeAdapter, NodeStore
from storage_adapters.s3 import S3Adapter
from storage_adapters.wrappers import RetryingAdapter, WrappedAdapter

INTERFACE = {
    "stat", "list", "inventory", "read", "write", "delete", "digest_many", "verify_many", "challenge", "copy_from",
    "close",
}
NAMING = {"scheme", "abilities", "location", "features"}

LOCAL_STORE = {name for name, value in vars(LocalStore).items() if not name.startswith("_") and callable(value)}
ABILITY_METHODS = {
    FEATURE_LOCAL_FILES: LOCAL_STORE,
    FEATURE_FLUSH: {"flush"},
    FEATURE_TRAFFIC: {"traffic"},
    FEATURE_TEMPORARY_FILES: {"sweep_temporary"},
    FEATURE_NODE_DIGEST: set(),  # digest_many, answered on the node
    FEATURE_SERVER_SIDE_COPY: set(),  # copy_from
    FEATURE_CHECKSUMS: set(),  # stat's checksums
    FEATURE_OBJECT_LOCK: set(),  # a fact about writes
    FEATURE_WITNESS: {"witness", "witness_key"},  # the node agent co-signs checkpoints (docs/evidence.md)
    FEATURE_FREE_SPACE: {"free_space"},  # the node agent reports its disk's free space (`preserve config check`)
}

# class: (the abilities it may provide itself, its own public names beyond them)
ADAPTERS: dict[type[StorageAdapter], tuple[set[str], set[str]]] = {
    FilesystemAdapter: (
        {FEATURE_LOCAL_FILES, FEATURE_FLUSH, FEATURE_TEMPORARY_FILES},
        # the local store's hands for its fan-out (storage_adapters.fanout)
        {"adopt", "create_temporary", "object_path", "translate"},
    ),
    S3Adapter: (
        {FEATURE_SERVER_SIDE_COPY, FEATURE_CHECKSUMS, FEATURE_OBJECT_LOCK, FEATURE_TRAFFIC, FEATURE_TEMPORARY_FILES},
        set(),
    ),
    NodeStore: ({FEATURE_NODE_DIGEST, FEATURE_TRAFFIC, FEATURE_WITNESS, FEATURE_FREE_SPACE}, set()),
    NodeAdapter: (set(), set()),
    WrappedAdapter: (set(), set()),
    RetryingAdapter: (set(), set()),
}


def _public(cls: type) -> set[str]:
    return {name for name in dir(cls) if not name.startswith("_")}


def _methods(cls: type) -> set[str]:
    return {name for name in _public(cls) if inspect.isfunction(getattr(cls, name))}


def test_the_interface_is_eleven_methods_and_the_naming_attributes():
    assert _methods(StorageAdapter) == INTERFACE
    assert _public(StorageAdapter) == INTERFACE | NAMING


@pytest.mark.parametrize("cls", list(ADAPTERS), ids=lambda cls: cls.__name__)
def test_a_back_end_or_wrapper_shows_only_the_interface_and_its_abilities(cls):
    abilities, own = ADAPTERS[cls]
    expected = INTERFACE | NAMING | own
    for ability in abilities:
        expected |= ABILITY_METHODS[ability]
    assert _public(cls) == expected


def test_every_adapter_the_package_opens_is_pinned_here():
    import storage_adapters

    opened = {storage_adapters.adapter_class(f"{scheme}://x/y") for scheme in storage_adapters.BACK_ENDS_BY_SCHEME}
    assert opened <= set(ADAPTERS)


def test_the_ability_methods_are_named_where_the_abilities_are():
    assert LOCAL_STORE == {"local_file", "copy_local", "prepare_copy", "fan_out", "draft", "inventory_local",
                           "verify_local"}
    for cls, (abilities, _) in ADAPTERS.items():
        for ability in abilities:
            for name in ABILITY_METHODS[ability]:
                assert callable(getattr(cls, name)), (cls, name)


class Bare(StorageAdapter):
    """An adapter with no optional ability: one object in memory, key ``k``."""

    def _stat(self, key):
        if key != "k":
            raise ObjectNotFound(key=key)
        return ObjectInfo(key="k", size=3)

    def _list(self, prefix):
        return iter([ObjectInfo(key="k", size=3)])

    def _read(self, key, offset, length):
        self._stat(key)
        data = b"abc"[offset:]
        return iter([data if length is None else data[:length]])

    def _write(self, key, chunks, size):
        raise AssertionError("not written to")

    def _delete(self, key):
        raise AssertionError("not deleted from")


def test_an_adapter_without_an_ability_gets_the_neutral_answer():
    bare = Bare("bare://")
    assert list(bare.features) == []
    flush(bare)
    assert traffic(bare) == 0
    assert sweep_temporary(bare, 0) == 0
    assert exists(bare, "k") and not exists(bare, "other")
    assert read_all(bare, "k") == b"abc" and read_all(bare, "k", 1, 1) == b"b"
