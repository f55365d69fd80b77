"""`preserve events checkpoint` and `prove`, and tools/verify_proof.py run as a third party would run it."""

from __future__ import annotations

import copy
import importlib.util
import json
import subprocess
import sys

import pytest
from sqlalchemy import text

from preservation.catalog.evidence_models import rebuild
from preservation.events import FIXITY_CHECK, SUCCESS, record_event
from preservation.repository import Repository
from preservation.settings import REPO_ROOT

VERIFIER = REPO_ROOT / "tools" / "verify_proof.py"


def _verifier():
    spec = importlib.util.spec_from_file_location("verify_proof", VERIFIER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_verifier(*args) -> subprocess.CompletedProcess:
    # a third party's process: the standard library and cryptography only, nothing of preserve imported
    return subprocess.run([sys.executable, "-I", str(VERIFIER), *map(str, args)], capture_output=True, text=True,
                          timeout=60)


@pytest.fixture
def home(run_cli):
    run_cli("init")
    repo = Repository.open(run_cli.home)
    ids = []
    try:
        for i in range(11):
            with repo.catalog.session() as s:
                ids.append(record_event(s, FIXITY_CHECK, SUCCESS, package_id="p-1",
                                        detail={"i": i, "path": "data/文件.xml", "n": 1.5}).event_id)
    finally:
        repo.close()
    run_cli.ids = ids
    return run_cli


def _pubs(run_cli):
    return sorted((run_cli.home / "keys").glob("*.pub"))


def test_prove_prints_a_proof_the_standalone_verifier_accepts(home, tmp_path):
    made = home("events", "checkpoint", "--json").json()
    assert made["new"] and made["size"] == 11
    out = home("events", "prove", home.ids[4])
    proof = json.loads(out.output)
    assert proof["leaf_index"] == 4 and proof["tree_size"] == 11 and proof["checkpoint"] == made["note"]
    path = tmp_path / "proof.json"
    path.write_text(out.output, encoding="utf-8")
    done = _run_verifier(path, *_pubs(home))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith(f"OK: event {home.ids[4]} (number 5)")
    # the same through --output
    written = home("events", "prove", home.ids[10], "-o", tmp_path / "p2.json", "--json").json()
    assert written["tree_size"] == 11
    assert _run_verifier(tmp_path / "p2.json", *_pubs(home)).returncode == 0


def test_the_proof_fails_after_any_one_byte_of_the_event_changes(home):
    home("events", "checkpoint")
    proof = json.loads(home("events", "prove", home.ids[6]).output)
    verifier = _verifier()
    keys = verifier.read_keys([str(p) for p in _pubs(home)])
    assert verifier.verify(proof, keys).startswith("OK")
    text = json.dumps(proof["event"], ensure_ascii=False)
    changed = 0
    for i, ch in enumerate(text):
        for other in {"0", "a", "1"} - {ch}:
            try:
                event = json.loads(text[:i] + other + text[i + 1:])
            except ValueError:
                continue
            if event == proof["event"]:
                continue
            bad = copy.deepcopy(proof)
            bad["event"] = event
            with pytest.raises((verifier.Failed, KeyError, TypeError, ValueError)):
                verifier.verify(bad, keys)
            changed += 1
            break
    assert changed > 200
    # and as a process: exit 1 naming what failed
    bad = copy.deepcopy(proof)
    bad["event"]["outcome"] = "failure"
    (home.home / "bad.json").write_text(json.dumps(bad), encoding="utf-8")
    done = _run_verifier(home.home / "bad.json", *_pubs(home))
    assert done.returncode == 1 and "FAILED: the event's fields do not hash" in done.stdout


def test_a_proof_checks_against_the_right_key_only(home, tmp_path):
    home("events", "checkpoint")
    (tmp_path / "old.json").write_text(home("events", "prove", home.ids[0]).output, encoding="utf-8")
    old_keys = _pubs(home)
    rotated = home("events", "checkpoint", "--rotate-key", "--json").json()
    assert rotated["rotated"]["retired"] != rotated["key_id"] and rotated["new"] is False
    # nothing appended since: the new key countersigns the latest checkpoint (two signature lines, one body)
    assert rotated["note"].count("\u2014 ") == 2
    assert len(_pubs(home)) == 2
    new_only = [p for p in _pubs(home) if p not in old_keys]
    assert _run_verifier(tmp_path / "old.json", *_pubs(home)).returncode == 0
    done = _run_verifier(tmp_path / "old.json", *new_only)
    assert done.returncode == 1 and "not signed by any key given" in done.stdout
    repo = Repository.open(home.home)
    try:
        with repo.catalog.session() as s:
            record_event(s, FIXITY_CHECK, SUCCESS)
    finally:
        repo.close()
    new = home("events", "checkpoint", "--json").json()
    assert new["key_id"] == rotated["key_id"] and new["size"] == 12
    (tmp_path / "new.json").write_text(home("events", "prove", home.ids[0]).output, encoding="utf-8")
    assert _run_verifier(tmp_path / "new.json", *new_only).returncode == 0


def test_bad_input_to_the_verifier_is_exit_2(home, tmp_path):
    (tmp_path / "x.json").write_text("{not json", encoding="utf-8")
    assert _run_verifier(tmp_path / "x.json", *_pubs(home)).returncode == 2
    (tmp_path / "k.pub").write_text("name+00000000+AAAA\n", encoding="utf-8")
    assert _run_verifier(tmp_path / "x.json", tmp_path / "k.pub").returncode == 2
    assert _run_verifier().returncode == 2
    (tmp_path / "y.json").write_text("{}", encoding="utf-8")
    assert _run_verifier(tmp_path / "y.json", *_pubs(home)).returncode == 1


def test_bad_requests_are_coded_errors(home):
    out = home("events", "prove", home.ids[0], "--json", exit_code=41)
    assert json.loads(out.stderr)["error"]["code"] == "E701"
    home("events", "checkpoint")
    out = home("events", "prove", "no-such-event\x1b[31m", "--json", exit_code=5)
    assert json.loads(out.stderr)["error"]["code"] == "E110"
    out = home("events", "prove", "x" * 65, exit_code=2)
    assert "E112" in out.stderr
    key = home.home / "keys" / "checkpoint.key"
    key.unlink()
    out = home("events", "checkpoint", "--json", exit_code=40)
    assert json.loads(out.stderr)["error"]["code"] == "E700"


def test_a_rotation_whose_checkpoint_fails_keeps_the_old_key(home):
    home("events", "checkpoint")
    key = home.home / "keys" / "checkpoint.key"
    before, pubs = key.read_bytes(), _pubs(home)
    repo = Repository.open(home.home)
    try:
        with repo.catalog.session() as s:  # a rewritten log: the next checkpoint is refused
            s.execute(text("UPDATE events SET hash = :h WHERE seq = 3"), {"h": "ab" * 32})
            rebuild(s)
            record_event(s, FIXITY_CHECK, SUCCESS)
    finally:
        repo.close()
    out = home("events", "checkpoint", "--rotate-key", "--json", exit_code=42)
    assert json.loads(out.stderr)["error"]["code"] == "E702"
    assert key.read_bytes() == before and _pubs(home) == pubs
    assert not list(key.parent.glob("*.retired-*"))


def test_flipping_any_byte_of_the_serialized_event_fails_the_proof(home, tmp_path):
    """Every byte position of the event as the proof file holds it (UTF-8 JSON), first and last included: with
    one bit flipped the file either no longer reads or no longer verifies."""
    home("events", "checkpoint")
    proof = json.loads(home("events", "prove", home.ids[3]).output)
    verifier = _verifier()
    keys = verifier.read_keys([str(p) for p in _pubs(home)])
    event_bytes = json.dumps(proof["event"], ensure_ascii=False).encode("utf-8")
    rest = {k: v for k, v in proof.items() if k != "event"}
    assert verifier.verify({**rest, "event": json.loads(event_bytes)}, keys).startswith("OK")
    accepted = []
    for i in range(len(event_bytes)):
        flipped = event_bytes[:i] + bytes([event_bytes[i] ^ 0x01]) + event_bytes[i + 1:]
        try:
            event = json.loads(flipped.decode("utf-8"))
        except ValueError:
            continue  # the file does not read: the verifier exits 2
        try:
            verifier.verify({**rest, "event": event}, keys)
        except (verifier.Failed, KeyError, TypeError, ValueError, AttributeError):
            continue
        accepted.append(i)
    assert accepted == []
    # the first and last bytes, as a third party runs it: never exit 0
    for i in (0, len(event_bytes) - 1):
        flipped = event_bytes[:i] + bytes([event_bytes[i] ^ 0x01]) + event_bytes[i + 1:]
        text = json.dumps(rest, ensure_ascii=False)[:-1] + ', "event": ' + flipped.decode("utf-8", "replace") + "}"
        (tmp_path / f"flip-{i}.json").write_text(text, encoding="utf-8")
        assert _run_verifier(tmp_path / f"flip-{i}.json", *_pubs(home)).returncode in (1, 2)
