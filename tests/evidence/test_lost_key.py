"""Losing the coordinator's signing key is survivable: a new key is introduced by a checkpoint it signs, and counts
only once a quorum of witness nodes co-signed it (`preserve events rotate-key --lost`)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from preservation import checkpoints, witness
from preservation.errors import QuorumNotReached
from preservation.nodes import set_node_status
from preservation.repository import Repository
from preservation.settings import REPO_ROOT

from .witnesses import append_events, make_network

VERIFIER = REPO_ROOT / "tools" / "verify_proof.py"


def _verify(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-I", str(VERIFIER), *map(str, args)], capture_output=True, text=True,
                          timeout=60)


def test_a_lost_key_is_replaced_only_with_a_quorum_of_witnesses(run_cli, agents, tmp_path):
    repo = make_network(run_cli.home, agents)
    try:
        ids = append_events(repo, 10)
        witness.checkpoint_and_witness(repo)
        cfg = repo.settings.checkpoints
        old_pubs = sorted(cfg.key.parent.glob("*.pub"))
        cfg.key.unlink()  # the signing key is lost
        for name in ("cas", "inst"):
            set_node_status(repo, name, "offline")
        with pytest.raises(QuorumNotReached) as refused:
            witness.introduce_key(repo)
        assert refused.value.params["cosigned_by"] == 1 and refused.value.params["quorum"] == 2
        assert not cfg.key.exists() and sorted(cfg.key.parent.glob("*.pub")) == old_pubs  # nothing installed
        for name in ("cas", "inst"):
            set_node_status(repo, name, "active")
    finally:
        repo.close()
    # the same new key and checkpoint sent again, now to every node
    out = run_cli("events", "rotate-key", "--lost", "--json").json()
    assert out["installed"] and out["cosigned_by"] == 3 and out["quorum"] == 2 and out["retired"] is None
    repo = Repository.open(run_cli.home)
    try:
        assert checkpoints.signing_key(repo.settings).key_id == out["key_id"]
        late = append_events(repo, 3, start=10)
        made = witness.checkpoint_and_witness(repo)  # the nodes take checkpoints signed by the new key
        assert {n["status"] for n in made["witnesses"]["nodes"]} == {"witnessed"}
        with repo.catalog.session() as s:
            assert checkpoints.check_checkpoints(s, repo.settings)["ok"]
        assert witness.verify_witnesses(repo)["ok"]
        witness_pubs = sorted((cfg.key.parent / "witnesses").glob("*.pub"))
    finally:
        repo.close()
    proof = tmp_path / "proof.json"
    proof.write_text(run_cli("events", "prove", late[0]).output, encoding="utf-8")
    assert len(json.loads(proof.read_text())["key_introductions"]) == 1
    # a third party holding the old public key: the new key counts with the witnesses' keys, not without
    assert _verify(proof, *old_pubs).returncode == 1
    done = _verify(proof, *old_pubs, *[a for p in witness_pubs for a in ("--witness", p)])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "co-signed by 3 of 3 witnesses" in done.stdout
    more = _verify(proof, *old_pubs, *[a for p in witness_pubs for a in ("--witness", p)], "--quorum", "4")
    assert more.returncode == 1 and "not signed by any key given" in more.stdout
    one = _verify(proof, *old_pubs, "--witness", witness_pubs[0], "--quorum", "2")
    assert one.returncode == 1
    # an event from before the loss proves too, against the latest checkpoint (signed by the new key)
    proof.write_text(run_cli("events", "prove", ids[2]).output, encoding="utf-8")
    assert _verify(proof, *old_pubs, *[a for p in witness_pubs for a in ("--witness", p)]).returncode == 0


def test_the_lost_key_command_needs_its_flag(run_cli):
    run_cli("init")
    assert "--lost" in run_cli("events", "rotate-key", exit_code=2).stderr
