"""Repair: damaged copies are rewritten only from bytes verified during the repair, never beyond their prefix."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from preservation import repair as repair_module
from preservation.audit import audit, audit_replica
from preservation.catalog.models import NODE_OFFLINE, Event, Job, Node, Package, Replica
from preservation.errors import NoVerifiedSource, StorageUnavailable, VerificationFailed
from preservation.events import verify_chain
from preservation.package_state import unrepairable_files
from preservation.jobs import kinds, queue
from preservation.repair import repair_replica
from preservation.runtime.handlers import default_registry
from preservation.runtime.worker import Worker, WorkerOptions
from preservation.upkeep.stalled import requeue_stalled

from .corruption import add_file, flip_bit
from .fixtures import node_root
from .fixtures import replicas_by_node as _replicas

TARGET = "data/期刊/物理学报/2024/第01期/论文-002.pdf"
OTHER = "data/期刊/物理学报/2024/第01期/论文-001.pdf"


def _package_state(repo, package_id) -> str:
    with repo.catalog.session() as s:
        return s.get(Package, package_id).state


def _events(repo, package_id, event_type):
    with repo.catalog.session() as s:
        return s.scalars(select(Event).where(Event.package_id == package_id, Event.event_type == event_type)
                         .order_by(Event.seq)).all()


def _run_worker(repo) -> None:
    Worker(repo, default_registry(), WorkerOptions(concurrency=1, once=True, retry_base_seconds=0)).run()


def test_a_corrupt_file_is_rewritten_from_a_verified_copy_and_nothing_else_is_touched(repo, preserved):
    damaged = node_root(repo, "cas-nsl") / preserved / TARGET
    untouched = node_root(repo, "cas-nsl") / preserved / OTHER
    good = (node_root(repo, "uni-pku") / preserved / TARGET).read_bytes()
    flip_bit(damaged)
    inode_before = untouched.stat().st_ino
    assert not audit(repo, package_id=preserved).ok
    replica = _replicas(repo, preserved)["cas-nsl"]
    assert replica.state == "corrupt"
    with repo.catalog.session() as s:
        assert s.scalars(select(Job).where(Job.dedupe_key == f"repair:{replica.id}")).one().state == queue.QUEUED
    out = repair_replica(repo, replica.id, agent="test")
    assert out["state"] == "verified" and out["files_repaired"] == 1 and out["files_removed"] == 0
    assert damaged.read_bytes() == good
    assert untouched.stat().st_ino == inode_before  # only the damaged file was rewritten
    assert _replicas(repo, preserved)["cas-nsl"].state == "verified"
    assert _package_state(repo, preserved) == "preserved"
    repairs = _events(repo, preserved, "repair")
    assert [e.outcome for e in repairs] == ["started", "success"]
    assert repairs[-1].detail["paths"] == [TARGET] and sum(repairs[-1].detail["sources"].values()) == 1
    fixity = _events(repo, preserved, "fixity check")[-1]
    assert fixity.replica_id == replica.id and fixity.outcome == "success"
    assert fixity.detail["algorithms"] == ["sha256", "sha512"]
    again = repair_replica(repo, replica.id, agent="test")  # idempotent: a clean copy is only re-audited
    assert again["files_repaired"] == 0 and "nothing to repair" in again["note"]
    with repo.catalog.session() as s:
        assert verify_chain(s).ok


def test_a_missing_copy_is_rewritten_and_unexpected_files_removed_only_inside_its_prefix(repo, preserved):
    istic = node_root(repo, "inst-istic")
    pku = node_root(repo, "uni-pku")
    for path in sorted((istic / preserved).rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    (istic / preserved).rmdir()
    add_file(pku / preserved / "data" / "intruder.txt")
    add_file(pku / "unrelated" / "keep.txt", b"not ours")
    add_file(pku / f"{preserved}-lookalike" / "keep.txt", b"not ours either")
    assert not audit(repo, package_id=preserved).ok
    states = {n: r.state for n, r in _replicas(repo, preserved).items()}
    assert states == {"inst-istic": "missing", "uni-pku": "corrupt", "cas-nsl": "verified"}
    _run_worker(repo)
    assert {n: r.state for n, r in _replicas(repo, preserved).items()} == dict.fromkeys(states, "verified")
    assert not (pku / preserved / "data" / "intruder.txt").exists()
    assert (pku / "unrelated" / "keep.txt").read_bytes() == b"not ours"
    assert (pku / f"{preserved}-lookalike" / "keep.txt").exists()
    assert (istic / preserved / TARGET).read_bytes() == (pku / preserved / TARGET).read_bytes()
    by_node = {e.node_name: e.detail for e in _events(repo, preserved, "repair") if e.outcome == "success"}
    assert by_node["inst-istic"]["files_repaired"] > 9 and by_node["uni-pku"]["files_removed"] == 1
    assert _package_state(repo, preserved) == "preserved"


def test_a_copy_whose_bytes_fail_during_the_repair_is_not_used_and_becomes_suspect(repo, preserved):
    flip_bit(node_root(repo, "cas-nsl") / preserved / TARGET)
    audit_replica(repo, _replicas(repo, preserved)["cas-nsl"].id)
    # the preferred source (most recently verified) rots too, unnoticed by the catalog
    with repo.catalog.session() as s:
        source = s.scalars(select(Replica).where(Replica.package_id == preserved, Replica.state == "verified")
                           .order_by(Replica.verified_at.desc())).first()
        rotten, healthy = source.node.name, ({"uni-pku", "inst-istic"} - {source.node.name}).pop()
    flip_bit(node_root(repo, rotten) / preserved / TARGET, offset=7)
    out = repair_replica(repo, _replicas(repo, preserved)["cas-nsl"].id)
    assert out["sources"] == {healthy: 1}
    fixed = (node_root(repo, "cas-nsl") / preserved / TARGET).read_bytes()
    assert fixed == (node_root(repo, healthy) / preserved / TARGET).read_bytes()
    states = {n: r.state for n, r in _replicas(repo, preserved).items()}
    assert states == {"cas-nsl": "verified", rotten: "suspect", healthy: "verified"}
    with repo.catalog.session() as s:
        audit_job = s.scalars(select(Job).where(Job.dedupe_key == f"audit:{source.id}")).one()
    assert audit_job.state == queue.QUEUED and audit_job.priority == 10


def test_a_file_corrupt_on_every_copy_is_recorded_unrepairable_and_the_package_damaged(repo, preserved, run_cli):
    nodes = ("uni-pku", "cas-nsl", "inst-istic")
    for bit, node in enumerate(nodes):
        flip_bit(node_root(repo, node) / preserved / TARGET, offset=11, bit=bit)
    run_cli("audit", exit_code=1)
    _run_worker(repo)
    assert _package_state(repo, preserved) == "damaged"
    with repo.catalog.session() as s:
        repairs = s.scalars(select(Job).where(Job.kind == kinds.REPAIR)).all()
        lost = unrepairable_files(s, preserved)
    # the repair did all it could: it ends, and the record (not a dead job) says what is lost
    assert len(repairs) == 3 and {j.state for j in repairs} == {queue.SUCCEEDED}
    assert all(j.result["unrepairable"] == 1 and j.attempts == 1 for j in repairs)
    assert lost == {TARGET: sorted(nodes)}
    failures = [e for e in _events(repo, preserved, "repair") if e.outcome == "failure"]
    assert len(failures) == 3 and all(e.detail["files_without_verified_copy"] == 1 and e.detail["paths"] == [TARGET]
                                      for e in failures)
    assert all(r.state == "corrupt" for r in _replicas(repo, preserved).values())
    report = run_cli("status", "--json").json()
    [damaged] = report["damaged_packages"]
    assert damaged["package_id"] == preserved and damaged["unrepairable_files"] == 1
    assert damaged["unrepairable"] == [{"path": TARGET, "nodes": sorted(nodes)}]
    assert report["dead_jobs"] == 0 and report["incidents"]["unrepairable"] == 3
    table = run_cli("status")
    assert "DAMAGED" in table.output and preserved in table.output and TARGET in table.output
    shown = run_cli("package", "show", preserved, "--json").json()
    assert shown["unrepairable"] == [{"path": TARGET, "nodes": sorted(nodes)}]
    assert TARGET in run_cli("package", "show", preserved[:8]).output
    # upkeep does not run the repairs again at every tick: nothing can be done until a source exists
    assert requeue_stalled(repo)["repair"] == 0
    run_cli("audit", exit_code=1)
    # nothing was written: every copy still holds its own damaged bytes
    assert len({(node_root(repo, n) / preserved / TARGET).read_bytes() for n in nodes}) == 3


def test_files_with_a_verified_source_are_repaired_and_only_the_others_recorded(repo, preserved):
    lost_everywhere = OTHER
    for bit, node in enumerate(("uni-pku", "cas-nsl", "inst-istic")):
        flip_bit(node_root(repo, node) / preserved / lost_everywhere, offset=5, bit=bit)
    (node_root(repo, "cas-nsl") / preserved / TARGET).unlink()  # two good copies of it elsewhere
    good = (node_root(repo, "uni-pku") / preserved / TARGET).read_bytes()
    assert not audit(repo, package_id=preserved).ok
    replica_id = _replicas(repo, preserved)["cas-nsl"].id
    out = repair_replica(repo, replica_id, agent="test")
    assert out["files_repaired"] == 1 and out["paths"] == [TARGET]
    assert out["unrepairable"] == 1 and out["unrepairable_paths"] == [lost_everywhere]
    assert (node_root(repo, "cas-nsl") / preserved / TARGET).read_bytes() == good
    replica = _replicas(repo, preserved)["cas-nsl"]
    assert replica.state == "corrupt" and "re-supply" in replica.last_error and replica.next_audit_at is not None
    with repo.catalog.session() as s:
        assert unrepairable_files(s, preserved) == {lost_everywhere: ["cas-nsl"]}
    assert _package_state(repo, preserved) == "damaged"
    outcomes = [(e.outcome, e.detail.get("partial")) for e in _events(repo, preserved, "repair")]
    assert outcomes[-2:] == [("success", True), ("failure", None)]
    again = repair_replica(repo, replica_id, agent="test")  # the record is replaced, not doubled
    assert again["files_repaired"] == 0 and again["unrepairable"] == 1
    with repo.catalog.session() as s:
        assert unrepairable_files(s, preserved) == {lost_everywhere: ["cas-nsl"]}
        assert verify_chain(s).ok


def test_a_copy_verified_again_clears_the_unrepairable_records_and_supersedes_its_dead_jobs(repo, preserved, run_cli):
    damaged = node_root(repo, "uni-pku") / preserved / TARGET
    original = damaged.read_bytes()
    for bit, node in enumerate(("uni-pku", "cas-nsl", "inst-istic")):
        flip_bit(node_root(repo, node) / preserved / TARGET, offset=11, bit=bit)
    assert not audit(repo, package_id=preserved).ok
    replicas = _replicas(repo, preserved)
    for node in ("uni-pku", "cas-nsl"):
        repair_replica(repo, replicas[node].id)
    with repo.catalog.session() as s:  # a repair that died before this release (or out of attempts)
        dead = s.scalars(select(Job).where(Job.dedupe_key == f"repair:{replicas['inst-istic'].id}")).one()
        dead.state, dead.finished_at = queue.DEAD, dead.updated_at
        dead_id = dead.id
    assert run_cli("status", "--json").json()["dead_jobs"] == 1
    damaged.write_bytes(original)  # the operator put the file back by hand on one node
    assert audit_replica(repo, replicas["uni-pku"].id).ok
    with repo.catalog.session() as s:
        assert unrepairable_files(s, preserved) == {}
        assert s.get(Job, dead_id).state == queue.DEAD  # its own copy is not verified yet
    # a source exists now: the dead repair is tried again (cas-nsl's repair job, run by hand above, is still queued)
    assert requeue_stalled(repo)["repair"] == 1
    _run_worker(repo)
    states = {n: r.state for n, r in _replicas(repo, preserved).items()}
    assert states == {"uni-pku": "verified", "cas-nsl": "verified", "inst-istic": "verified"}
    assert _package_state(repo, preserved) == "preserved"
    with repo.catalog.session() as s:
        assert s.get(Job, dead_id).state == queue.SUPERSEDED
        closing = s.scalars(select(Event).where(Event.job_id == dead_id, Event.outcome == "superseded")).one()
        assert closing.detail["previous_state"] == "dead"
    report = run_cli("status", "--json").json()
    assert report["dead_jobs"] == 0 and report["dead_job_list"] == [] and report["damaged_packages"] == []


def test_copies_on_offline_nodes_make_the_repair_wait_instead_of_declaring_damage(repo, preserved):
    flip_bit(node_root(repo, "cas-nsl") / preserved / TARGET)
    replica_id = _replicas(repo, preserved)["cas-nsl"].id
    audit_replica(repo, replica_id)
    with repo.catalog.session() as s:
        for node in s.scalars(select(Node).where(Node.name != "cas-nsl")):
            node.status = NODE_OFFLINE
    with pytest.raises(StorageUnavailable) as err:
        repair_replica(repo, replica_id)
    assert err.value.retryable
    assert _package_state(repo, preserved) != "damaged"
    assert _replicas(repo, preserved)["cas-nsl"].state == "corrupt"


def test_a_repair_interrupted_mid_way_converges_when_run_again(repo, preserved):
    replica_id = _replicas(repo, preserved)["uni-pku"].id
    flip_bit(node_root(repo, "uni-pku") / preserved / TARGET)
    (node_root(repo, "uni-pku") / preserved / OTHER).unlink()
    audit_replica(repo, replica_id)
    with repo.catalog.session() as s:  # as a worker killed right after marking it would leave it
        s.get(Replica, replica_id).state = "repairing"
    out = repair_replica(repo, replica_id)
    assert out["files_repaired"] == 2 and out["state"] == "verified"


def test_no_verified_source_error_is_permanent():
    assert not NoVerifiedSource.retryable and StorageUnavailable.retryable


def test_a_source_that_rots_between_its_check_and_the_copy_is_flagged_and_nothing_bad_is_written(
        repo, preserved, monkeypatch):
    damaged = node_root(repo, "cas-nsl") / preserved / TARGET
    flip_bit(damaged)
    before = damaged.read_bytes()
    assert not audit(repo, package_id=preserved).ok
    rewrite = repair_module.write_and_verify

    def rot_then_copy(repo_, package_id, dest, sources, **kwargs):
        [source] = sources  # the copy whose bytes were just verified for the damaged file
        flip_bit(node_root(repo, source.label) / package_id / TARGET, offset=3)
        seen.append(source.label)
        return rewrite(repo_, package_id, dest, sources, **kwargs)

    seen: list[str] = []
    monkeypatch.setattr(repair_module, "write_and_verify", rot_then_copy)
    with pytest.raises(VerificationFailed):
        repair_replica(repo, _replicas(repo, preserved)["cas-nsl"].id)
    states = {n: r.state for n, r in _replicas(repo, preserved).items()}
    assert states[seen[0]] == "suspect" and states["cas-nsl"] == "corrupt"
    assert damaged.read_bytes() == before  # the rotten bytes never replaced the damaged file


def test_a_repair_never_removes_a_file_the_catalog_lists_whatever_the_check_called_unexpected(
        repo, preserved, monkeypatch):
    """Defence in depth: a listing that names the package's own files as not belonging (another package's
    keys cut to this one's paths) never makes the repair delete them."""
    root = node_root(repo, "cas-nsl") / preserved
    flip_bit(root / TARGET)
    add_file(root / "data" / "intruder.txt")
    other = (root / OTHER).read_bytes()
    real_check = repair_module.check_replica

    def lying_check(*args, **kwargs):
        result = real_check(*args, **kwargs)
        result.unexpected_paths += [TARGET, OTHER]
        return result

    monkeypatch.setattr(repair_module, "check_replica", lying_check)
    assert not audit(repo, package_id=preserved).ok
    out = repair_replica(repo, _replicas(repo, preserved)["cas-nsl"].id)
    assert out["state"] == "verified" and out["files_repaired"] == 1 and out["files_removed"] == 1
    assert (root / TARGET).read_bytes() == (node_root(repo, "uni-pku") / preserved / TARGET).read_bytes()
    assert (root / OTHER).read_bytes() == other
    assert not (root / "data" / "intruder.txt").exists()
