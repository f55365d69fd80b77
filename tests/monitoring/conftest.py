"""A small network for the monitoring tests: two filesystem nodes and one node agent run as a real process
(so that it can be killed), a catalog on SQLite, and monitoring settings fast enough for a test."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from devtools.demo import make_sample_delivery
from preservation.collection import add_collection
from preservation.home import init_home
from preservation.ingest import ingest
from preservation.nodes import add_node
from preservation.repository import Repository

from ..node_agent.agents import KEY, KEY_ID, AgentProcess, write_keys_file
from ..services import free_port

FAST_MONITORING = {"heartbeat_seconds": 1, "silent_after_seconds": 4, "probe_timeout_seconds": 15,
                   "node_unreachable_alert_seconds": 0}


@dataclass
class World:
    home: Path
    repo: Repository
    agent: AgentProcess
    tmp: Path

    def node_root(self, name: str) -> Path:
        return self.agent.root if name == "inst" else self.home / "nodes" / name

    def reopen(self) -> Repository:
        """The repository again, with preserve.yaml read afresh."""
        self.repo.close()
        self.repo = Repository.open(self.home)
        return self.repo


def write_config(home: Path, *, monitoring: dict | None = None, alerts: str = "") -> None:
    """preserve.yaml: the agent's credentials, the monitoring settings, and an ``alerts:`` section as YAML text."""
    lines = ["node_credentials:", f"  inst: {{key_id: {KEY_ID}, key: '{KEY}'}}", "monitoring:"]
    lines += [f"  {k}: {v}" for k, v in {**FAST_MONITORING, **(monitoring or {})}.items()]
    (home / "preserve.yaml").write_text("\n".join(lines) + "\n" + alerts, encoding="utf-8")


@pytest.fixture
def world(tmp_path):
    keys = write_keys_file(tmp_path / "keys.yaml", {KEY_ID: KEY})
    root = tmp_path / "agent-root"
    root.mkdir()
    agent = AgentProcess(root, keys, free_port(), tmp_path / "agent.log").start()
    try:
        agent.wait_ready()
        home = tmp_path / "home"
        home.mkdir()
        write_config(home)
        init_home(home)
        repo = Repository.open(home)
        add_node(repo, "uni", "university", "beijing", (home / "nodes" / "uni").as_uri())
        add_node(repo, "cas", "cas", "beijing", (home / "nodes" / "cas").as_uri())
        add_node(repo, "inst", "institute", "wuhan", agent.uri)
        add_collection(repo, "journals", "中文期刊 Journals", publisher="P", licence="L")
        w = World(home, repo, agent, tmp_path)
        yield w
        w.repo.close()
    finally:
        agent.stop()


@pytest.fixture
def preserved_in(world) -> str:
    """The id of a sample delivery preserved on the world's three nodes."""
    result = ingest(world.repo, make_sample_delivery(world.tmp / "delivery", megabytes=1), "journals")
    assert result["state"] == "preserved"
    return result["package_id"]
