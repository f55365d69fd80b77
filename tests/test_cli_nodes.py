"""Operator commands on nodes (issue 19): a missing file:// root, missing credentials, set-uri, rename, remove."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from preservation.catalog.models import Node, Replica
from preservation.ingest import ingest
from preservation.runtime.handlers import default_registry
from preservation.runtime.worker import Worker, WorkerOptions
from preservation.upkeep.missing_copies import place_missing_copies

from .fixtures import NODES, make_repo


def test_a_missing_file_root_is_refused_unless_create(run_cli, tmp_path):
    run_cli("init")
    root = tmp_path / "mnt" / "disk1"
    out = run_cli("node", "add", "n1", "--type", "cas", "--region", "x", "--uri", root.as_uri(), "--json",
                  exit_code=4)
    assert json.loads(out.stderr)["error"]["code"] == "E100" and "--create" in json.loads(out.stderr)["error"]["message"]
    assert not root.exists() and not (tmp_path / "mnt").exists()
    assert run_cli("node", "list", "--json").json() == {"nodes": [], "count": 0}
    added = run_cli("node", "add", "n1", "--type", "cas", "--region", "x", "--uri", root.as_uri(), "--create",
                    "--json").json()
    assert added["name"] == "n1" and root.is_dir()


def test_a_node_agent_without_credentials_names_node_credentials(run_cli, monkeypatch):
    monkeypatch.delenv("PRESERVE_NODE_KEY", raising=False)
    run_cli("init")
    out = run_cli("node", "add", "agent1", "--type", "cas", "--region", "x", "--uri", "node+http://127.0.0.1:9",
                  exit_code=4)
    assert "node_credentials" in out.stderr and "agent1" in out.stderr
    assert run_cli("node", "list", "--json").json()["count"] == 0


def test_set_uri_and_rename(run_cli, tmp_path):
    run_cli("init")
    run_cli("node", "add", "n1", "--type", "cas", "--region", "x", "--uri", (tmp_path / "a").as_uri(), "--create")
    run_cli("node", "add", "n2", "--type", "cas", "--region", "x", "--uri", (tmp_path / "b").as_uri(), "--create")
    missing = tmp_path / "typo"
    run_cli("node", "set-uri", "n1", missing.as_uri(), exit_code=4)
    assert not missing.exists()
    (tmp_path / "moved").mkdir()
    moved = run_cli("node", "set-uri", "n1", (tmp_path / "moved").as_uri(), "--json").json()
    assert moved["uri"] == (tmp_path / "moved").as_uri()
    assert run_cli("node", "rename", "n1", "n2", exit_code=6).stderr
    assert run_cli("node", "rename", "n1", "bad name/x", exit_code=2).stderr
    renamed = run_cli("node", "rename", "n1", "pku-1", "--json").json()
    assert renamed["name"] == "pku-1" and renamed["credentials_to_rename"] is False
    assert [n["name"] for n in run_cli("node", "list", "--json").json()["nodes"]] == ["n2", "pku-1"]
    run_cli("node", "rename", "nope", "x", exit_code=5)
    kinds = [e["detail"] for e in run_cli("events", "list", "--type", "metadata modification", "--json").json()["events"]]
    assert {"node": "pku-1", "previous_name": "n1"} in kinds


def test_remove_only_after_a_drain_that_leaves_no_copy_behind(run_cli, sample_delivery):
    repo = make_repo(run_cli.home, nodes=[*NODES, ("uni-thu", "university", "beijing")])
    try:
        package_id = ingest(repo, str(sample_delivery), "journals")["package_id"]
        with repo.catalog.session() as s:
            holders = set(s.scalars(select(Node.name).join(Replica).where(Replica.package_id == package_id)))
        victim = next(n for n in holders if n.startswith("uni-"))  # the other university node can take its copy
        out = run_cli("node", "remove", victim, "--json", exit_code=21)
        assert json.loads(out.stderr)["error"]["code"] == "E117" and "drain it first" in json.loads(out.stderr)["error"]["message"]
        run_cli("node", "set-status", victim, "draining")
        out = run_cli("node", "remove", victim, exit_code=21)
        assert "still holds copies that are needed" in out.stderr and package_id in out.stderr
        place_missing_copies(repo)
        Worker(repo, default_registry(), WorkerOptions(once=True)).run()
        removed = run_cli("node", "remove", victim, "--json").json()
        assert removed["copies_forgotten"] == 1
        with repo.catalog.session() as s:
            assert s.scalar(select(func.count()).select_from(Node).where(Node.name == victim)) == 0
            states = list(s.scalars(select(Replica.state).where(Replica.package_id == package_id)))
        assert states == ["verified"] * 3
        assert run_cli("package", "show", package_id[:8], "--json").json()["verified_copies"] == 3
        deletion = run_cli("events", "list", "--type", "deletion", "--node", victim, "--json").json()
        assert deletion["count"] == 1 and deletion["events"][0]["package_id"] == package_id
    finally:
        repo.close()
