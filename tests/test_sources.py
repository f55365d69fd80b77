"""The one source loop and its rules: which copies are read, which are blamed, which may be audited."""

from __future__ import annotations

import shutil
from datetime import timedelta

import pytest
from sqlalchemy import select

from preservation import repair as repair_module
from preservation.access.fixity_api import check_fixity
from preservation.audit import audit, select_replicas
from preservation.catalog.models import Event, Job, Replica, utcnow
from preservation.challenge import challenge_replica
from preservation.errors import (
    AccessDenied,
    ChecksumMismatch,
    NoVerifiedSource,
    ObjectNotFound,
    SourceFailed,
    StorageError,
    StorageFull,
    StorageUnavailable,
)
from preservation.jobs import kinds
from preservation.nodes import set_node_status
from preservation.repair import repair_replica
from preservation.replication import replicate_replica
from preservation.restore import restore
from preservation.sources import Blamed, CopySource, from_first_verified, verified_sources
from preservation.upkeep import audits

from .corruption import flip_bit
from .fixtures import node_root
from .fixtures import replicas_by_node as _replicas

TARGET = "data/期刊/物理学报/2024/第01期/论文-002.pdf"


def _make_freshest(repo, package_id, node_name) -> None:
    with repo.catalog.session() as s:
        for r in s.scalars(select(Replica).where(Replica.package_id == package_id)):
            if r.node.name == node_name:
                r.verified_at = utcnow() + timedelta(seconds=5)


def _source(label: str, replica_id: int | None) -> CopySource:
    return CopySource(adapter=None, prefix="p/", label=label, replica_id=replica_id)


def _failing(errors: dict[str, BaseException]):
    def attempt(src: CopySource) -> str:
        if src.label in errors:
            raise errors[src.label]
        return f"bytes of {src.label}"
    return attempt


def test_the_first_copy_that_has_the_bytes_right_wins_and_only_copies_at_fault_are_blamed():
    sources = [_source("staging", None), _source("down", 1), _source("refusing", 2), _source("rotten", 3),
               _source("empty", 4), _source("eio", 5), _source("good", 6), _source("later", 7)]
    errors = {
        "staging": ChecksumMismatch("sha256 differs", key="f"),
        "down": SourceFailed(StorageUnavailable("no answer")),
        "refusing": SourceFailed(AccessDenied("wrong credentials")),
        "rotten": ChecksumMismatch("sha256 differs", key="f"),
        "empty": SourceFailed(ObjectNotFound("no such key", key="p/f")),
        "eio": SourceFailed(StorageError("input/output error")),
    }
    blamed = Blamed()
    src, result = from_first_verified(sources, _failing(errors), blamed, doing="copy f", package_id="p")
    assert (src.label, result) == ("good", "bytes of good")
    assert blamed.ids() == [3, 4, 5]
    assert blamed.problems()[3] == "sha256 differs"  # the difference itself, as a reader's event shows it
    assert blamed.problems()[4].startswith(ObjectNotFound.code)
    # a blamed copy is skipped for the rest of the work: the next file starts past it
    tried = []
    from_first_verified(sources[3:], lambda s: tried.append(s.label), blamed, doing="copy g", package_id="p")
    assert tried == ["good"]


def test_a_failure_of_the_destination_is_raised_as_it_is_and_blames_no_copy():
    blamed = Blamed()
    with pytest.raises(StorageFull):
        from_first_verified([_source("a", 1), _source("b", 2)], _failing({"a": StorageFull("disk full")}), blamed,
                            doing="copy f", package_id="p")
    assert not blamed


def test_no_good_copy_names_what_each_said():
    blamed = Blamed()
    errors = {"a": SourceFailed(StorageUnavailable("no answer")), "b": ChecksumMismatch("other bytes", key="f")}
    with pytest.raises(NoVerifiedSource) as raised:
        from_first_verified([_source("a", 1), _source("b", 2)], _failing(errors), blamed, doing="copy f",
                            package_id="p")
    assert "a: " in str(raised.value) and "b: other bytes" in str(raised.value)
    assert blamed.ids() == [2]


def test_candidates_are_verified_copies_on_nodes_not_offline_freshest_first(repo, preserved):
    set_node_status(repo, "cas-nsl", "offline")
    set_node_status(repo, "inst-istic", "draining")  # its copies are read to move them: a candidate
    _make_freshest(repo, preserved, "inst-istic")
    suspect = _replicas(repo, preserved)["uni-pku"].id
    with repo.catalog.session() as s:
        assert [c.label for c in verified_sources(repo, s, preserved)] == ["inst-istic", "uni-pku"]
        s.get(Replica, suspect).state = "suspect"
    with repo.catalog.session() as s:
        assert [c.label for c in verified_sources(repo, s, preserved)] == ["inst-istic"]


def test_a_restore_reads_the_copy_on_a_draining_node(repo, preserved, tmp_path):
    set_node_status(repo, "uni-pku", "offline")
    set_node_status(repo, "cas-nsl", "offline")
    set_node_status(repo, "inst-istic", "draining")
    out = restore(repo, preserved, tmp_path / "bag")
    assert out["sources"] == {"inst-istic": out["files"]}


def test_a_challenge_source_that_fails_its_digest_is_flagged_and_another_answers(repo, preserved):
    for path in (node_root(repo, "cas-nsl") / preserved).rglob("*"):
        if path.is_file():  # same sizes, other bytes: whichever file the challenge picks is wrong here
            path.write_bytes(bytes(b ^ 0x5A for b in path.read_bytes()))
    _make_freshest(repo, preserved, "cas-nsl")  # the first source the challenge reads
    replicas = _replicas(repo, preserved)
    outcome = challenge_replica(repo, replicas["uni-pku"].id)
    assert outcome.passed, outcome.reason  # answered from inst-istic's verified bytes
    after = _replicas(repo, preserved)
    assert after["cas-nsl"].state == "suspect"
    assert "found while checking a challenge's answer" in after["cas-nsl"].last_error
    assert {after["uni-pku"].state, after["inst-istic"].state} == {"verified"}
    with repo.catalog.session() as s:
        job = s.scalars(select(Job).where(Job.dedupe_key == f"audit:{replicas['cas-nsl'].id}")).one()
        assert job.priority == kinds.AUDIT_AFTER_BAD_READ.priority
        failed = s.scalars(select(Event).where(Event.replica_id == replicas["cas-nsl"].id,
                                               Event.event_type == "fixity check", Event.outcome == "failure")).all()
        assert len(failed) == 1 and failed[0].detail["path"] == outcome.path


def test_a_copy_in_the_middle_of_its_repair_is_not_audited(repo, preserved, monkeypatch):
    flip_bit(node_root(repo, "cas-nsl") / preserved / TARGET)
    assert not audit(repo, package_id=preserved).ok
    repaired = _replicas(repo, preserved)["cas-nsl"]
    assert repaired.state == "corrupt"
    seen = {}
    rewrite = repair_module.write_and_verify

    def audit_while_rewriting(*args, **kwargs):
        """Run `preserve audit` and the fixity API between the repair's start and its rewrite."""
        seen["state"] = _replicas(repo, preserved)["cas-nsl"].state
        seen["audited"] = [r.replica_id for r in audit(repo, package_id=preserved).replicas]
        seen["fixity api"] = check_fixity(repo, preserved, agent="test")
        return rewrite(*args, **kwargs)

    monkeypatch.setattr(repair_module, "write_and_verify", audit_while_rewriting)
    out = repair_replica(repo, repaired.id, agent="test")
    assert seen["state"] == "repairing"
    assert repaired.id not in seen["audited"] and len(seen["audited"]) == 2
    assert seen["fixity api"]["copies_checked"] == 2 and seen["fixity api"]["success"] is True
    assert out["state"] == "verified" and _replicas(repo, preserved)["cas-nsl"].state == "verified"


@pytest.mark.parametrize("state, audited, scheduled", [
    ("verified", True, True), ("suspect", True, True), ("corrupt", True, False), ("missing", True, False),
    ("repairing", False, False), ("copying", False, False), ("pending", False, False),
])
def test_which_copies_an_audit_reads(repo, preserved, state, audited, scheduled):
    copy = _replicas(repo, preserved)["cas-nsl"].id
    with repo.catalog.session() as s:
        replica = s.get(Replica, copy)
        replica.state = state
    assert (copy in select_replicas(repo, preserved)) is audited
    audits.schedule_audits(repo, now=utcnow() + timedelta(days=200))  # every copy overdue
    with repo.catalog.session() as s:
        queued = s.scalars(select(Job).where(Job.dedupe_key == f"audit:{copy}")).one_or_none()
    assert (queued is not None) is scheduled


def test_a_copy_that_fails_for_want_of_a_good_source_still_flags_the_bad_ones(repo, preserved):
    replicas = _replicas(repo, preserved)
    for name in ("uni-pku", "inst-istic"):
        flip_bit(node_root(repo, name) / preserved / TARGET)
    shutil.rmtree(node_root(repo, "cas-nsl") / preserved)
    with repo.catalog.session() as s:
        s.get(Replica, replicas["cas-nsl"].id).state = "pending"  # to be written again, from the two others
    with pytest.raises(NoVerifiedSource):
        replicate_replica(repo, replicas["cas-nsl"].id)
    after = _replicas(repo, preserved)
    assert {n: r.state for n, r in after.items()} == {"cas-nsl": "pending", "uni-pku": "suspect",
                                                      "inst-istic": "suspect"}
    with repo.catalog.session() as s:
        queued = {j.dedupe_key for j in s.scalars(select(Job).where(Job.kind == kinds.AUDIT))}
    assert queued == {f"audit:{replicas['uni-pku'].id}", f"audit:{replicas['inst-istic'].id}"}
