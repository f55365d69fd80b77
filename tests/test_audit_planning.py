"""The audit planner on a simulated clock: full coverage within the interval, within budget, evenly spread."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from preservation.audit_planning import (
    DAY,
    AuditCandidate,
    NodeLoad,
    plan_audits,
    planning_period,
    planning_window,
)

INTERVAL = timedelta(days=30)
START = datetime(2031, 3, 1)
NODES = (1, 2, 3)
MB = 10**6


def _replicas(rng: random.Random, count: int = 300, *, verified_days_ago=lambda rng: 0.0,
              spread: bool = True) -> list[AuditCandidate]:
    out = []
    for i in range(count):
        verified = START - timedelta(days=verified_days_ago(rng))
        out.append(AuditCandidate(
            replica_id=i + 1, node_id=NODES[i % len(NODES)], bytes=rng.randint(1 * MB, 200 * MB),
            verified_at=verified, next_audit_at=verified + INTERVAL * ((0.5 + 0.5 * rng.random()) if spread else 1),
        ))
    return out


def _simulate(replicas: list[AuditCandidate], budget: int, days: int = 30, seed: int = 0):
    """Run the planner once a day; audits happen during the day and move each copy's dates like audit_replica."""
    rng = random.Random(seed)
    state = {r.replica_id: r for r in replicas}
    audited: dict[int, list[datetime]] = {r.replica_id: [] for r in replicas}
    reads = {node: [0] * days for node in NODES}
    for day in range(days):
        now = START + DAY * day
        loads = {node: NodeLoad(node, sum(r.bytes for r in state.values() if r.node_id == node), budget)
                 for node in NODES}
        plan = plan_audits(state.values(), loads, interval=INTERVAL, now=now, period=DAY)
        for node, items in plan.chosen.items():
            for item in items:
                when = now + timedelta(hours=rng.uniform(0, 23))
                state[item.replica_id] = replace(item, verified_at=when,
                                                 next_audit_at=when + INTERVAL * (0.5 + 0.5 * rng.random()))
                audited[item.replica_id].append(when)
                reads[node][day] += item.bytes
        assert not plan.too_large
    return audited, reads


def test_every_copy_is_audited_within_the_interval_evenly_and_within_budget():
    replicas = _replicas(random.Random(7))  # all written on day 0: the worst case for bursts
    per_node_total = max(sum(r.bytes for r in replicas if r.node_id == n) for n in NODES)
    budget = int(per_node_total / 30 * 2.5)
    audited, reads = _simulate(replicas, budget)
    assert all(days for days in audited.values()), "some copy was never audited in 30 days"
    for node, per_day in reads.items():
        assert max(per_day) <= budget
        mean = sum(per_day) / len(per_day)
        assert max(per_day) <= 2 * mean, f"node {node} reads in bursts: max {max(per_day)}, mean {mean:.0f}"
        assert min(per_day) > 0, f"node {node} has idle days while copies wait"
        assert sum(per_day) < 2 * sum(r.bytes for r in replicas if r.node_id == node), "copies re-read too often"


def test_copies_of_mixed_ages_are_each_audited_before_their_deadline():
    # verified up to 29 days ago, each due exactly one interval after: every deadline is in the next 30 days
    replicas = _replicas(random.Random(11), verified_days_ago=lambda rng: rng.uniform(0, 29), spread=False)
    budget = int(max(sum(r.bytes for r in replicas if r.node_id == n) for n in NODES) / 30 * 2.5)
    audited, reads = _simulate(replicas, budget)
    for r in replicas:
        assert audited[r.replica_id] and audited[r.replica_id][0] <= r.deadline(INTERVAL), r
    assert all(max(per_day) <= budget for per_day in reads.values())


def test_a_backlog_is_caught_up_as_fast_as_the_budget_allows_and_no_faster():
    replicas = _replicas(random.Random(3), verified_days_ago=lambda rng: 45)  # everything overdue
    budget = int(max(sum(r.bytes for r in replicas if r.node_id == n) for n in NODES) / 4)
    audited, reads = _simulate(replicas, budget, days=8)
    assert all(days for days in audited.values())
    for per_day in reads.values():
        assert max(per_day) <= budget
        assert per_day[0] > budget * 0.9  # the first days read nearly the whole budget


def test_reads_already_done_in_the_window_count_against_the_budget():
    replicas = [AuditCandidate(i, 1, 10 * MB, None, None) for i in range(1, 11)]  # never verified: all due
    loads = {1: NodeLoad(1, 100 * MB, budget_bytes=50 * MB, used_bytes=30 * MB)}
    plan = plan_audits(replicas, loads, interval=INTERVAL, now=START)
    assert plan.planned_bytes[1] == 20 * MB and plan.overdue_left[1] == 8


def test_a_copy_larger_than_the_budget_is_reported():
    replicas = [AuditCandidate(1, 1, 90 * MB, START, START), AuditCandidate(2, 1, 5 * MB, START, START)]
    plan = plan_audits(replicas, {1: NodeLoad(1, 95 * MB, 50 * MB)}, interval=INTERVAL, now=START)
    assert plan.too_large == [1] and plan.replica_ids() == [2]


def test_windows_and_periods():
    assert planning_period(timedelta(days=90)) == DAY
    assert planning_period(timedelta(seconds=20)) == timedelta(seconds=2)
    start, end = planning_window(datetime(2031, 3, 1, 15, 30), DAY)
    assert (start, end) == (datetime(2031, 3, 1), datetime(2031, 3, 2))
    with pytest.raises(ValueError):
        plan_audits([], {}, interval=timedelta(0), now=START)
