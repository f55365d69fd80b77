"""Placement picks nodes that satisfy the policy, spreading regions and load."""

from __future__ import annotations

import pytest

from preservation.catalog.models import Node
from preservation.errors import PlacementError
from preservation.placement import Candidate, choose_nodes, unmet_requirements
from preservation.policy import ReplicationPolicy

POLICY = ReplicationPolicy(copies=3, organisation_types=["university", "cas", "institute"], min_regions=2)


def node(i, org, region, status="active", capacity=None):
    return Node(id=i, name=f"n{i}", org_type=org, region=region, uri=f"file:///n{i}", status=status,
                capacity_bytes=capacity)


def test_one_of_each_type_across_regions():
    nodes = [node(1, "university", "bj"), node(2, "university", "sh"), node(3, "cas", "bj"),
             node(4, "institute", "bj"), node(5, "institute", "wh")]
    chosen = choose_nodes(POLICY, [Candidate(n, 0) for n in nodes], 100)
    assert sorted(n.org_type for n in chosen) == ["cas", "institute", "university"]
    assert len({n.region for n in chosen}) == 3  # the most regions available
    assert not unmet_requirements(POLICY, chosen)


def test_prefers_less_used_nodes():
    nodes = [node(1, "university", "bj"), node(2, "university", "bj"), node(3, "cas", "sh"), node(4, "institute", "wh")]
    chosen = choose_nodes(POLICY, [Candidate(nodes[0], 10**12), *[Candidate(n, 0) for n in nodes[1:]]], 100)
    assert "n2" in [n.name for n in chosen] and "n1" not in [n.name for n in chosen]


def test_full_offline_and_draining_nodes_are_skipped():
    nodes = [node(1, "university", "bj", capacity=50), node(2, "university", "bj", status="draining"),
             node(3, "cas", "sh"), node(4, "institute", "wh")]
    with pytest.raises(PlacementError) as e:
        choose_nodes(POLICY, [Candidate(n, 0) for n in nodes], 100)
    assert "university" in str(e.value)


def test_region_rule_is_enforced():
    nodes = [node(1, "university", "bj"), node(2, "cas", "bj"), node(3, "institute", "bj")]
    with pytest.raises(PlacementError) as e:
        choose_nodes(POLICY, [Candidate(n, 0) for n in nodes], 1)
    assert "2 regions" in str(e.value)


def test_rereplication_adds_to_existing_copies():
    existing = [node(1, "university", "bj"), node(3, "cas", "sh")]
    spare = [node(4, "institute", "wh"), node(5, "institute", "sh")]
    chosen = choose_nodes(POLICY, [Candidate(n, 0) for n in existing + spare], 1, existing=existing)
    assert [n.org_type for n in chosen] == ["institute"] and len(chosen) == 1


def test_nothing_needed_when_satisfied():
    existing = [node(1, "university", "bj"), node(3, "cas", "sh"), node(4, "institute", "wh")]
    assert choose_nodes(POLICY, [Candidate(n, 0) for n in existing], 1, existing=existing) == []


def test_large_networks_use_the_greedy_search():
    nodes = [node(i, ("university", "cas", "institute")[i % 3], f"r{i % 7}") for i in range(60)]
    chosen = choose_nodes(POLICY, [Candidate(n, i) for i, n in enumerate(nodes)], 1)
    assert not unmet_requirements(POLICY, chosen) and len(chosen) == 3
