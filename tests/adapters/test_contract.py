"""The storage contract: written once, run against every back end in BACKENDS."""

from __future__ import annotations

import hashlib
import os

import pytest

from preservation.errors import ChecksumMismatch, InvalidKey, ObjectNotFound, StorageError
from storage_adapters import check_key

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
    assert adapter.read_bytes("pkg/data/file.bin") == data
    assert adapter.stat("pkg/data/file.bin").size == len(data)


def test_unicode_and_empty_objects(adapter):
    adapter.write("包/数据/中文名称 é.txt", "你好".encode())
    adapter.write("包/数据/empty", b"")
    assert adapter.read_bytes("包/数据/中文名称 é.txt") == "你好".encode()
    assert adapter.read_bytes("包/数据/empty") == b""
    assert adapter.stat("包/数据/empty").size == 0
    assert [o.key for o in adapter.list("包/")] == ["包/数据/empty", "包/数据/中文名称 é.txt"]


def test_ranged_reads(adapter):
    data = bytes(range(256)) * 1000
    adapter.write("r/obj", data)
    assert adapter.read_bytes("r/obj", offset=1000, length=500) == data[1000:1500]
    assert adapter.read_bytes("r/obj", offset=255_000) == data[255_000:]
    assert adapter.read_bytes("r/obj", offset=len(data) - 3, length=100) == data[-3:]
    assert adapter.read_bytes("r/obj", offset=5, length=0) == b""


def test_streaming_write_from_chunks(adapter):
    chunks = [os.urandom(1 << 16) for _ in range(20)]
    result = adapter.write("s/chunks", iter(chunks), size=sum(map(len, chunks)))
    assert result.size == sum(map(len, chunks))
    assert adapter.digest("s/chunks", ["sha256"]).digests["sha256"] == hashlib.sha256(b"".join(chunks)).hexdigest()


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
    assert adapter.read_bytes("o/x") == b"second"


def test_delete(adapter):
    adapter.write("d/x", b"gone soon")
    adapter.delete("d/x")
    assert not adapter.exists("d/x")
    with pytest.raises(ObjectNotFound):
        adapter.delete("d/x")
    assert [o.key for o in adapter.list("d/")] == []


def test_missing_objects_raise_object_not_found(adapter):
    with pytest.raises(ObjectNotFound):
        adapter.stat("no/such/key")
    with pytest.raises(ObjectNotFound):
        adapter.read_bytes("no/such/key")
    result = list(adapter.digest_many(["no/such/key"], ["sha256"]))
    assert len(result) == 1 and isinstance(result[0].error, ObjectNotFound)


def test_write_with_wrong_expected_digest_leaves_nothing(adapter):
    with pytest.raises(ChecksumMismatch):
        adapter.write("v/bad", b"payload", expected={"sha256": "0" * 64})
    assert not adapter.exists("v/bad")
    assert [o.key for o in adapter.list("v/")] == []


def test_write_with_wrong_size_leaves_nothing(adapter):
    with pytest.raises(ChecksumMismatch):
        adapter.write("v/short", b"payload", size=100)
    assert not adapter.exists("v/short")


def test_interrupted_stream_is_never_visible(adapter):
    def broken():
        yield b"a" * 70_000
        raise OSError("source vanished mid-copy")

    with pytest.raises(OSError):
        adapter.write("w/partial", broken())
    assert not adapter.exists("w/partial")
    assert [o.key for o in adapter.list()] == []


def test_interrupted_overwrite_keeps_old_version(adapter):
    adapter.write("w/keep", b"old and good")

    def broken():
        yield b"new"
        raise OSError("cut")

    with pytest.raises(OSError):
        adapter.write("w/keep", broken())
    assert adapter.read_bytes("w/keep") == b"old and good"


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


@pytest.mark.parametrize("key", BAD_KEYS)
def test_bad_keys_are_refused_before_any_io(adapter, key):
    for op in (
        lambda: adapter.write(key, b"x"),
        lambda: adapter.read_bytes(key),
        lambda: adapter.stat(key),
        lambda: adapter.delete(key),
        lambda: adapter.digest(key),
    ):
        with pytest.raises(InvalidKey):
            op()
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
