"""The benches' settled disk (bench.disk) and bench_formats' order of runs."""

from __future__ import annotations

import os
import threading

import pytest

from bench.bench_formats import turns
from bench.disk import device_activity, settle

# reads, merged, sectors, ms, WRITES, merged, sectors, ms, IN FLIGHT, ms, weighted ms, DISCARDS, merged, sectors, ms
LINE = "{major} {minor} vdx 100 1 800 5 {writes} 2 900 7 {in_flight} 40 50 {discards} 3 4000 9 10 11\n"


def _stats(path, major, minor, writes=10, in_flight=0, discards=20, other_writes=0):
    path.write_text(LINE.format(major=major, minor=minor, writes=writes, in_flight=in_flight, discards=discards)
                    + LINE.format(major=major + 1, minor=minor, writes=other_writes, in_flight=0, discards=0),
                    encoding="ascii")


def _device(tmp_path):
    st_dev = os.stat(tmp_path).st_dev
    return os.major(st_dev), os.minor(st_dev)


def test_the_counters_are_those_of_the_device_holding_the_path(tmp_path):
    stats = tmp_path / "diskstats"
    _stats(stats, *_device(tmp_path), writes=71002, in_flight=3, discards=91168, other_writes=5)
    found = device_activity(tmp_path, str(stats))
    assert (found.writes, found.in_flight, found.discards) == (71002, 3, 91168)


def test_a_path_on_no_listed_device_sums_every_device(tmp_path):
    stats = tmp_path / "diskstats"
    major, minor = _device(tmp_path)
    _stats(stats, major + 7, minor, writes=4, other_writes=6)
    assert device_activity(tmp_path, str(stats)).writes == 10


def test_an_idle_device_is_settled(tmp_path):
    stats = tmp_path / "diskstats"
    _stats(stats, *_device(tmp_path))
    found = settle(tmp_path, quiet_for=0.2, max_wait=30, stats=str(stats))
    assert found.settled and found.seconds >= 0.2


def test_a_device_that_keeps_writing_or_discarding_is_not_settled(tmp_path):
    stats = tmp_path / "diskstats"
    major, minor = _device(tmp_path)
    _stats(stats, major, minor)
    stop = threading.Event()

    def busy():
        n = 0
        while not stop.wait(0.03):
            n += 1
            _stats(stats, major, minor, writes=10 + n // 2, discards=20 + (n + 1) // 2)

    thread = threading.Thread(target=busy)
    thread.start()
    try:
        found = settle(tmp_path, quiet_for=0.5, max_wait=1.5, stats=str(stats))
    finally:
        stop.set()
        thread.join()
    assert not found.settled and found.seconds >= 1.5


def test_something_in_flight_is_not_settled(tmp_path):
    stats = tmp_path / "diskstats"
    _stats(stats, *_device(tmp_path), in_flight=1)
    assert not settle(tmp_path, quiet_for=0.2, max_wait=0.8, stats=str(stats)).settled


def test_unreadable_counters_are_not_taken_for_a_settled_disk(tmp_path):
    assert not settle(tmp_path, quiet_for=0.2, max_wait=5, stats=str(tmp_path / "missing")).settled


def test_the_sides_take_turns_so_that_a_drift_weighs_on_both():
    assert turns(3) == ["off", "formats", "formats", "off", "off", "formats"]
    order = turns(4)
    assert order.count("off") == order.count("formats") == 4
    # every "off" run's mean position equals every "on" run's: a linear drift favours neither
    assert sum(i for i, m in enumerate(order) if m == "off") == sum(i for i, m in enumerate(order) if m == "formats")


def test_a_settle_after_deleting_waits_until_the_deleted_inodes_are_no_longer_recent(tmp_path, monkeypatch):
    from bench import disk

    stats = tmp_path / "diskstats"
    _stats(stats, *_device(tmp_path))
    monkeypatch.setattr(disk, "DISKSTATS", str(stats))
    waits = []
    real = disk.settle
    monkeypatch.setattr(disk, "settle", lambda *a, **k: waits.append(k) or real(*a, **{**k, "stats": str(stats)}))
    old = tmp_path / "old-run"
    (old / "data").mkdir(parents=True)
    (old / "data" / "f").write_bytes(b"x")
    found = disk.remove_and_settle([old], tmp_path, recently_deleted=0.6)
    assert not old.exists() and found.settled and found.seconds >= 0.6
    assert waits[0]["not_before"] > 0
    # nothing to delete: no wait for recently deleted inodes
    disk.remove_and_settle([old], tmp_path, recently_deleted=30)
    assert waits[1]["not_before"] == 0.0


def test_forgetting_the_deleted_inodes_drops_the_clean_caches_after_a_delete_only(tmp_path, monkeypatch):
    from bench import disk

    stats = tmp_path / "diskstats"
    _stats(stats, *_device(tmp_path))
    real = disk.settle
    monkeypatch.setattr(disk, "settle", lambda *a, **k: real(*a, **{**k, "stats": str(stats)}))
    target = tmp_path / "drop_caches"
    monkeypatch.setattr(disk, "DROP_CACHES", str(target))
    old = tmp_path / "old-run"
    (old / "data").mkdir(parents=True)
    (old / "data" / "f").write_bytes(b"x")
    disk.remove_and_settle([old], tmp_path, forget_deleted=True)
    assert not old.exists() and target.read_text() == "3\n"
    target.unlink()
    disk.remove_and_settle([old], tmp_path, forget_deleted=True)  # nothing deleted: nothing to forget
    assert not target.exists()
    (old / "data").mkdir(parents=True)
    monkeypatch.setattr(disk, "DROP_CACHES", str(tmp_path / "no-such-dir" / "drop_caches"))  # as if not root
    with pytest.raises(OSError, match="cannot drop the page cache"):
        disk.remove_and_settle([old], tmp_path, forget_deleted=True)
