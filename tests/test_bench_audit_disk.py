"""bench_audit's reading of /proc/diskstats: how busy a cold run kept the disk."""

from __future__ import annotations

import os

import pytest

from bench.bench_audit import _disk_note, _of_fastest, device_of, disk_activity, disk_counters

DISKSTATS = """\
 253       0 vda 4080679 113 543919378 1346000 100 0 800 50 0 1346692 9557182 0 0 0 0
 253       1 vda1 10 0 80 4 0 0 0 0 0 5 5 0 0 0 0
   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
"""


def test_the_counters_of_the_named_device_only():
    assert disk_counters("vda", DISKSTATS) == (4080679, 543919378, 1346000, 1346692)
    assert disk_counters("vda1", DISKSTATS) == (10, 80, 4, 5)
    assert disk_counters("vdb", DISKSTATS) is None
    assert disk_counters(None, DISKSTATS) is None


def test_queue_depth_busy_share_and_request_size_over_a_run():
    # 2 s of wall time: 4,000 reads of 1 MiB (2,048 sectors each) in flight 30 s in all, 1.9 s with I/O in flight
    activity = disk_activity((100, 1000, 7000, 500), (4100, 1000 + 4000 * 2048, 37000, 2400), 2.0)
    assert activity == {"reads": 4000, "request_kib": 1024.0, "in_flight": 15.0, "busy": 0.95}
    assert disk_activity((0, 0, 0, 0), (0, 0, 0, 0), 1.0) == {"reads": 0, "request_kib": 0.0, "in_flight": 0.0,
                                                              "busy": 0.0}
    assert disk_activity(None, (1, 2, 3, 4), 1.0) is None
    assert disk_activity((1, 2, 3, 4), (1, 2, 3, 4), 0.0) is None
    note = _disk_note("cat", activity)
    assert "15.0 reads in flight" in note and "95%" in note and "1024 KiB" in note
    assert "unknown" in _disk_note("cat", None)


def test_the_activity_reported_is_the_fastest_kept_run():
    # the first run (queries compiled) is never the one reported, even when it is the fastest
    assert _of_fastest([0.5, 2.0, 1.0, 3.0], ["first", "a", "b", "c"]) == "b"
    assert _of_fastest([1.0], ["first"]) is None


@pytest.mark.skipif(not os.path.exists("/proc/diskstats"), reason="no /proc/diskstats on this system")
def test_the_device_of_a_file_is_one_diskstats_names(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x")
    device = device_of(str(path))
    if device is not None:  # a file system on no block device (tmpfs, overlay) names none
        assert disk_counters(device) is not None
    assert device_of(str(tmp_path / "absent")) is None
