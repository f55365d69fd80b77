"""bench_extraction's order of runs: the sides take turns, so a drift of the machine weighs on both."""

from __future__ import annotations

from bench.bench_extraction import turns


def test_the_sides_take_turns_starting_each_pair_with_the_other():
    assert turns(1) == [False, True]
    assert turns(3) == [False, True, True, False, False, True]
    assert turns(4).count(True) == turns(4).count(False) == 4
