"""Nodes witness the event log: agents (real processes) co-sign and keep checkpoints, refuse forks, truncations
and rewrites; `events verify --witnesses` names the first event that is not what a node witnessed."""

from __future__ import annotations

import base64
import json
import stat

import pytest
from sqlalchemy import select

from preservation import checkpoints, witness
from preservation.catalog.evidence_models import Checkpoint
from preservation.catalog.models import Node
from preservation.errors import CheckpointInvalid, InvalidRequest, ReadOnlyStorage, WitnessRefused
from preservation.home import init_home
from preservation.nodes import add_node, set_node_status
from preservation.notes import cosigners, signatures
from preservation.repository import Repository
from preservation.witness_records import latest_key, log_prefix, read_latest
from storage_adapters.features import FEATURE_WITNESS

from ..node_agent.agents import ThreadedAgent
from .witnesses import (
    AGENTS,
    append_events,
    forget_checkpoints_after,
    make_network,
    rewrite_outcome,
    truncate,
)


@pytest.fixture
def network(tmp_path, agents):
    repo = make_network(tmp_path / "home", agents)
    try:
        yield repo
    finally:
        repo.close()


def _node(repo, name):
    with repo.catalog.session() as s:
        node = s.scalars(select(Node).where(Node.name == name)).one()
        s.expunge(node)
    return node


def _checkpoint(repo):
    return witness.checkpoint_and_witness(repo)


def _statuses(result):
    return {n["node"]: n["status"] for n in result["witnesses"]["nodes"]}


def test_agents_co_sign_and_keep_each_checkpoint_and_file_nodes_get_a_record(network, agents):
    append_events(network, 12)
    made = _checkpoint(network)
    assert _statuses(made) == {"uni": "witnessed", "cas": "witnessed", "inst": "witnessed", "archive": "witnessed"}
    kinds = {n["node"]: n["witness"] for n in made["witnesses"]["nodes"]}
    assert kinds == {"uni": "agent", "cas": "agent", "inst": "agent", "archive": "record"}
    keys = witness.witness_keys(network.settings)
    assert sorted(keys) == ["cas", "inst", "uni"]
    with network.catalog.session() as s:
        note = s.get(Checkpoint, 12).note
    known = {k["key_id"]: (k["name"], k["key"]) for k in keys.values()}
    assert len(cosigners(note, known)) == 3  # the catalog's note carries the three co-signatures
    origin = network.settings.checkpoints.origin
    for name, _, _ in AGENTS:
        # kept on the agent's own storage, co-signed with its key; its private key is 0600
        record = json.loads((agents[name].root / latest_key(origin)).read_text())
        assert record["size"] == 12 and keys[name]["key_id"] in cosigners(record["note"], known)
        assert stat.S_IMODE(agents[name].witness_key.stat().st_mode) == 0o600
    record = read_latest(network.adapter(_node(network, "archive")), origin)
    assert record["size"] == 12 and not cosigners(record["note"], known)  # the coordinator's copy: no co-signature
    # a node catches up through the checkpoints it missed, each step with a consistency proof from its last
    append_events(network, 5, start=12)
    _checkpoint(network)
    append_events(network, 5, start=17)
    again = _checkpoint(network)
    assert set(_statuses(again).values()) == {"witnessed"}
    assert {n["node"]: n["held_before"] for n in again["witnesses"]["nodes"]} == dict.fromkeys(
        ["uni", "cas", "inst", "archive"], 17)
    assert {n["size"] for n in again["witnesses"]["nodes"]} == {22}
    report = witness.verify_witnesses(network)
    assert report["ok"] and report["first_bad_event"] is None
    assert {n["node"]: n["checkpoints"] for n in report["nodes"]} == dict.fromkeys(["uni", "cas", "inst", "archive"], 3)


def test_a_consistent_rewrite_passes_the_chain_but_not_the_witnesses(tmp_path, agents, run_cli, catalog_url):
    repo = make_network(run_cli.home, agents, catalog_url)
    try:
        ids = append_events(repo, 25)
        _checkpoint(repo)
        append_events(repo, 10, start=25)
        _checkpoint(repo)
        rewrite_outcome(repo, 9, "failure")
    finally:
        repo.close()
    assert run_cli("events", "verify", "--json").json()["ok"]  # the chain alone: intact
    out = run_cli("events", "verify", "--witnesses", "--json", exit_code=1).json()
    assert not out["ok"] and out["chain"]["ok"]
    assert out["first_bad_event"]["seq"] == 9 and out["first_bad_event"]["event_id"] == ids[8]
    assert "rewritten" in out["first_bad_event"]["reason"]
    assert {n["node"] for n in out["nodes"] if not n["ok"]} == {"uni", "cas", "inst", "archive"}
    text = run_cli("events", "verify", "--witnesses", exit_code=1)
    assert f"event 9 ({ids[8]})" in text.stderr
    # and the agents refuse the rewritten log: its next checkpoint is not consistent with what they signed
    repo = Repository.open(run_cli.home)
    try:
        forget_checkpoints_after(repo, 0)  # the administrator also hides the old checkpoints, to sign anew
        append_events(repo, 1, start=35)
        made = _checkpoint(repo)
    finally:
        repo.close()
    refused = {n["node"]: n for n in made["witnesses"]["nodes"]}
    for name in ("uni", "cas", "inst", "archive"):
        assert refused[name]["status"] == "refused" and refused[name]["error"]["code"] == "E703"


def test_truncation_is_detected_and_refused(network):
    ids = append_events(network, 30)
    _checkpoint(network)
    truncate(network, 20)
    report = witness.verify_witnesses(network)
    assert not report["ok"] and report["chain"]["ok"]
    assert report["first_bad_event"]["seq"] == 21 and report["first_bad_event"]["event_id"] is None
    assert "truncated" in report["first_bad_event"]["reason"]
    made = _checkpoint(network)  # a checkpoint of the shorter log: every node refuses it
    assert set(_statuses(made).values()) == {"refused"}
    assert all("truncated" in n["error"]["message"] for n in made["witnesses"]["nodes"])
    # a log grown again past what the nodes hold, with other events 21..: a rewrite, refused too
    append_events(network, 15, start=100)
    made = _checkpoint(network)
    assert set(_statuses(made).values()) == {"refused"}
    assert ids[20] not in json.dumps(report)  # the missing event is named by its number only


def test_a_fork_shown_to_two_nodes_is_detected(network):
    uni, cas = _node(network, "uni"), _node(network, "cas")
    ids = append_events(network, 16)
    with network.catalog.session() as s:
        checkpoints.make_checkpoint(s, network.settings)
    assert witness.witness_node(network, uni)["status"] == "witnessed"  # history A, shown to uni only
    rewrite_outcome(network, 5, "failure")  # history B …
    forget_checkpoints_after(network, 0)
    with network.catalog.session() as s:
        checkpoints.make_checkpoint(s, network.settings)
    assert witness.witness_node(network, cas)["status"] == "witnessed"  # … shown to cas
    refused = witness.witness_node(network, uni)  # uni refuses B: same size, another root
    assert refused["status"] == "refused" and "fork" in refused["error"]["message"]
    report = witness.verify_witnesses(network)
    by_node = {n["node"]: n for n in report["nodes"]}
    assert by_node["cas"]["ok"] and not by_node["uni"]["ok"]
    assert report["first_bad_event"]["node"] == "uni" and report["first_bad_event"]["event_id"] == ids[4]


def _agent(network, name):
    adapter = network.adapter(_node(network, name))
    return adapter, adapter.features.provider(FEATURE_WITNESS)


def _document(network, size, leaves, proof=(), note=None):
    with network.catalog.session() as s:
        note = note or s.get(Checkpoint, size).note
    return {"note": note, "consistency": [base64.b64encode(p).decode() for p in proof],
            "leaves": base64.b64encode(leaves).decode(), "log_keys": witness._log_keys(network.settings), "introduce": False}


def test_an_agent_refuses_what_does_not_extend_its_last_checkpoint(network):
    append_events(network, 8)
    with network.catalog.session() as s:
        checkpoints.make_checkpoint(s, network.settings)
        hashes = witness._event_hashes(s, 0, 8)
    _, agent = _agent(network, "inst")
    wrong = bytearray(hashes)
    wrong[5 * 32] ^= 1  # one bit of event 6
    with pytest.raises(WitnessRefused, match="do not lead to the signed root"):
        agent.witness(_document(network, 8, bytes(wrong)))
    with pytest.raises(WitnessRefused, match="event hashes sent"):
        agent.witness(_document(network, 8, hashes[:-32]))
    assert agent.witness(_document(network, 8, hashes))["size"] == 8
    # taken once, the same size with another root is a fork; a smaller one a truncation
    with network.catalog.session() as s:
        note = s.get(Checkpoint, 8).note
    forged = note.replace(note.split("\n")[2], base64.b64encode(b"\1" * 32).decode())
    with pytest.raises(CheckpointInvalid):  # not signed by the log's key: refused before anything else
        agent.witness(_document(network, 8, b"", note=forged))


def test_hostile_witness_requests_are_refused_with_coded_4xx(network):
    append_events(network, 3)
    with network.catalog.session() as s:
        checkpoints.make_checkpoint(s, network.settings)
    adapter, agent = _agent(network, "cas")
    good = _document(network, 3, b"\0" * 96)
    for bad, error in [
        ({**good, "note": 5}, InvalidRequest),
        ({**good, "note": "x" * 70000}, CheckpointInvalid),
        ({**good, "note": "a\nb\n\n"}, CheckpointInvalid),
        ({**good, "leaves": "***"}, InvalidRequest),
        ({**good, "leaves": base64.b64encode(b"\0" * 33).decode()}, InvalidRequest),
        ({**good, "consistency": ["AA=="]}, InvalidRequest),
        ({**good, "consistency": "AA=="}, InvalidRequest),
        ({**good, "log_keys": []}, InvalidRequest),
        ({**good, "log_keys": ["not+a+key"]}, CheckpointInvalid),
    ]:
        with pytest.raises(error):
            agent.witness(bad)
    assert read_latest(adapter, network.settings.checkpoints.origin) is None  # nothing was kept
    # and nobody writes or deletes the witness records through the object API
    with pytest.raises(ReadOnlyStorage):
        adapter.write(latest_key(network.settings.checkpoints.origin), b"{}")
    with pytest.raises(ReadOnlyStorage):
        adapter.write(log_prefix("x") + "anything", b"{}")


def test_a_node_that_is_no_witness_says_so(network, tmp_path):
    plain = ThreadedAgent(tmp_path / "plain", allow_delete=False)
    plain.start()
    try:
        with plain.adapter(retries=1, backoff=0.01) as adapter:
            with pytest.raises(InvalidRequest, match="not a witness"):
                adapter.features.provider(FEATURE_WITNESS).witness({"note": "x"})
    finally:
        plain.stop()


def test_the_cli_checkpoint_is_witnessed(run_cli, agents):
    repo = make_network(run_cli.home, agents)
    try:
        append_events(repo, 4)
    finally:
        repo.close()
    out = run_cli("events", "checkpoint", "--json").json()
    assert out["size"] == 4 and out["witnesses"]["count"] == 4 and out["witnesses"]["refused"] == 0
    assert len(list(signatures(out["note"]))) == 1  # the note as signed; the catalog's row gains the co-signatures
    again = run_cli("events", "checkpoint", "--json").json()  # nothing new: no node is sent anything again
    assert {n["node"]: n["status"] for n in again["witnesses"]["nodes"]} == dict.fromkeys(
        ["archive", "cas", "inst", "uni"], "up to date")
    text = run_cli("events", "checkpoint")
    assert "node uni (agent): up to date at 4 events" in text.output
    out = run_cli("events", "verify", "--witnesses", "--json").json()
    assert out["ok"] and out["count"] == 4


def test_an_s3_node_keeps_the_coordinators_record_and_shows_a_rewrite(tmp_path, s3_env, s3_bucket):
    home = tmp_path / "home"
    init_home(home)
    repo = Repository.open(home)
    try:
        add_node(repo, "inst-s3", "institute", "wuhan", s3_env.uri(s3_bucket, "inst"))
        ids = append_events(repo, 9)
        made = _checkpoint(repo)
        assert _statuses(made) == {"inst-s3": "witnessed"}
        assert made["witnesses"]["nodes"][0]["witness"] == "record"
        record = read_latest(repo.adapter(_node(repo, "inst-s3")), repo.settings.checkpoints.origin)
        assert record["size"] == 9 and record["note"] == made["note"]
        assert witness.verify_witnesses(repo)["ok"]
        rewrite_outcome(repo, 4, "failure")
        report = witness.verify_witnesses(repo)
        assert report["first_bad_event"]["event_id"] == ids[3] and report["first_bad_event"]["node"] == "inst-s3"
    finally:
        repo.close()


def test_the_scheduler_task_signs_when_due_and_brings_lagging_nodes_up(repo):
    append_events(repo, 6)
    done = witness.checkpoint_and_witness_if_due(repo)
    assert done["checkpoint"] == 6 and done["witnessed"] == 3 and done["refused"] == 0
    set_node_status(repo, "cas-nsl", "offline")
    append_events(repo, 2, start=6)
    assert _statuses(_checkpoint(repo)) == {"uni-pku": "witnessed", "inst-istic": "witnessed"}  # cas-nsl away
    set_node_status(repo, "cas-nsl", "active")
    done = witness.checkpoint_and_witness_if_due(repo)  # nothing due (8 events < every_events), cas-nsl catches up
    assert done["checkpoint"] is None and done["witnessed"] == 1
    assert read_latest(repo.adapter(_node(repo, "cas-nsl")), repo.settings.checkpoints.origin)["size"] == 8
    assert witness.checkpoint_and_witness_if_due(repo)["witnessed"] == 0


def test_a_rotated_key_is_taken_by_the_agents_from_a_note_both_keys_signed(run_cli, agents):
    repo = make_network(run_cli.home, agents, file_node=False)
    try:
        append_events(repo, 5)
        _checkpoint(repo)
    finally:
        repo.close()
    rotated = run_cli("events", "checkpoint", "--rotate-key", "--json").json()
    assert rotated["new"] is False and set(_statuses(rotated).values()) == {"witnessed"}  # the countersigned note
    repo = Repository.open(run_cli.home)
    try:
        append_events(repo, 3, start=5)
        made = _checkpoint(repo)  # signed by the new key alone
        assert made["key_id"] == rotated["key_id"] and set(_statuses(made).values()) == {"witnessed"}
        assert witness.verify_witnesses(repo)["ok"]
    finally:
        repo.close()


def test_only_the_nodes_own_valid_co_signature_is_kept_from_its_answer(network, monkeypatch):
    """An agent's answer is outside input: junk lines, terminal escapes, a line by another key, a wrong
    signature or a document of the wrong shape never reach the catalog's note (review)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from preservation.notes import SigningKey, body_of, signature_line
    from preservation.signing_keys import key_id, raw_public
    from storage_adapters.node import NodeStore

    stranger_key = Ed25519PrivateKey.generate()
    stranger = SigningKey("witness.uni", key_id("witness.uni", raw_public(stranger_key.public_key())), stranger_key)
    real = NodeStore.witness

    def noisy(self, document):
        answer = real(self, document)
        body = body_of(answer["note"])
        bad = signature_line(stranger, body)  # a well-formed line by a key that is not the node's
        answer["note"] += "".join(f"\x1b[31mjunk {i}\x1b[0m\n" for i in range(500)) + bad
        return answer

    monkeypatch.setattr(NodeStore, "witness", noisy)
    append_events(network, 5)
    made = _checkpoint(network)
    assert set(_statuses(made).values()) <= {"witnessed", "up to date"}
    with network.catalog.session() as s:
        note = s.scalars(select(Checkpoint).order_by(Checkpoint.size.desc())).first().note
    assert "\x1b" not in note and "junk" not in note and stranger.key_id not in {k for _, k, _ in signatures(note)}
    assert len([1 for _ in signatures(note)]) == 1 + len(AGENTS)  # the log's own line and one per agent

    monkeypatch.setattr(NodeStore, "witness", lambda self, document: {"note": 7, "witness_key": None})
    append_events(network, 2, start=5)
    made = _checkpoint(network)
    assert {_statuses(made)[name] for name, _, _ in AGENTS} == {"refused"}
    with network.catalog.session() as s:
        latest = s.scalars(select(Checkpoint).order_by(Checkpoint.size.desc())).first().note
    assert len([1 for _ in signatures(latest)]) == 1  # nothing of a malformed answer was kept
