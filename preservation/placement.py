"""Placement: which nodes get the copies of a package.

A valid placement holds ``copies`` replicas, at least one on every
organisation type the policy names, across at least ``min_regions`` regions,
only on active nodes with room.  Among valid placements the one with the most
regions, then the lowest fill, wins; small networks are searched exhaustively,
large ones greedily.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Sequence

from preservation.catalog.models import NODE_ACTIVE, Node
from preservation.errors import PlacementError
from preservation.policy import ReplicationPolicy

EXHAUSTIVE_LIMIT = 20_000


@dataclass(frozen=True)
class Candidate:
    node: Node
    used_bytes: int

    @property
    def name(self) -> str:
        return self.node.name

    def free_bytes(self) -> float:
        if self.node.capacity_bytes is None:
            return math.inf
        return self.node.capacity_bytes - self.used_bytes

    def fill_after(self, size: int) -> float:
        if self.node.capacity_bytes is None or self.node.capacity_bytes <= 0:
            return 0.0
        return (self.used_bytes + size) / self.node.capacity_bytes


def unmet_requirements(policy: ReplicationPolicy, nodes: Sequence[Node]) -> list[str]:
    """What ``nodes`` lack to satisfy the policy, in words; empty when they satisfy it."""
    missing = []
    if len(nodes) < policy.copies:
        missing.append(f"{policy.copies} copies (have {len(nodes)})")
    types = {n.org_type for n in nodes}
    for t in policy.organisation_types:
        if t not in types:
            missing.append(f"a copy on a {t} node")
    regions = {n.region for n in nodes}
    if len(regions) < policy.min_regions:
        missing.append(f"copies in {policy.min_regions} regions (have {len(regions)})")
    return missing


def _score(combo: Sequence[Candidate], existing: Sequence[Node], size: int) -> tuple:
    regions = {c.node.region for c in combo} | {n.region for n in existing}
    worst_fill = max((c.fill_after(size) for c in combo), default=0.0)
    return (-len(regions), worst_fill, sum(c.used_bytes for c in combo), tuple(c.name for c in combo))


def choose_nodes(
    policy: ReplicationPolicy, candidates: Sequence[Candidate], size: int, existing: Sequence[Node] = ()
) -> list[Node]:
    """Nodes to add to ``existing`` so that together they satisfy ``policy``.

    Raises PlacementError naming what cannot be satisfied.
    """
    held = {n.id for n in existing}
    need = policy.copies - len(existing)
    if need <= 0 and not unmet_requirements(policy, existing):
        return []
    if need <= 0:
        need = 0
    usable = [
        c for c in candidates if c.node.id not in held and c.node.status == NODE_ACTIVE and c.free_bytes() >= size
    ]
    usable.sort(key=lambda c: (c.used_bytes, c.name))
    # When existing copies miss a type or region, extra copies may be needed beyond `copies`.
    for extra in range(need, need + len(policy.organisation_types) + policy.min_regions + 1):
        if extra == 0:
            continue
        combo = _best_combo(policy, usable, size, existing, extra)
        if combo is not None:
            return [c.node for c in combo]
    active = [c for c in candidates if c.node.status == NODE_ACTIVE]
    lacking = unmet_requirements(policy, list(existing) + [c.node for c in usable])
    detail = "; ".join(lacking) if lacking else "no combination of nodes with room satisfies it"
    raise PlacementError(
        f"policy needs {detail}. Active nodes: {len(active)}, with room for {size} bytes: {len(usable)}. "
        "Add nodes (`preserve node add`) or free space."
    )


def _best_combo(
    policy: ReplicationPolicy, usable: Sequence[Candidate], size: int, existing: Sequence[Node], k: int
) -> tuple[Candidate, ...] | None:
    if k > len(usable):
        return None
    if math.comb(len(usable), k) <= EXHAUSTIVE_LIMIT:
        valid = [
            combo
            for combo in itertools.combinations(usable, k)
            if not unmet_requirements(policy, list(existing) + [c.node for c in combo])
        ]
        return min(valid, key=lambda combo: _score(combo, existing, size)) if valid else None
    return _greedy(policy, usable, existing, k)


def _greedy(
    policy: ReplicationPolicy, usable: Sequence[Candidate], existing: Sequence[Node], k: int
) -> tuple[Candidate, ...] | None:
    chosen: list[Candidate] = []
    types = {n.org_type for n in existing}
    regions = {n.region for n in existing}
    pool = list(usable)

    def take(pred) -> bool:
        options = [c for c in pool if pred(c)]
        if not options:
            return False
        options.sort(key=lambda c: (c.node.region in regions, c.used_bytes, c.name))
        pick = options[0]
        pool.remove(pick)
        chosen.append(pick)
        types.add(pick.node.org_type)
        regions.add(pick.node.region)
        return True

    for t in policy.organisation_types:
        if t not in types and len(chosen) < k:
            take(lambda c, t=t: c.node.org_type == t)
    while len(chosen) < k:
        if not take(lambda c: True):
            break
    result = tuple(chosen)
    return result if not unmet_requirements(policy, list(existing) + [c.node for c in result]) else None
