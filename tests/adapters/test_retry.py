"""The retry wrapper: what it tries again, what it never does, and how streams resume.

The store under the wrapper fails on purpose: ``Failing`` (itself a wrapper)
raises StorageUnavailable, or another error, on the calls it is told to,
in the middle of a stream where a network would break it.  The node back end
is this wrapper around NodeStore; tests/node_agent/test_adapter.py breaks
real connections under it.
"""

from __future__ import annotations

import hashlib
import os

import pytest

from preservation.errors import AccessDenied, ObjectNotFound, StorageUnavailable
from storage_adapters import exists, open_adapter, read_all
from storage_adapters.base import ObjectInfo, StorageAdapter
from storage_adapters.wrappers import DIGEST_WINDOW, RetryingAdapter, WrappedAdapter


class Failing(WrappedAdapter):
    """A store that fails the calls it is told to: ``plan[name]`` is a list of errors (or None for
    'work'), taken one per call; a stream fails after ``after`` items."""

    def __init__(self, inner: StorageAdapter, after: int = 1) -> None:
        super().__init__(inner)
        self.plan: dict[str, list] = {}
        self.calls: dict[str, list] = {}
        self.after = after

    def _next(self, name: str, *args) -> Exception | None:
        self.calls.setdefault(name, []).append(args)
        planned = self.plan.get(name)
        return planned.pop(0) if planned else None

    def _stat(self, key: str) -> ObjectInfo:
        if error := self._next("stat", key):
            raise error
        return super()._stat(key)

    def _read(self, key, offset, length):
        error = self._next("read", offset, length)
        return self._broken(super()._read(key, offset, length), error)

    def _list(self, prefix):
        return self._broken(super()._list(prefix), self._next("list", prefix))

    def _digest_many(self, keys, algorithms, workers, chunked=frozenset()):
        keys = list(keys)
        return self._broken(super()._digest_many(keys, algorithms, workers, chunked), self._next("digest_many", keys))

    def _write(self, key, chunks, size):
        error = self._next("write", key)
        if error is not None and self.after == 0:
            raise error
        if error is not None:
            next(iter(chunks))  # the store took some of the data before it failed
            raise error
        super()._write(key, chunks, size)

    def _broken(self, items, error):
        for n, item in enumerate(items):
            if error is not None and n == self.after:
                raise error
            yield item


@pytest.fixture
def store(tmp_path):
    return open_adapter((tmp_path / "store").as_uri())


def unavailable() -> StorageUnavailable:
    return StorageUnavailable("the store is not answering (injected)")


def retrying(failing: Failing, retries: int = 3) -> RetryingAdapter:
    return RetryingAdapter(failing, retries=retries, backoff=0)


def test_an_unavailable_store_is_asked_again_until_it_answers(store):
    store.write("x", b"here")
    failing = Failing(store)
    failing.plan["stat"] = [unavailable(), unavailable()]
    assert retrying(failing).stat("x").size == 4
    assert len(failing.calls["stat"]) == 3


def test_other_errors_are_never_retried(store):
    failing = Failing(store)
    failing.plan["stat"] = [AccessDenied("refused (injected)")]
    with pytest.raises(AccessDenied):
        retrying(failing).stat("x")
    with pytest.raises(ObjectNotFound):
        retrying(failing).stat("missing")
    assert len(failing.calls["stat"]) == 2  # one each


def test_retries_are_bounded(store):
    failing = Failing(store)
    failing.plan["stat"] = [unavailable() for _ in range(10)]
    with pytest.raises(StorageUnavailable):
        retrying(failing, retries=2).stat("x")
    assert len(failing.calls["stat"]) == 3


def test_a_read_broken_mid_stream_resumes_at_the_byte_it_reached(store):
    data = os.urandom(3 * 4 * 1024 * 1024 + 5)  # several chunks
    store.write("big", data)
    failing = Failing(store, after=1)
    failing.plan["read"] = [unavailable()]
    got = read_all(retrying(failing), "big", offset=7)
    assert hashlib.sha256(got).digest() == hashlib.sha256(data[7:]).digest()
    first_chunk = len(next(store.read("big", 7)))
    assert failing.calls["read"] == [(7, None), (7 + first_chunk, None)]


def test_a_listing_broken_off_resumes_after_the_last_key_without_repeats(store):
    for i in range(5):
        store.write(f"l/{i}", b"x")
    failing = Failing(store, after=2)
    failing.plan["list"] = [unavailable(), unavailable()]
    assert [o.key for o in retrying(failing).list("l/")] == [f"l/{i}" for i in range(5)]
    assert [key for key, _ in retrying(failing).inventory("l/")] == [f"l/{i}" for i in range(5)]


def test_a_write_is_retried_only_before_it_took_any_data(store):
    failing = Failing(store, after=0)
    failing.plan["write"] = [unavailable()]
    retrying(failing).write("w/ok", b"payload")
    assert read_all(store, "w/ok") == b"payload"
    assert len(failing.calls["write"]) == 2

    failing = Failing(store, after=1)
    failing.plan["write"] = [unavailable()]
    with pytest.raises(StorageUnavailable):
        retrying(failing).write("w/taken", [b"pay", b"load"])
    assert len(failing.calls["write"]) == 1 and not exists(store, "w/taken")


def test_digests_broken_off_are_asked_again_only_for_the_keys_not_answered(store):
    keys = [f"d/{i}" for i in range(6)]
    for key in keys:
        store.write(key, key.encode())
    failing = Failing(store, after=2)
    failing.plan["digest_many"] = [unavailable()]
    results = list(retrying(failing).digest_many(keys))
    assert sorted(r.key for r in results) == keys and all(r.error is None for r in results)
    first, second = (call[0] for call in failing.calls["digest_many"])
    assert len(first) == 6 and len(second) == 4 and not set(second) & {r.key for r in results[:2]}


def test_digests_the_store_cannot_give_are_errors_for_each_key_left(store):
    keys = [f"d/{i}" for i in range(4)]
    for key in keys:
        store.write(key, b"x")
    failing = Failing(store, after=1)
    failing.plan["digest_many"] = [unavailable() for _ in range(3)]
    results = list(retrying(failing, retries=2).digest_many(keys))
    assert sorted(r.key for r in results) == keys
    assert sum(r.error is None for r in results) == 3  # one answered per try before the break
    assert [type(r.error) for r in results if r.error is not None] == [StorageUnavailable]


def test_digest_keys_go_to_the_store_a_window_at_a_time(store, monkeypatch):
    monkeypatch.setattr("storage_adapters.wrappers.DIGEST_WINDOW", 4)
    failing = Failing(store)
    list(retrying(failing).digest_many(f"k/{i}" for i in range(10)))
    assert [len(call[0]) for call in failing.calls["digest_many"]] == [4, 4, 2]
    assert DIGEST_WINDOW >= 1000  # a node batches a thousand keys a request: a window holds several


def test_features_pass_through_the_wrapper_and_a_local_store_keeps_its_fast_audit(store, monkeypatch):
    wrapped = retrying(Failing(store))
    assert wrapped.features.local is store and list(wrapped.features) == list(store.features)
    data = b"audited"
    store.write("a/f", data)
    seen = []
    real = type(store).verify_local

    def fast_path(self, *args):
        seen.append(self)
        return real(self, *args)

    monkeypatch.setattr(type(store), "verify_local", fast_path)
    rows = [("f", len(data), (hashlib.sha256(data).hexdigest(),))]
    assert [b.checked for b in wrapped.verify_many("a/", rows)] == [1]
    assert seen == [store]
