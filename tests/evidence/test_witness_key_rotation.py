"""`preserve witness-keys`: an operator imports a node's witness key (from its agent or from the key file its
operator sent, confirmed by fingerprint) and rotates it, with the old co-signatures still verifiable."""

from __future__ import annotations

import dataclasses
import json

import pytest

from preservation import witness
from preservation.catalog.models import Event
from preservation.events import KEY_INTRODUCTION
from preservation.node_agent import load_witness_key
from preservation.signing_keys import generate_key, parse_verifier_key
from preservation.witness.keyring import fingerprint, keys_for

from ..node_agent.agents import ThreadedAgent
from .witnesses import append_events, make_network


@pytest.fixture
def uni_key(tmp_path):
    path = tmp_path / "uni-key" / "witness.key"
    vkey = generate_key(path, "witness.uni")
    return path, vkey


@pytest.fixture
def threaded_uni(tmp_path, uni_key):
    """Node "uni" as an agent in this process, so that its key can change under the test."""
    (tmp_path / "uni-storage").mkdir()
    agent = ThreadedAgent(tmp_path / "uni-storage", allow_delete=False, witness_key=load_witness_key(uni_key[0]))
    agent.start()
    try:
        yield agent
    finally:
        agent.stop()


@pytest.fixture
def network(run_cli, agents, threaded_uni):
    repo = make_network(run_cli.home, {"uni": threaded_uni, "cas": agents["cas"], "inst": agents["inst"]})
    try:
        yield repo
    finally:
        repo.close()


def _error(result) -> dict:
    """The JSON error a command printed (on standard error)."""
    return json.loads(result.stderr)["error"]


def _statuses(result):
    return {n["node"]: n["status"] for n in result["witnesses"]["nodes"]}


def test_trust_from_the_agent_confirmed_by_fingerprint_then_rotate_keeping_old_cosignatures(
        network, run_cli, threaded_uni, uni_key, tmp_path):
    _, old_vkey = uni_key
    old_fp = fingerprint(old_vkey)
    shown = run_cli("witness-keys", "show", "uni", "--json").json()
    assert shown["witness"] == "agent" and shown["trusted"] is None
    assert shown["agent_key"]["verifier_key"] == old_vkey and shown["agent_key"]["fingerprint"] == old_fp
    # a fingerprint that is not the key's: refused, nothing trusted
    wrong = "0" * 16 if not old_fp.startswith("0" * 16) else "f" * 16
    assert _error(run_cli("witness-keys", "trust", "uni", "--fingerprint", wrong, "--json", exit_code=45))["code"] \
        == "E705"
    assert witness.witness_keys(network.settings) == {}
    out = run_cli("witness-keys", "trust", "uni", "--fingerprint", old_fp[:16].upper(), "--json").json()
    assert out["changed"] and out["key_id"] == parse_verifier_key(old_vkey)[1] and out["retired"] is None
    assert run_cli("witness-keys", "trust", "uni", "--fingerprint", old_fp, "--json").json()["changed"] is False
    append_events(network, 10)
    assert set(_statuses(witness.checkpoint_and_witness(network)).values()) == {"witnessed"}

    # the node's operator makes a new key; its agent co-signs with it from now on
    new_path = tmp_path / "uni-new" / "witness.key"
    new_vkey = generate_key(new_path, "witness.uni")
    threaded_uni.app.state.config = dataclasses.replace(threaded_uni.app.state.config,
                                                        witness_key=load_witness_key(new_path))
    append_events(network, 5, start=10)
    refused = witness.checkpoint_and_witness(network)
    assert _statuses(refused)["uni"] == "refused"  # not the key the coordinator trusts: no co-signature counted
    # `trust` will not replace a key; `rotate` with the new key's fingerprint does
    err = _error(run_cli("witness-keys", "trust", "uni", "--fingerprint", fingerprint(new_vkey), "--json",
                         exit_code=45))
    assert err["code"] == "E705" and "rotate" in err["message"]
    rotated = run_cli("witness-keys", "rotate", "uni", "--fingerprint", fingerprint(new_vkey), "--json").json()
    last = refused["size"]  # 16: the ten events, the import's event, five more
    assert rotated["retired"] == parse_verifier_key(old_vkey)[1] and rotated["retired_valid_through"] == last
    append_events(network, 5, start=15)
    assert set(_statuses(witness.checkpoint_and_witness(network)).values()) == {"witnessed"}
    report = witness.verify_witnesses(network)
    # the checkpoints uni co-signed with its old key still count, and the new ones with the new key
    uni = next(n for n in report["nodes"] if n["node"] == "uni")
    assert report["ok"] and uni["ok"] and uni["checkpoints"] >= 2, report
    # the retired key counts up to the rotation only: it cannot vouch for a later checkpoint
    old_kid, new_kid = parse_verifier_key(old_vkey)[1], parse_verifier_key(new_vkey)[1]
    assert set(keys_for(network.settings, "uni", last)) == {old_kid, new_kid}
    assert set(keys_for(network.settings, "uni", last + 1)) == {new_kid}
    listed = run_cli("witness-keys", "list", "--json").json()
    uni_row = next(r for r in listed["nodes"] if r["node"] == "uni")
    assert uni_row["trusted"]["key_id"] == new_kid and [r["key_id"] for r in uni_row["retired"]] == [old_kid]
    with network.catalog.session() as s:
        introduced = s.query(Event).filter(Event.event_type == KEY_INTRODUCTION, Event.node_name == "uni").all()
    assert [e.detail["retired"] for e in introduced] == [None, old_kid]
    assert "retired key" in run_cli("witness-keys", "show", "uni").output


def test_trust_from_the_key_file_its_operator_sent(network, run_cli, uni_key):
    path, vkey = uni_key
    pub = next(path.parent.glob("*.pub"))
    out = run_cli("witness-keys", "trust", "uni", "--key-file", pub, "--fingerprint", fingerprint(vkey)[:20],
                  "--json").json()
    assert out["changed"] and witness.witness_keys(network.settings)["uni"]["verifier_key"] == vkey
    text = run_cli("witness-keys", "show", "uni").output
    assert "the trusted key" in text and "NOT" not in text


@pytest.mark.parametrize("content", [
    b"",  # empty
    b"\x00\x01\x02 not text \xff",  # binary
    b"witness.uni+abcd1234+AAAA\nsecond line\n",  # two lines
    b"witness.uni+00000000+" + b"A" * 44 + b"\n",  # a key that does not match its key id
    b"\x1b[31mwitness.uni+zz+not base64\x1b[0m\n",  # terminal escapes
    b"x" * 5000,  # too long
])
def test_a_bad_key_file_is_a_coded_error_and_changes_nothing(network, run_cli, tmp_path, content):
    bad = tmp_path / "bad.pub"
    bad.write_bytes(content)
    err = run_cli("witness-keys", "trust", "uni", "--key-file", bad, "--fingerprint", "ab" * 8, "--json",
                  exit_code=45)
    assert _error(err)["code"] == "E705" and "\x1b" not in err.stderr
    assert witness.witness_keys(network.settings) == {}
    text = run_cli("witness-keys", "trust", "uni", "--key-file", bad, "--fingerprint", "ab" * 8, exit_code=45)
    assert "witness key refused" in text.stderr and "\x1b" not in text.stderr


def test_refusals_missing_file_short_fingerprint_record_node_unknown_node(network, run_cli, tmp_path, uni_key):
    _, vkey = uni_key
    def refused(*args):
        return _error(run_cli("witness-keys", *args, "--json", exit_code=45))

    assert refused("trust", "uni", "--key-file", tmp_path / "nope.pub", "--fingerprint", fingerprint(vkey))[
        "code"] == "E705"
    for given in ("abc", "zz" * 10, "ab" * 40):  # too short, not hex, too long
        assert refused("trust", "uni", "--fingerprint", given)["code"] == "E705"
    assert "not a node agent" in refused("trust", "archive", "--fingerprint", "ab" * 8)["message"]
    assert "no witness key to rotate" in refused("rotate", "uni", "--fingerprint", fingerprint(vkey))["message"]
    shown = run_cli("witness-keys", "show", "archive", "--json").json()
    assert shown["witness"] == "record" and shown["record"] is None and shown["trusted"] is None
    append_events(network, 3)
    witness.checkpoint_and_witness(network)
    shown = run_cli("witness-keys", "show", "archive", "--json").json()
    assert shown["record"]["size"] == 3 and shown["record"]["log_keys"]
    run_cli("witness-keys", "show", "no-such-node", "--json", exit_code=5)
