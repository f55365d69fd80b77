"""The three-node example in config/three-node/ is consistent: the coordinator holds each agent's key."""

from __future__ import annotations

import subprocess

from preservation.node_agent import load_keys
from preservation.settings import load_settings

from .agents import REPO

EXAMPLE = REPO / "config" / "three-node"
NODES = ("university-wuhan", "cas-beijing", "institute-shanghai")


def test_coordinator_credentials_match_the_agents_keys_files():
    settings = load_settings(EXAMPLE)
    assert sorted(settings.node_credentials) == sorted(NODES)
    for node in NODES:
        credentials = settings.node_credentials[node]
        agent_keys = load_keys(EXAMPLE / "agents" / f"{node}.keys.yaml")
        assert agent_keys[credentials.key_id] == credentials.key.encode()
        assert credentials.key.startswith("EXAMPLE-ONLY-")


def test_run_agents_script_parses_and_names_the_three_ports():
    script = EXAMPLE / "run-agents.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text()
    assert "ports=(8101 8102 8103)" in text and all(node in text for node in NODES)  # the defaults
