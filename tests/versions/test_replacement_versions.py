"""A lost node's copies of a version are placed again only beside the earlier versions they reference."""

from __future__ import annotations

import bagit
import pytest

from preservation.ingest import ingest
from preservation.nodes import add_node, set_node_status
from preservation.errors import PlacementError
from preservation.upkeep import missing_copies
from preservation.upkeep.missing_copies import place_missing_copies

from ..faults.work import run_worker_once
from ..fixtures import node_root, replicas_by_node
from .helpers import FIRST, fetch_into, second, write_delivery


def test_a_version_is_placed_again_only_where_the_versions_it_references_are(repo, tmp_path):
    v1 = ingest(repo, write_delivery(tmp_path / "v1", FIRST), "journals")["package_id"]
    v2 = ingest(repo, write_delivery(tmp_path / "v2", second(FIRST)), "journals", version_of=v1)["package_id"]
    add_node(repo, "cas-two", "cas", "shanghai", (repo.settings.home / "nodes" / "cas-two").as_uri())
    set_node_status(repo, "cas-nsl", "offline")
    with pytest.raises(PlacementError):  # version 2 first: no active node it could go to holds version 1 yet
        missing_copies._ensure_placement(repo, v2, "test")
    assert "cas-two" not in replicas_by_node(repo, v2)
    rounds = []
    for _ in range(3):  # the scheduler's catch-up, round after round, and a worker
        rounds.append(place_missing_copies(repo))
        run_worker_once(repo)
    assert sum(r["placed"] for r in rounds) == 2
    for package_id in (v1, v2):
        assert replicas_by_node(repo, package_id)["cas-two"].state == "verified"
    fetched = fetch_into(node_root(repo, "cas-two"), v2, tmp_path / "fetched")
    bagit.Bag(str(fetched)).validate()
