"""The storage contract: written once, run against every back end in BACKENDS."""

from __future__ import annotations

import hashlib
import os
import random

import pytest

from preservation.chunk_digests import CHUNK_BYTES, chunk_digest
from preservation.errors import ChecksumMismatch, InvalidKey, ObjectNotFound, StorageError
from storage_adapters import check_key, exists, flush, read_all, sweep_temporary, traffic
from storage_adapters.base import VERIFY_DIGEST, VERIFY_MISSING, VERIFY_SIZE
from storage_adapters.features import (
    FEATURE_FLUSH,
    FEATURE_LOCAL_FILES,
    FEATURE_SERVER_SIDE_COPY,
    FEATURE_TEMPORARY_FILES,
    FEATURE_TRAFFIC,
)
from storage_adapters.signing import possession_proof
from storage_adapters.wrappers import WrappedAdapter

from .backends import BACKENDS

BAD_KEYS = [
    "",
    "/etc/passwd",
    "../escape",
    "a/../../escape",
    "a/./b",
    "a//b",
    "a/b/..",
    "nul\x00byte",
    "line\nbreak",
    "carriage\rreturn",
    "back\\slash",
    "C:/windows",
    "~root/x",
    "bad\udcffutf8",
    "x" * 300,
]


@pytest.fixture(params=sorted(BACKENDS))
def adapter(request, tmp_path):
    store = BACKENDS[request.param](request, tmp_path)
    try:
        yield store
    finally:
        store.close()


def test_write_then_read_round_trip(adapter):
    data = os.urandom(100_000)
    result = adapter.write("pkg/data/file.bin", data, algorithms=("sha256", "sha512"))
    assert result.size == len(data)
    assert result.digests["sha256"] == hashlib.sha256(data).hexdigest()
    assert result.digests["sha512"] == hashlib.sha512(data).hexdigest()
    assert read_all(adapter, "pkg/data/file.bin") == data
    assert adapter.stat("pkg/data/file.bin").size == len(data)


def test_unicode_and_empty_objects(adapter):
    adapter.write("包/数据/中文名称 é.txt", "你好".encode())
    adapter.write("包/数据/empty", b"")
    assert read_all(adapter, "包/数据/中文名称 é.txt") == "你好".encode()
    assert read_all(adapter, "包/数据/empty") == b""
    assert adapter.stat("包/数据/empty").size == 0
    assert [o.key for o in adapter.list("包/")] == ["包/数据/empty", "包/数据/中文名称 é.txt"]


def test_ranged_reads(adapter):
    data = bytes(range(256)) * 1000
    adapter.write("r/obj", data)
    assert read_all(adapter, "r/obj", offset=1000, length=500) == data[1000:1500]
    assert read_all(adapter, "r/obj", offset=255_000) == data[255_000:]
    assert read_all(adapter, "r/obj", offset=len(data) - 3, length=100) == data[-3:]
    assert read_all(adapter, "r/obj", offset=5, length=0) == b""


def test_streaming_write_from_chunks(adapter):
    chunks = [os.urandom(1 << 16) for _ in range(20)]
    result = adapter.write("s/chunks", iter(chunks), size=sum(map(len, chunks)))
    assert result.size == sum(map(len, chunks))
    (digested,) = adapter.digest_many(["s/chunks"], ["sha256"])
    assert digested.digests["sha256"] == hashlib.sha256(b"".join(chunks)).hexdigest()


def test_list_with_prefix_in_key_order(adapter):
    keys = ["p/a.txt", "p/a/b", "p/b", "q/c", "pz"]
    for k in keys:
        adapter.write(k, k.encode())
    listed = [o.key for o in adapter.list("p/")]
    assert listed == sorted(["p/a.txt", "p/a/b", "p/b"], key=lambda k: k.encode())
    assert [o.key for o in adapter.list("p")] == sorted(["p/a.txt", "p/a/b", "p/b", "pz"], key=lambda k: k.encode())
    assert [o.key for o in adapter.list("nothing/")] == []
    everything = {o.key: o.size for o in adapter.list()}
    assert everything == {k: len(k) for k in keys}


def test_overwrite_replaces_content(adapter):
    adapter.write("o/x", b"first version")
    adapter.write("o/x", b"second")
    assert read_all(adapter, "o/x") == b"second"


def test_delete(adapter):
    adapter.write("d/x", b"gone soon")
    adapter.delete("d/x")
    assert not exists(adapter, "d/x")
    with pytest.raises(ObjectNotFound):
        adapter.delete("d/x")
    assert [o.key for o in adapter.list("d/")] == []


def test_missing_objects_raise_object_not_found(adapter):
    with pytest.raises(ObjectNotFound):
        adapter.stat("no/such/key")
    with pytest.raises(ObjectNotFound):
        read_all(adapter, "no/such/key")
    result = list(adapter.digest_many(["no/such/key"], ["sha256"]))
    assert len(result) == 1 and isinstance(result[0].error, ObjectNotFound)


def test_write_with_wrong_expected_digest_leaves_nothing(adapter):
    with pytest.raises(ChecksumMismatch):
        adapter.write("v/bad", b"payload", expected={"sha256": "0" * 64})
    assert not exists(adapter, "v/bad")
    assert [o.key for o in adapter.list("v/")] == []


def test_write_with_wrong_size_leaves_nothing(adapter):
    with pytest.raises(ChecksumMismatch):
        adapter.write("v/short", b"payload", size=100)
    assert not exists(adapter, "v/short")


def test_interrupted_stream_is_never_visible(adapter):
    def broken():
        yield b"a" * 70_000
        raise OSError("source vanished mid-copy")

    with pytest.raises(OSError):
        adapter.write("w/partial", broken())
    assert not exists(adapter, "w/partial")
    assert [o.key for o in adapter.list()] == []


def test_interrupted_overwrite_keeps_old_version(adapter):
    adapter.write("w/keep", b"old and good")

    def broken():
        yield b"new"
        raise OSError("cut")

    with pytest.raises(OSError):
        adapter.write("w/keep", broken())
    assert read_all(adapter, "w/keep") == b"old and good"


def test_digest_many_matches_hashlib(adapter):
    contents = {f"m/{i:03d}": os.urandom(i * 37) for i in range(30)}
    for k, v in contents.items():
        adapter.write(k, v)
    results = {r.key: r for r in adapter.digest_many(sorted(contents), ["sha256", "sha512"])}
    assert set(results) == set(contents)
    for k, v in contents.items():
        assert results[k].error is None
        assert results[k].size == len(v)
        assert results[k].digests == {"sha256": hashlib.sha256(v).hexdigest(), "sha512": hashlib.sha512(v).hexdigest()}


def test_inventory_gives_every_key_in_order_with_its_size_or_none(adapter):
    contents = {"i/b": b"bb", "i/a/x": b"", "i/a.txt": b"dot", "i/\u00e9": b"e", "j/out": b"not under the prefix"}
    for key, data in contents.items():
        adapter.write(key, data)
    listed = list(adapter.inventory("i/"))
    assert [key for key, _ in listed] == sorted((k for k in contents if k.startswith("i/")), key=lambda k: k.encode())
    for key, size in listed:
        assert size is None or size == len(contents[key])
    assert list(adapter.inventory("nothing/")) == []


def test_verify_many_finds_missing_short_and_rotten_files_and_counts_the_good(adapter):
    good, rotten, short = os.urandom(5000), os.urandom(3000), os.urandom(100)
    adapter.write("v/good", good)
    adapter.write("v/rotten", bytes([rotten[0] ^ 1]) + rotten[1:])  # one bit flipped since the catalog saw it
    adapter.write("v/short", short[:-1])
    rows = [(name, len(data), (hashlib.sha256(data).hexdigest(), hashlib.sha512(data).hexdigest()))
            for name, data in [("good", good), ("rotten", rotten), ("short", short), ("missing", b"x")]]
    batches = list(adapter.verify_many("v/", iter(rows), ("sha256", "sha512")))
    problems = {p.path: p for b in batches for p in b.problems}
    assert set(problems) == {"rotten", "short", "missing"}
    assert problems["missing"].kind == VERIFY_MISSING
    assert problems["short"].kind == VERIFY_SIZE
    assert problems["rotten"].kind == VERIFY_DIGEST and problems["rotten"].algorithm == "sha256"
    assert sum(b.checked for b in batches) == 2  # the good file and the rotten one were read in full


@pytest.mark.parametrize("algorithms", [("sha256",), ("sha256", "sha512")])
def test_verify_many_gives_the_chunk_digests_asked_for_of_the_files_that_match_read_here(adapter, algorithms):
    rng = random.Random(9)
    files = {"two": rng.randbytes(CHUNK_BYTES + 5), "five": rng.randbytes(5 * CHUNK_BYTES + 3),  # read whole, in steps
             "unasked": rng.randbytes(2 * CHUNK_BYTES), "rotten": rng.randbytes(3 * CHUNK_BYTES)}
    for name, data in files.items():
        adapter.write(f"c/{name}", data if name != "rotten" else data[:-1] + bytes([data[-1] ^ 1]))
    rows = [(name, len(data), tuple(hashlib.new(a, data).hexdigest() for a in algorithms), name != "unasked")
            for name, data in sorted(files.items())]
    batches = list(adapter.verify_many("c/", rows, algorithms))
    assert [p.path for b in batches for p in b.problems] == ["rotten"]
    found = {path: digests for b in batches for path, digests in b.chunks.items()}
    if adapter.scheme == "node+http":  # read on the node, not here: never taken from its word
        assert found == {}
        return
    assert found == {name: b"".join(chunk_digest(files[name][i:i + CHUNK_BYTES])
                                    for i in range(0, len(files[name]), CHUNK_BYTES)) for name in ("five", "two")}


def test_challenge_proves_the_bytes_of_a_range(adapter):
    data = os.urandom(70_000)
    adapter.write("c/obj", data)
    nonce = os.urandom(16)
    assert adapter.challenge("c/obj", 1000, 5000, nonce) == possession_proof(nonce, [data[1000:6000]])
    assert adapter.challenge("c/obj", 1000, 5000, nonce) != possession_proof(os.urandom(16), [data[1000:6000]])
    with pytest.raises(ObjectNotFound):
        adapter.challenge("c/none", 0, 10, nonce)


@pytest.mark.parametrize("wrapped", [False, True], ids=["plain source", "wrapped source"])
def test_copy_from_copies_inside_the_store_or_leaves_it_to_the_caller(adapter, wrapped):
    data = os.urandom(10_000)
    adapter.write("cp/src", data)
    source = WrappedAdapter(adapter) if wrapped else adapter
    copied = adapter.copy_from(source, "cp/src", "cp/dst")
    assert copied == (FEATURE_SERVER_SIDE_COPY in adapter.features)
    if copied:
        assert read_all(adapter, "cp/dst") == data
    else:
        assert not exists(adapter, "cp/dst")
    assert read_all(adapter, "cp/src") == data


def test_a_stray_delete_removes_what_inventory_listed(adapter):
    adapter.write("s/kept", b"kept")
    adapter.write("s/stray", b"belongs to nothing")
    for key, _ in list(adapter.inventory("s/")):
        if key.endswith("stray"):
            adapter.delete(key, stray=True)
    assert [key for key, _ in adapter.inventory("s/")] == ["s/kept"]
    with pytest.raises(InvalidKey):
        adapter.delete("../s/kept", stray=True)


def test_sweep_temporary_removes_leftovers_and_never_an_object(adapter):
    adapter.write("t/a", b"a")

    def broken():
        yield b"b" * 70_000
        raise OSError("cut")

    with pytest.raises(OSError):
        adapter.write("t/b", broken())
    assert sweep_temporary(adapter, 0) >= 0
    assert sweep_temporary(adapter, 0) == 0  # nothing left the second time
    assert [o.key for o in adapter.list()] == ["t/a"] and read_all(adapter, "t/a") == b"a"


def test_optional_abilities_are_reached_through_features_however_wrapped(adapter):
    for ability, method in ((FEATURE_FLUSH, "flush"), (FEATURE_TRAFFIC, "traffic"),
                            (FEATURE_TEMPORARY_FILES, "sweep_temporary")):
        provider = adapter.features.provider(ability)
        assert provider is None or callable(getattr(provider, method))
        assert not hasattr(adapter, method) or adapter is provider  # never a method every caller sees
    adapter.write("a/x", b"x" * 1000)
    flush(adapter)  # a no-op where a write is durable when it returns
    before = traffic(adapter)
    assert read_all(adapter, "a/x") == b"x" * 1000
    moved = traffic(adapter) - before
    assert moved >= 1000 if FEATURE_TRAFFIC in adapter.features else moved == 0
    wrapped = WrappedAdapter(adapter)
    assert traffic(wrapped) == traffic(adapter)
    assert sweep_temporary(wrapped, 3600) == 0


def test_features_name_their_providers_and_a_local_store_gives_checked_paths(adapter):
    features = adapter.features
    for name in features:
        assert features.provider(name) is not None
    local = features.local
    assert (local is not None) == (FEATURE_LOCAL_FILES in features)
    if local is not None:
        adapter.write("f/obj", b"on this host")
        with open(local.local_file("f/obj"), "rb") as f:
            assert f.read() == b"on this host"
        with pytest.raises(InvalidKey):
            local.local_file("../outside")
    wrapped = WrappedAdapter(adapter)
    assert list(wrapped.features) == list(features) and wrapped.features.local is local


@pytest.mark.parametrize("key", BAD_KEYS)
def test_bad_keys_are_refused_before_any_io(adapter, key):
    for op in (
        lambda: adapter.write(key, b"x"),
        lambda: read_all(adapter, key),
        lambda: adapter.stat(key),
        lambda: adapter.delete(key),
    ):
        with pytest.raises(InvalidKey):
            op()
    assert isinstance(next(adapter.digest_many([key])).error, InvalidKey)
    assert [o.key for o in adapter.list()] == []


@pytest.mark.parametrize("prefix", ["/abs", "../up", "a/../b"])
def test_bad_list_prefixes_are_refused(adapter, prefix):
    with pytest.raises(InvalidKey):
        list(adapter.list(prefix))


def test_check_key_accepts_normal_keys():
    for key in ["a", "a/b/c.txt", "数据/文件.pdf", "with space/and-dash_.x", "..hidden", "a..b"]:
        assert check_key(key) == key


def test_errors_are_in_the_tree():
    assert issubclass(InvalidKey, StorageError)
    assert issubclass(ObjectNotFound, StorageError)
