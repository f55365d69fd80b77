"""The garbage collector paused around bulk work: nested, on several threads, given back as it was found."""

from __future__ import annotations

import gc
import threading

import pytest

from preservation import collector


pytestmark = pytest.mark.usefixtures("collector_running")


def test_a_pause_stops_the_collector_and_gives_it_back():
    with collector.paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_nested_pauses_give_it_back_only_when_the_outermost_ends():
    with collector.paused():
        with collector.paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_pause_that_raises_still_gives_the_collector_back():
    with pytest.raises(RuntimeError), collector.paused():
        raise RuntimeError("the work failed")
    assert gc.isenabled()


def test_a_collector_off_before_stays_off_after():
    gc.disable()
    with collector.paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_pauses_on_two_threads_overlapping_keep_it_off_until_the_last_ends():
    first_in, first_may_end, first_out = (threading.Event() for _ in range(3))
    seen: dict[str, bool] = {}

    def first() -> None:
        with collector.paused():
            first_in.set()
            first_may_end.wait(10)
        first_out.set()

    thread = threading.Thread(target=first)
    thread.start()
    assert first_in.wait(10)
    with collector.paused():
        first_may_end.set()
        assert first_out.wait(10)
        seen["after the first ended"] = gc.isenabled()  # the second pause still holds
    thread.join(10)
    assert seen == {"after the first ended": False}
    assert gc.isenabled()
