"""Which copies to audit in the current planning window: a pure function, testable with a simulated clock.

Goals, per node: every copy is re-read in full within the audit interval;
reads are spread evenly over the interval (no bursts when many copies were
written the same day); no window reads more than the node's budget.

Each copy has a deadline: the earlier of ``next_audit_at`` and ``verified_at
+ interval``.  Each window a node reads about ``total / (interval × fill)``
bytes — the steady pace that re-reads everything in ``fill`` of the interval,
leaving slack for catch-up — taking copies earliest deadline first.  Copies
whose deadline falls before the end of the *next* window are always taken
(so they are read before their deadline, whatever the hour), but never
beyond the budget.  A copy larger than a whole window's budget cannot be
audited within it and is reported, not silently skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Iterable, Mapping

DAY = timedelta(days=1)
EPOCH = datetime(2000, 1, 1)
DEFAULT_FILL = 0.8


@dataclass(frozen=True)
class AuditCandidate:
    replica_id: int
    node_id: int
    bytes: int
    verified_at: datetime | None
    next_audit_at: datetime | None

    def deadline(self, interval: timedelta) -> datetime:
        options = [d for d in (self.next_audit_at, self.verified_at + interval if self.verified_at else None) if d]
        return min(options) if options else EPOCH


@dataclass(frozen=True)
class NodeLoad:
    node_id: int
    total_bytes: int  # every auditable byte on the node
    budget_bytes: float  # what the node may read in one window
    used_bytes: int = 0  # already read, or queued to be read, in this window


@dataclass
class AuditPlan:
    window_start: datetime
    window_end: datetime
    chosen: dict[int, list[AuditCandidate]] = field(default_factory=dict)  # node id -> EDF order
    planned_bytes: dict[int, int] = field(default_factory=dict)
    too_large: list[int] = field(default_factory=list)  # replica ids bigger than a window's budget
    overdue_left: dict[int, int] = field(default_factory=dict)  # node id -> due copies the budget could not fit

    def replica_ids(self) -> list[int]:
        return [c.replica_id for items in self.chosen.values() for c in items]


def planning_period(interval: timedelta) -> timedelta:
    """One day, or a tenth of the interval when that is shorter."""
    return min(DAY, interval / 10)


def planning_window(now: datetime, period: timedelta) -> tuple[datetime, datetime]:
    """The window (aligned on ``EPOCH``) that contains ``now``."""
    index = (now - EPOCH) // period
    start = EPOCH + period * index
    return start, start + period


def plan_audits(
    candidates: Iterable[AuditCandidate],
    loads: Mapping[int, NodeLoad],
    *,
    interval: timedelta,
    now: datetime,
    period: timedelta = DAY,
    fill: float = DEFAULT_FILL,
) -> AuditPlan:
    """Choose the copies to audit in the window containing ``now``, per node, earliest deadline first.

    ``candidates`` are the auditable copies not already queued; ``loads``
    gives each node's totals and budget for one window.  Raises ValueError for
    a non-positive interval, period or fill.
    """
    if interval <= timedelta(0) or period <= timedelta(0) or not 0 < fill <= 1:
        raise ValueError("interval and period must be positive and fill in (0, 1]")
    start, end = planning_window(now, period)
    plan = AuditPlan(start, end)
    by_node: dict[int, list[AuditCandidate]] = {}
    for c in candidates:
        by_node.setdefault(c.node_id, []).append(c)
    for node_id, items in sorted(by_node.items()):
        load = loads.get(node_id)
        if load is None:
            continue
        plan.too_large.extend(c.replica_id for c in items if c.bytes > load.budget_bytes)
        items = sorted((c for c in items if c.bytes <= load.budget_bytes),
                       key=lambda c: (c.deadline(interval), c.replica_id))
        budget_left = load.budget_bytes - load.used_bytes
        pace = load.total_bytes * (period / interval) / fill
        due_by = end + period
        due = sum(c.bytes for c in items if c.deadline(interval) < due_by)
        quota = min(budget_left, max(pace - load.used_bytes, due))
        picked: list[AuditCandidate] = []
        used = 0
        for c in items:
            is_due = c.deadline(interval) < due_by
            if used >= quota and not is_due:
                break
            if used + c.bytes > budget_left:
                if is_due:
                    plan.overdue_left[node_id] = plan.overdue_left.get(node_id, 0) + 1
                continue
            picked.append(c)
            used += c.bytes
        if picked:
            plan.chosen[node_id] = picked
            plan.planned_bytes[node_id] = used
    return plan
