"""Signed checkpoints: the key init makes, notes, rotation, rewrites and truncation caught, inclusion proofs."""

from __future__ import annotations

import base64
import os
import stat
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import delete, select, update

from preservation import checkpoints, merkle
from preservation.catalog.evidence_models import Checkpoint, rebuild
from preservation.catalog.models import ChainHead, Event
from preservation.errors import CheckpointInvalid, CheckpointKeyMissing, NotCheckpointed, NotFound
from preservation.events import FIXITY_CHECK, GENESIS_HASH, SUCCESS, _hashed_fields, event_hash, record_event
from preservation.home import init_home
from preservation.repository import Repository
from preservation.settings import load_settings

from ..fixtures import make_repo


@pytest.fixture
def repo(tmp_path, catalog_url):
    r = make_repo(tmp_path / "home", catalog_url, nodes=())
    try:
        yield r
    finally:
        r.close()


def _events(repo, n: int, start: int = 0) -> list[str]:
    ids = []
    for i in range(start, start + n):
        with repo.catalog.session() as s:
            ids.append(record_event(s, FIXITY_CHECK, SUCCESS, package_id="p-1", detail={"i": i}).event_id)
    return ids


def _checkpoint(repo, **kw) -> dict:
    with repo.catalog.session() as s:
        return checkpoints.make_checkpoint(s, repo.settings, **kw)


def _check(repo, full=False) -> dict:
    with repo.catalog.session() as s:
        return checkpoints.check_checkpoints(s, repo.settings, full=full)


def test_init_makes_a_private_key_0600_named_in_the_config_never_in_the_catalog(repo):
    cfg = repo.settings.checkpoints
    assert cfg.key is not None and cfg.key.is_file() and cfg.origin.startswith("preserve.log.")
    assert stat.S_IMODE(cfg.key.stat().st_mode) == 0o600
    pubs = list(cfg.key.parent.glob("*.pub"))
    assert len(pubs) == 1
    key = checkpoints.signing_key(repo.settings)
    assert pubs[0].read_text().startswith(f"{cfg.origin}+{key.key_id}+")
    # a second init keeps the key
    before = cfg.key.read_bytes()
    assert init_home(repo.settings.home)["checkpoint_key_created"] is None
    assert cfg.key.read_bytes() == before
    assert load_settings(repo.settings.home).checkpoints.key == cfg.key


def test_a_checkpoint_is_a_signed_note_over_size_root_and_time(repo):
    _events(repo, 5)
    made = _checkpoint(repo, now=datetime(2026, 12, 6, 5, 0, 0, tzinfo=timezone.utc))
    assert made["new"] and made["size"] == 5
    lines = made["note"].split("\n")
    assert lines[:2] == [repo.settings.checkpoints.origin, "5"]
    assert base64.b64decode(lines[2]) == base64.b64decode(made["root"])
    assert lines[3] == "time 2026-12-06T05:00:00Z" and lines[4] == ""
    assert lines[5].startswith(f"\u2014 {repo.settings.checkpoints.origin} ")
    note = checkpoints.verify_note(made["note"], checkpoints.public_keys(repo.settings))
    assert (note.size, note.key_id) == (5, made["key_id"])
    # nothing new: the same checkpoint, not a second one
    assert _checkpoint(repo)["new"] is False


@pytest.mark.parametrize("change", [
    lambda t: t.replace("\n5\n", "\n6\n", 1),
    lambda t: t.replace("time 2026", "time 2025", 1),
    lambda t: t[:-10] + ("A" if t[-10] != "A" else "B") + t[-9:],
    lambda t: t.replace("\n\n", "\n", 1),
    lambda t: t.split("\n\n")[0] + "\n\n",
    lambda t: "x" * (checkpoints.MAX_NOTE + 1),
])
def test_a_changed_note_is_refused(repo, change):
    _events(repo, 5)
    note = _checkpoint(repo, now=datetime(2026, 12, 6, tzinfo=timezone.utc))["note"]
    with pytest.raises(CheckpointInvalid):
        checkpoints.verify_note(change(note), checkpoints.public_keys(repo.settings))


def test_rotated_keys_leave_old_checkpoints_verifiable(repo):
    _events(repo, 3)
    old = _checkpoint(repo)
    rotated = checkpoints.rotate_key(repo.settings)
    assert rotated["retired"] == old["key_id"] != rotated["key"]
    assert stat.S_IMODE(repo.settings.checkpoints.key.stat().st_mode) == 0o600
    _events(repo, 3, start=3)
    new = _checkpoint(repo)
    assert new["key_id"] == rotated["key"]
    keys = checkpoints.public_keys(repo.settings)
    assert checkpoints.verify_note(old["note"], keys).key_id == old["key_id"]
    assert checkpoints.verify_note(new["note"], keys).key_id == rotated["key"]
    assert _check(repo)["ok"]
    # without the retired public key the old checkpoint is no longer provable
    for f in repo.settings.checkpoints.key.parent.glob(f"*+{old['key_id']}.pub"):
        f.unlink()
    with pytest.raises(CheckpointInvalid):
        checkpoints.verify_note(old["note"], checkpoints.public_keys(repo.settings))


def test_no_key_configured_is_a_coded_error(tmp_path):
    home = tmp_path / "bare"
    home.mkdir()
    (home / "preserve.yaml").write_text("checkpoints:\n  every_events: 5\n", encoding="utf-8")
    init_home(home)
    repo = Repository.open(home)
    try:
        with pytest.raises(CheckpointKeyMissing) as e:
            _checkpoint(repo)
        assert e.value.code == "E700"
        assert checkpoints.checkpoint_if_due(repo)["checkpoint"] is None
    finally:
        repo.close()


def test_an_unreadable_key_file_is_a_coded_error(repo):
    repo.settings.checkpoints.key.write_text("not a key", encoding="utf-8")
    with pytest.raises(CheckpointKeyMissing):
        _checkpoint(repo)


def _rewrite_outcome(repo, seq: int, outcome: str) -> None:
    """What an administrator with the database could do: change one event and recompute every later hash."""
    with repo.catalog.session() as s:
        prev = GENESIS_HASH
        for ev in s.scalars(select(Event).order_by(Event.seq)):
            if ev.seq == seq:
                ev.outcome = outcome
            ev.prev_hash = prev
            ev.hash = event_hash(_hashed_fields(ev), prev)
            prev = ev.hash
        s.execute(update(ChainHead).where(ChainHead.id == 1).values(hash=prev))


def test_a_consistent_rewrite_is_caught_by_the_signed_checkpoint(repo):
    _events(repo, 20)
    _checkpoint(repo)
    _events(repo, 7, start=20)
    assert _check(repo)["ok"] and _check(repo, full=True)["ok"]
    _rewrite_outcome(repo, 9, "failure")
    # the stored tree left as it was: the events no longer hash to the signed root
    report = _check(repo, full=True)
    assert not report["ok"] and report["first_bad_checkpoint"] == 20 and "1..20" in report["reason"]
    # the tree rebuilt too: the consistency proof from the signed checkpoint fails
    with repo.catalog.session() as s:
        rebuild(s)
    report = _check(repo)
    assert not report["ok"] and report["first_bad_checkpoint"] == 20
    with pytest.raises(CheckpointInvalid):
        _checkpoint(repo)


def test_a_rewrite_after_the_last_checkpoint_is_not_caught_until_signed(repo):
    _events(repo, 8)
    _checkpoint(repo)
    _events(repo, 4, start=8)
    _rewrite_outcome(repo, 10, "failure")
    with repo.catalog.session() as s:
        rebuild(s)
    assert _check(repo, full=True)["ok"]  # what no checkpoint signed, no checkpoint can vouch for


def test_truncation_is_caught(repo):
    _events(repo, 10)
    _checkpoint(repo)
    with repo.catalog.session() as s:
        s.execute(delete(Event).where(Event.seq > 6))
        last = s.scalar(select(Event.hash).where(Event.seq == 6))
        s.execute(update(ChainHead).where(ChainHead.id == 1).values(seq=6, hash=last))
        rebuild(s)
    report = _check(repo)
    assert not report["ok"] and "truncated" in report["reason"]
    assert not _check(repo, full=True)["ok"]


def test_a_changed_checkpoint_row_is_caught(repo):
    _events(repo, 4)
    _checkpoint(repo)
    with repo.catalog.session() as s:
        s.execute(update(Checkpoint).values(root=b"\0" * 32))
    assert "differs from its signed note" in _check(repo)["reason"]


def test_inclusion_proof_of_an_event_against_the_latest_checkpoint(repo):
    ids = _events(repo, 13)
    with repo.catalog.session() as s:
        with pytest.raises(NotCheckpointed):
            checkpoints.prove_event(s, ids[3])
    _checkpoint(repo)
    later = _events(repo, 1, start=13)
    with repo.catalog.session() as s:
        proof = checkpoints.prove_event(s, ids[3])
        with pytest.raises(NotCheckpointed) as e:
            checkpoints.prove_event(s, later[0])
        assert e.value.code == "E701"
        with pytest.raises(NotFound):
            checkpoints.prove_event(s, "no-such-event")
    note = checkpoints.verify_note(proof["checkpoint"], checkpoints.public_keys(repo.settings))
    leaf = merkle.leaf_hash(bytes.fromhex(proof["event"]["hash"]))
    path = [base64.b64decode(p) for p in proof["inclusion"]]
    assert proof["leaf_index"] == 3 and proof["tree_size"] == 13 == note.size
    assert merkle.verify_inclusion(3, 13, leaf, path, note.root)


def test_the_scheduler_signs_after_every_n_events_or_after_a_while(tmp_path, catalog_url):
    home = tmp_path / "h"
    make_repo(home, catalog_url, nodes=()).close()
    with (home / "preserve.yaml").open("a", encoding="utf-8") as f:
        f.write("  every_events: 5\n")
    repo = Repository.open(home)
    try:
        assert checkpoints.checkpoint_if_due(repo) == {"checkpoint": None}
        _events(repo, 4)
        assert checkpoints.checkpoint_if_due(repo)["checkpoint"] == 4  # the first one: as soon as there are events
        _events(repo, 4, start=4)
        assert checkpoints.checkpoint_if_due(repo) == {"checkpoint": None}
        _events(repo, 1, start=8)
        assert checkpoints.checkpoint_if_due(repo)["checkpoint"] == 9
        _events(repo, 1, start=9)
        with repo.catalog.session() as s:
            assert not checkpoints.checkpoint_due(s, repo.settings)
            later = datetime.now(timezone.utc) + timedelta(seconds=repo.settings.checkpoints.every_seconds + 1)
            assert checkpoints.checkpoint_due(s, repo.settings, now=later)
    finally:
        repo.close()
