"""Catalog loss: the catalog is rebuilt from the bags on the nodes and audits clean."""

from __future__ import annotations

import json
import shutil

import bagit
import pytest
from sqlalchemy import select

from preservation.audit import audit
from preservation.catalog.models import Event, Package, PackageFile
from preservation.errors import InvalidRequest
from preservation.events import GENESIS_HASH, HASHED_FIELDS, event_hash, event_to_dict, verify_chain
from preservation.findings import FindingList
from preservation.home import init_home
from preservation.ingest import ingest
from preservation.layout import PackageLayout, RepositoryLayout
from preservation.node_records import flush_events, flush_repository_events
from preservation.nodes import add_node, set_node_uri
from preservation.package_evidence import RecordCheck
from preservation.rebuild import merge_events, rebuild_from_nodes
from preservation.repository import Repository
from preservation.runtime.handlers import default_registry
from preservation.runtime.scheduler import SchedulerService
from preservation.runtime.worker import Worker, WorkerOptions
from preservation.witness import checkpoint_and_witness
from preservation.witness_records import leaves_key, log_prefix

from .corruption import flip_bit
from .fixtures import NODES, make_repo, node_root, replicas_by_node


def _snapshot(repo):
    with repo.catalog.session() as s:
        files = {(f.package_id, f.path, f.size, f.sha256, f.sha512) for f in s.scalars(select(PackageFile))}
        packages = {p.id: (p.name, p.collection.key, p.payload_oxum, p.payload_files) for p in s.scalars(select(Package))}
    return files, packages


def test_rebuild_from_nodes_restores_an_auditable_catalog(repo, sample_delivery, tmp_path):
    ours = ingest(repo, sample_delivery, "journals")["package_id"]
    foreign = tmp_path / "foreign"
    shutil.copytree(sample_delivery / "books", foreign)
    bagit.make_bag(str(foreign), {"Source-Organization": "Other Press"}, checksums=["md5"])
    theirs = ingest(repo, foreign, "journals")["package_id"]
    files_before, packages_before = _snapshot(repo)
    home = repo.settings.home
    repo.close()

    (home / "catalog.sqlite").unlink()
    for extra in ("catalog.sqlite-wal", "catalog.sqlite-shm"):
        (home / extra).unlink(missing_ok=True)
    init_home(home)
    fresh = Repository.open(home)
    try:
        for name, org_type, region in NODES:
            add_node(fresh, name, org_type, region, node_root(fresh, name).as_uri())
        report = rebuild_from_nodes(fresh)
        assert report.ok, report.to_dict()
        assert sorted(report.packages) == sorted([ours, theirs])
        assert report.replicas == 6 and report.audited_ok == 6
        files_after, packages_after = _snapshot(fresh)
        assert files_after == files_before
        assert packages_after == packages_before
        with fresh.catalog.session() as s:
            assert {p.state for p in s.scalars(select(Package))} == {"preserved"}
            assert verify_chain(s).ok
        with pytest.raises(InvalidRequest):
            rebuild_from_nodes(fresh)
    finally:
        fresh.close()


# --- the package's events travel with its copies (issue 19.11) ---------------------------------------------------

TARGET = "data/期刊/物理学报/2024/第01期/论文-002.pdf"


def _package_events(repo, package_id):
    with repo.catalog.session() as s:
        return [event_to_dict(e) for e in s.scalars(select(Event).where(Event.package_id == package_id)
                                                   .order_by(Event.seq))]


def _lose_catalog_and_rebuild(repo):
    """Delete the catalog, make a fresh one with the same nodes (the keys of the home stay) and rebuild."""
    home = repo.settings.home
    repo.close()
    for name in ("catalog.sqlite", "catalog.sqlite-wal", "catalog.sqlite-shm"):
        (home / name).unlink(missing_ok=True)
    init_home(home)
    fresh = Repository.open(home)
    for name, org_type, region in NODES:
        add_node(fresh, name, org_type, region, node_root(fresh, name).as_uri())
    return fresh, rebuild_from_nodes(fresh)


def _restored(repo, package_id):
    """The restored events of the package by their old event id: (type, outcome, old hash)."""
    with repo.catalog.session() as s:
        return {e.detail["restored"]["event_id"]: (e.event_type, e.outcome, e.detail["restored"]["hash"])
                for e in s.scalars(select(Event).where(Event.package_id == package_id).order_by(Event.seq))
                if "restored" in e.detail}


def _events_file(repo, node, package_id):
    return node_root(repo, node) / PackageLayout(package_id).events_key


def test_events_of_ingest_audit_and_repair_come_back_with_a_rebuilt_catalog(repo, preserved, run_cli):
    flip_bit(node_root(repo, "cas-nsl") / preserved / TARGET)
    assert not audit(repo, package_id=preserved).ok
    Worker(repo, default_registry(), WorkerOptions(concurrency=1, once=True, retry_base_seconds=0)).run()
    assert {r.state for r in replicas_by_node(repo, preserved).values()} == {"verified"}
    before = _package_events(repo, preserved)
    assert {"ingestion", "fixity check", "repair"} <= {e["event_type"] for e in before}
    # the repaired copy's node has every event (its record rewritten, then its job's events flushed)
    on_node = [json.loads(line) for line in _events_file(repo, "cas-nsl", preserved).read_text("utf-8").splitlines()]
    assert on_node == before

    fresh, report = _lose_catalog_and_rebuild(repo)
    try:
        assert report.ok, report.to_dict()
        assert report.events_restored == len(before)
        assert _restored(fresh, preserved) == {e["event_id"]: (e["event_type"], e["outcome"], e["hash"])
                                               for e in before}
        with fresh.catalog.session() as s:
            assert verify_chain(s).ok
            restored = [e for e in s.scalars(select(Event).order_by(Event.seq)) if "restored" in e.detail]
        assert [e.detail["restored"]["seq"] for e in restored] == [e["seq"] for e in before]  # the old order
        assert [e.occurred_at.isoformat(timespec="microseconds") for e in restored] == [e["occurred_at"]
                                                                                        for e in before]
    finally:
        fresh.close()
    assert run_cli("events", "verify", "--json", home=repo.settings.home).json()["ok"] is True


def _rewrite_line(path, index, change, *, rehash):
    lines = path.read_text("utf-8").splitlines()
    ev = json.loads(lines[index])
    change(ev)
    if rehash:  # a forger who knows the hash rule
        ev["hash"] = event_hash({k: ev[k] for k in HASHED_FIELDS}, ev["prev_hash"])
    lines[index] = json.dumps(ev, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    path.write_text("".join(line + "\n" for line in lines), "utf-8")
    return ev


def test_a_tampered_events_file_is_refused_and_the_good_copy_on_another_node_used(repo, preserved):
    before = _package_events(repo, preserved)
    ingestion = next(i for i, e in enumerate(before) if e["event_type"] == "ingestion")

    def failed(ev):
        ev["outcome"] = "failure"

    forged = _rewrite_line(_events_file(repo, "uni-pku", preserved), ingestion, failed, rehash=True)
    _rewrite_line(_events_file(repo, "inst-istic", preserved), ingestion, failed, rehash=False)
    fresh, report = _lose_catalog_and_rebuild(repo)
    try:
        altered = [f for f in report.findings if f.code == "R007"]
        assert sorted(f.path.split(":")[0] for f in altered) == ["inst-istic", "uni-pku"], report.to_dict()
        assert report.events_restored == len(before)  # all of them, from cas-nsl
        restored = _restored(fresh, preserved)
        assert restored[forged["event_id"]] == ("ingestion", "success", before[ingestion]["hash"])
        with fresh.catalog.session() as s:
            assert verify_chain(s).ok
    finally:
        fresh.close()


def test_a_forged_event_after_the_signed_lines_is_not_restored(repo, preserved):
    before = _package_events(repo, preserved)
    last = len(before) - 1  # written by the flush after the copies were verified: no signature covers it

    def failed(ev):
        ev["outcome"] = "failure"

    forged = _rewrite_line(_events_file(repo, "uni-pku", preserved), last, failed, rehash=True)
    fresh, report = _lose_catalog_and_rebuild(repo)
    try:
        codes = {f.code for f in report.findings}
        assert "R008" in codes and "R007" not in codes, report.to_dict()
        assert forged["event_id"] not in _restored(fresh, preserved)  # neither version: nothing settles it
        assert report.events_restored == len(before) - 1
    finally:
        fresh.close()


def test_a_broken_link_between_unsigned_events_drops_them_with_a_finding():
    def ev(seq, prev, h):
        return {"seq": seq, "hash": h, "prev_hash": prev, "package_id": "p"}

    good = RecordCheck("p", "a", events=[ev(1, "0" * 64, "h1"), ev(2, "h1", "h2"), ev(3, "x", "h3")],
                       signed_events=2)
    findings = FindingList()
    kept = merge_events([good], findings)
    assert [e["seq"] for e in kept] == [1, 2]  # 3 does not link to 2 and no signature covers it
    assert [f.code for f in findings] == ["R008"]


def test_the_nodes_witness_records_settle_a_forged_event_no_signature_covers(repo, preserved):
    checkpoint_and_witness(repo)  # file:// nodes: the coordinator writes each witnessed checkpoint and its events
    before = _package_events(repo, preserved)
    last = len(before) - 1

    def failed(ev):
        ev["outcome"] = "failure"

    forged = _rewrite_line(_events_file(repo, "uni-pku", preserved), last, failed, rehash=True)
    fresh, report = _lose_catalog_and_rebuild(repo)
    try:
        assert [f.code for f in report.findings] == ["R008"], report.to_dict()
        assert "differs from the hash the nodes witnessed" in report.findings.errors[0].message
        assert report.events_restored == len(before)  # the genuine one, from the other nodes
        assert _restored(fresh, preserved)[forged["event_id"]] == (before[last]["event_type"], before[last]["outcome"],
                                                                   before[last]["hash"])
    finally:
        fresh.close()


def _append_line(path, change):
    """Append a line after the file's last, hashed by the rule (a forger who can write to the node)."""
    last = json.loads(path.read_text("utf-8").splitlines()[-1])
    ev = {**last, "event_id": "f" * 8 + last["event_id"][8:]}
    change(ev, last)
    ev["hash"] = event_hash({k: ev[k] for k in HASHED_FIELDS}, ev["prev_hash"])
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(ev, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n")
    return ev


def test_a_forged_event_after_a_gap_in_seq_is_not_restored(repo, preserved):
    before = _package_events(repo, preserved)

    def deaccession(ev, last):
        ev.update(seq=last["seq"] + 1000, prev_hash="f" * 64, event_type="deaccession")

    forged = _append_line(_events_file(repo, "uni-pku", preserved), deaccession)
    fresh, report = _lose_catalog_and_rebuild(repo)
    try:
        assert [f.code for f in report.findings] == ["R008"], report.to_dict()
        assert f"event {forged['seq']}" in report.findings.errors[0].message
        assert forged["event_id"] not in _restored(fresh, preserved)
        assert report.events_restored == len(before)
    finally:
        fresh.close()


def test_an_unconfirmed_event_is_restored_only_when_it_follows_a_restored_one_without_a_gap():
    def ev(seq, prev, h):
        return {"seq": seq, "hash": h, "prev_hash": prev, "package_id": "p"}

    events = [ev(1, "0" * 64, "h1"), ev(2, "h1", "h2"), ev(3, "h2", "h3"), ev(5, "h4", "h5"), ev(6, "h5", "h6")]
    findings = FindingList()
    kept = merge_events([RecordCheck("p", "a", events=events, signed_events=2)], findings)
    assert [e["seq"] for e in kept] == [1, 2, 3]  # 3 follows signed 2; 5 and 6 follow a gap
    assert [f.code for f in findings] == ["R008", "R008"]
    findings = FindingList()
    kept = merge_events([RecordCheck("p", "a", events=events)], findings, keyed=False)  # a home that never signed
    assert [e["seq"] for e in kept] == [1, 2, 3, 5, 6] and findings.ok


def test_an_event_line_whose_fields_a_catalog_cannot_hold_is_refused_and_the_rebuild_goes_on(repo, preserved):
    before = _package_events(repo, preserved)

    def not_a_date(ev, last):
        ev.update(seq=last["seq"] + 1, prev_hash=last["hash"], occurred_at="not a date")

    _append_line(_events_file(repo, "uni-pku", preserved), not_a_date)
    fresh, report = _lose_catalog_and_rebuild(repo)
    try:
        assert [(f.code, f.path.split(":")[0]) for f in report.findings] == [("R007", "uni-pku")], report.to_dict()
        assert report.events_restored == len(before) and report.packages == [preserved]
        with fresh.catalog.session() as s:
            assert verify_chain(s).ok
    finally:
        fresh.close()


def test_witness_leaves_that_do_not_lead_to_the_signed_root_are_not_used(repo, preserved):
    checkpoint_and_witness(repo)
    before = _package_events(repo, preserved)
    last = len(before) - 1

    def failed(ev):
        ev["outcome"] = "failure"

    forged = _rewrite_line(_events_file(repo, "uni-pku", preserved), last, failed, rehash=True)
    origin = repo.settings.checkpoints.origin
    for name, _, _ in NODES:  # whoever can write to the nodes puts the forged hash in every node's leaves
        for path in (node_root(repo, name) / log_prefix(origin) / "checkpoints").glob("*.json"):
            record = json.loads(path.read_text("utf-8"))
            index = forged["seq"] - 1 - record["from"]
            if 0 <= index < record["size"] - record["from"]:
                leaves_path = node_root(repo, name) / leaves_key(origin, record["size"])
                leaves = bytearray(leaves_path.read_bytes())
                leaves[index * 32:(index + 1) * 32] = bytes.fromhex(forged["hash"])
                leaves_path.write_bytes(bytes(leaves))
    fresh, report = _lose_catalog_and_rebuild(repo)
    try:
        assert {f.code for f in report.findings} == {"R008"}, report.to_dict()
        assert sum("do not lead to the signed root" in f.message for f in report.findings) == len(NODES)
        assert forged["event_id"] not in _restored(fresh, preserved)  # neither version: nothing settles it
        assert report.events_restored == len(before) - 1
    finally:
        fresh.close()


# --- the events that name no package travel in every node's repository record -------------------------------------

def _whole_log(repo):
    with repo.catalog.session() as s:
        return [event_to_dict(e) for e in s.scalars(select(Event).order_by(Event.seq))]


def _repository_events_file(repo, node):
    return node_root(repo, node) / RepositoryLayout().events_key


def _name_no_package_then_flush(repo, preserved):
    """Events that name no package (two nodes re-pointed at their own roots, a checkpoint signed), every events
    file of the package brought up to date, then the scheduler's task writes the repository record."""
    for name in ("uni-pku", "cas-nsl"):
        set_node_uri(repo, name, node_root(repo, name).as_uri())
    checkpoint_and_witness(repo)
    flush_events(repo, preserved)
    scheduler = SchedulerService(repo)
    flushed = scheduler.run_task("repository-events")
    assert sorted(flushed["written"]) == sorted(n for n, *_ in NODES) and flushed["failed"] == {}
    assert scheduler.run_task("repository-events")["written"] == []  # up to date: nothing rewritten
    return _whole_log(repo)


def test_events_that_name_no_package_come_back_and_the_whole_chain_is_verified(repo, preserved):
    whole = _name_no_package_then_flush(repo, preserved)
    repository_events = [e for e in whole if e["package_id"] is None]
    assert len(repository_events) >= 2 and {e["node_name"] for e in repository_events} >= {"uni-pku", "cas-nsl"}
    for name, *_ in NODES:
        lines = _repository_events_file(repo, name).read_text("utf-8").splitlines()
        assert [json.loads(line) for line in lines] == repository_events
    record = json.loads((node_root(repo, "inst-istic") / RepositoryLayout().record_key).read_text("utf-8"))
    assert record["evidence"]["body"]["package_id"] is None and record["evidence"]["signature"]

    fresh, report = _lose_catalog_and_rebuild(repo)
    try:
        assert report.ok, report.to_dict()
        assert report.repository_events_restored == len(repository_events)
        assert report.events_restored == len(whole)
        assert not [f for f in report.findings if f.code in ("R006", "R007", "R008")], report.to_dict()
        with fresh.catalog.session() as s:
            assert verify_chain(s).ok
            restored = [e for e in s.scalars(select(Event).order_by(Event.seq)) if "restored" in e.detail]
        # the old log whole, in its order, and every old hash recomputed from the restored fields and the link
        # to the event before it: the chain of the lost catalog, verified end to end
        old = [e.detail["restored"] for e in restored]
        assert [r["seq"] for r in old] == list(range(1, len(whole) + 1))
        previous = GENESIS_HASH
        for ev, was in zip(restored, old):
            assert was["prev_hash"] == previous
            fields = {"seq": was["seq"], "event_id": was["event_id"], "event_type": ev.event_type,
                      "occurred_at": ev.occurred_at, "outcome": ev.outcome, "agent": ev.agent,
                      "package_id": ev.package_id, "replica_id": was["replica_id"], "node_name": ev.node_name,
                      "job_id": was["job_id"], "policy": ev.policy,
                      "detail": {k: v for k, v in ev.detail.items() if k != "restored"}}
            assert event_hash(fields, previous) == was["hash"]
            previous = was["hash"]
        assert previous == whole[-1]["hash"]
        # the rebuilt catalog's log goes on from the old one (it restored its last event): the nodes take it
        flushed = flush_repository_events(fresh)
        assert sorted(flushed["written"]) == sorted(n for n, *_ in NODES), flushed
    finally:
        fresh.close()


def test_a_forged_repository_event_is_refused_and_the_other_nodes_copy_restored(repo, preserved):
    whole = _name_no_package_then_flush(repo, preserved)
    original = next(e for e in whole if e["package_id"] is None)

    def elsewhere(ev):
        ev["detail"]["uri"] = "file:///mnt/elsewhere"

    _rewrite_line(_repository_events_file(repo, "uni-pku"), 0, elsewhere, rehash=True)  # a forger who knows the rule
    fresh, report = _lose_catalog_and_rebuild(repo)
    try:
        altered = [f for f in report.findings if f.code == "R007"]
        assert [f.path for f in altered] == [f"uni-pku:{RepositoryLayout().events_key}"], report.to_dict()
        assert report.events_restored == len(whole)
        with fresh.catalog.session() as s:
            [back] = [e for e in s.scalars(select(Event)) if e.detail.get("restored", {}).get("event_id")
                      == original["event_id"]]
        assert back.detail["uri"] == original["detail"]["uri"] and back.package_id is None
    finally:
        fresh.close()


def test_a_catalog_that_does_not_continue_a_nodes_repository_record_never_overwrites_it(repo, preserved, tmp_path):
    _name_no_package_then_flush(repo, preserved)
    set_node_uri(repo, "inst-istic", node_root(repo, "inst-istic").as_uri())  # one more: the file only grows
    assert sorted(flush_repository_events(repo)["written"]) == sorted(n for n, *_ in NODES)
    held = {name: _repository_events_file(repo, name).read_bytes() for name, *_ in NODES}
    # another home's catalog (or one restored from an older backup) over the same nodes: its log is not theirs
    other = make_repo(tmp_path / "other", nodes=[])
    try:
        for name, org_type, region in NODES:
            add_node(other, name, org_type, region, node_root(repo, name).as_uri())
        set_node_uri(other, "uni-pku", node_root(repo, "uni-pku").as_uri())
        flushed = flush_repository_events(other)
        assert flushed["written"] == [] and sorted(flushed["refused"]) == sorted(n for n, *_ in NODES)
        assert "not overwritten" in flushed["refused"]["uni-pku"]
    finally:
        other.close()
    assert {name: _repository_events_file(repo, name).read_bytes() for name, *_ in NODES} == held
