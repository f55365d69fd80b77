"""Partial damage (issue 19): repair what has a source, record what has none, restore the rest, re-supply it.

The package of the issue: 320 files, one XML bad on all three copies, one
PDF damaged on some copies and good on the others.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from preservation.catalog.models import Event, Job, UnrepairableFile
from preservation.errors import InvalidRequest, NotFound, ResuppliedFileMismatch
from preservation.events import verify_chain
from preservation.ingest import ingest
from preservation.jobs import kinds, queue
from preservation.package_state import unrepairable_files
from preservation.resupply import Offer, parse_offer, resupply
from preservation.runtime.handlers import default_registry
from preservation.runtime.worker import Worker, WorkerOptions

from .corruption import flip_bit
from .fixtures import node_root
from .fixtures import replicas_by_node as _replicas

NODES = ("cas-nsl", "inst-istic", "uni-pku")
XML = "data/期刊/2024/第03期/论文-017.xml"
PDF = "data/期刊/2024/第03期/论文-018.pdf"


def _delivery(root: Path, files: int) -> Path:
    """``files`` files: articles' XML (one of them the XML that will be lost), one PDF and a README."""
    issue = root / "期刊" / "2024" / "第03期"
    issue.mkdir(parents=True)
    for n in range(files - 1):
        if n == 18:
            continue
        (issue / f"论文-{n:03d}.xml").write_text(
            f"<?xml version='1.0' encoding='UTF-8'?><article><title>第{n}篇</title><p>{'正文' * n}</p></article>\n",
            encoding="utf-8")
    (issue / "论文-018.pdf").write_bytes(b"%PDF-1.4\n" + bytes(range(256)) * 40 + b"\n%%EOF\n")
    (root / "README.txt").write_text("delivery of 2024-03\n", encoding="utf-8")
    assert sum(1 for p in root.rglob("*") if p.is_file()) == files
    return root


@pytest.fixture(params=[320])
def delivery(request, tmp_path) -> Path:
    """The issue's delivery of 320 files; tests that need fewer override the count (``files``)."""
    return _delivery(tmp_path / "delivery", request.param)


@pytest.fixture
def package(repo, delivery) -> str:
    result = ingest(repo, delivery, "journals")
    assert result["state"] == "preserved"
    return result["package_id"]


small = pytest.mark.parametrize("delivery", [24], indirect=True)  # the rules do not need 320 files: quicker


def _original(delivery: Path, path: str) -> Path:
    return delivery / path.removeprefix("data/")


def _run_worker(repo) -> None:
    Worker(repo, default_registry(), WorkerOptions(concurrency=1, once=True, retry_base_seconds=0)).run()


def _damage(repo, package: str, pdf_good_copies: int) -> None:
    for bit, node in enumerate(NODES):
        flip_bit(node_root(repo, node) / package / XML, offset=40, bit=bit)
    bad_pdf = NODES[:3 - pdf_good_copies]
    (node_root(repo, bad_pdf[0]) / package / PDF).unlink()  # missing on one copy
    for node in bad_pdf[1:]:
        flip_bit(node_root(repo, node) / package / PDF, offset=100)  # and changed on another


def _payload_files(root: Path) -> int:
    return sum(1 for p in (root / "data").rglob("*") if p.is_file())


# pdf_good_copies=2 is the issue's case (the PDF missing on one copy, good on two); 1 leaves a single good copy
@pytest.mark.parametrize("pdf_good_copies", [2, 1])
def test_the_issues_partial_damage_ends_with_the_pdf_repaired_a_partial_restore_and_no_stale_dead_job(
        repo, package, delivery, run_cli, tmp_path, pdf_good_copies):
    _damage(repo, package, pdf_good_copies)
    run_cli("audit", exit_code=1)
    _run_worker(repo)

    pdf = _original(delivery, PDF).read_bytes()
    assert all((node_root(repo, n) / package / PDF).read_bytes() == pdf for n in NODES)  # the PDF is repaired
    with repo.catalog.session() as s:
        assert unrepairable_files(s, package) == {XML: list(NODES)}  # and only the XML is lost
        repair_jobs = s.scalars(select(Job).where(Job.kind == kinds.REPAIR)).all()
        assert {j.state for j in repair_jobs} == {queue.SUCCEEDED}
        assert verify_chain(s).ok
    report = run_cli("status", "--json").json()
    assert report["dead_jobs"] == 0 and report["dead_job_list"] == []
    [damaged] = report["damaged_packages"]
    assert damaged["package_id"] == package and damaged["unrepairable"] == [{"path": XML, "nodes": list(NODES)}]
    assert report["incidents"]["repaired"] == 3 - pdf_good_copies  # the PDF, once per copy that lacked it
    shown = run_cli("status")
    assert XML in shown.output and "dead job" not in shown.stderr

    # without --partial the restore still refuses a damaged package, and leaves nothing behind
    refused = tmp_path / "refused"
    run_cli("restore", package, refused, exit_code=13)
    assert not refused.exists()

    dest = tmp_path / "restored"
    out = run_cli("restore", "--partial", package, dest, "--json", exit_code=28)
    result = out.json()
    assert _payload_files(dest) == 319 and not (dest / XML).exists()
    assert (dest / PDF).read_bytes() == pdf
    assert result["complete"] is False and result["files_missing"] == 1
    error = json.loads(out.stderr)["error"]
    assert error["code"] == "E507" and error["params"]["files_missing"] == 1 and "no copy" in error["message"]
    saved = json.loads(Path(result["report"]["json"]).read_text(encoding="utf-8"))
    assert [m["path"] for m in saved["missing"]] == [XML] and saved["files_missing"] == 1
    assert saved["missing"][0]["sha512"] and saved["files_written"] == result["files"]
    text = Path(result["report"]["text"]).read_text(encoding="utf-8")
    assert f"MISSING {XML}" in text and "--from-file" in text
    assert Path(result["report"]["json"]).parent == dest.parent  # beside the bag, not in it
    for name in ("bagit.txt", "bag-info.txt", "manifest-sha256.txt", "manifest-sha512.txt"):
        assert (dest / name).is_file()
    with repo.catalog.session() as s:
        restored = s.scalars(select(Event).where(Event.package_id == package, Event.event_type == "dissemination")
                             .order_by(Event.seq)).all()
    assert restored[-1].outcome == "warning" and restored[-1].detail["missing"] == [XML]


@small
def test_a_partial_restore_into_an_existing_report_is_refused_before_anything_is_written(repo, package, tmp_path,
                                                                                        run_cli):
    dest = tmp_path / "restored"
    Path(f"{dest}.restore-report.txt").write_text("someone's notes", encoding="utf-8")
    out = run_cli("restore", "--partial", package, dest, "--json", exit_code=2)
    assert json.loads(out.stderr)["error"]["code"] == "E112" and not dest.exists()


@small
def test_a_partial_restore_of_an_intact_package_is_complete_and_exits_0(repo, package, tmp_path, run_cli):
    dest = tmp_path / "restored"
    result = run_cli("restore", "--partial", package, dest, "--json").json()
    assert result["complete"] is True and result["missing"] == [] and _payload_files(dest) == 24
    assert json.loads(Path(result["report"]["json"]).read_text(encoding="utf-8"))["complete"] is True


@small
def test_resupplying_the_original_file_repairs_every_copy_and_clears_the_mark(repo, package, delivery, run_cli):
    _damage(repo, package, 2)
    run_cli("audit", exit_code=1)
    _run_worker(repo)
    with repo.catalog.session() as s:  # a repair that died before this release: superseded once its copy verifies
        job = s.scalars(select(Job).where(Job.kind == kinds.REPAIR).order_by(Job.id)).first()
        job.state = queue.DEAD
        dead_id = job.id
    out = run_cli("repair", package[:8], "--from-file", f"{XML}={_original(delivery, XML)}", "--json").json()
    [done] = out["files"]
    assert sorted(done["written"]) == list(NODES) and done["already_right"] == [] and done["not_reached"] == []
    assert out["audits"] == {n: "verified" for n in NODES} and out["package_state"] == "preserved"
    original = _original(delivery, XML).read_bytes()
    assert all((node_root(repo, n) / package / XML).read_bytes() == original for n in NODES)
    with repo.catalog.session() as s:
        assert unrepairable_files(s, package) == {}
        assert s.get(Job, dead_id).state == queue.SUPERSEDED
        resupplied = s.scalars(select(Event).where(Event.package_id == package, Event.event_type == "repair")
                               .order_by(Event.seq)).all()[-3:]
        assert verify_chain(s).ok
    assert {e.node_name for e in resupplied} == set(NODES)
    assert all(e.outcome == "success" and e.detail["resupplied"] == XML and e.detail["source"] == "outside the network"
               for e in resupplied)
    report = run_cli("status", "--json").json()
    assert report["damaged_packages"] == [] and report["dead_jobs"] == 0
    assert report["packages"]["preserved"]["count"] == 1
    again = run_cli("repair", package, "--from-file", f"{XML}={_original(delivery, XML)}", "--json").json()
    assert again["files"][0]["written"] == [] and sorted(again["files"][0]["already_right"]) == list(NODES)


def _catalog_snapshot(repo, package):
    states = {n: r.state for n, r in _replicas(repo, package).items()}
    with repo.catalog.session() as s:
        return (s.scalar(select(func.count()).select_from(Event)),
                s.scalar(select(func.count()).select_from(UnrepairableFile)), states)


@small
def test_a_wrong_file_is_refused_with_a_coded_error_and_nothing_changes(repo, package, delivery, run_cli, tmp_path):
    _damage(repo, package, 2)
    run_cli("audit", exit_code=1)
    _run_worker(repo)
    before_bytes = {n: (node_root(repo, n) / package / XML).read_bytes() for n in NODES}
    before = _catalog_snapshot(repo, package)
    good = _original(delivery, XML).read_bytes()
    same_size = tmp_path / "same-size.xml"
    same_size.write_bytes(good[:-2] + b"X\n")  # one byte changed: size right, both digests wrong
    longer = tmp_path / "longer.xml"
    longer.write_bytes(good + b"\n")
    for wrong, differs in ((same_size, ["sha256", "sha512"]), (longer, ["size", "sha256", "sha512"])):
        out = run_cli("repair", package, "--from-file", f"{XML}={wrong}", "--json", exit_code=27)
        error = json.loads(out.stderr)["error"]
        assert error["code"] == "E506" and error["params"]["differs"] == differs
        assert "nothing was written" in error["message"]
    # several files at once are all checked before any is written
    out = run_cli("repair", package, "--from-file", f"{PDF}={_original(delivery, PDF)}",
                  "--from-file", f"{XML}={same_size}", exit_code=27)
    assert "E506" in out.stderr
    assert {n: (node_root(repo, n) / package / XML).read_bytes() for n in NODES} == before_bytes
    assert _catalog_snapshot(repo, package) == before


@small
def test_resupply_refuses_what_it_cannot_use_before_writing(repo, package, delivery, tmp_path):
    local = _original(delivery, XML)
    with pytest.raises(NotFound):
        resupply(repo, package, [Offer("data/not-in-the-package.xml", local)])
    with pytest.raises(InvalidRequest):
        resupply(repo, package, [Offer(XML, tmp_path)])  # a directory
    with pytest.raises(InvalidRequest):
        resupply(repo, package, [Offer(XML, tmp_path / "absent.xml")])
    with pytest.raises(InvalidRequest):
        resupply(repo, package, [Offer(XML, local), Offer(XML, local)])
    with pytest.raises(InvalidRequest):
        resupply(repo, package, [])
    link = tmp_path / "link.xml"
    link.symlink_to(local)
    with pytest.raises(InvalidRequest):
        resupply(repo, package, [Offer(XML, link)])  # never follows a link to somewhere else
    with pytest.raises(ResuppliedFileMismatch):
        resupply(repo, package, [Offer(PDF, local)])
    for text in ("data/a.xml", "=x", "data/a.xml="):
        with pytest.raises(InvalidRequest):
            parse_offer(text)
    assert parse_offer("data/a=b.xml=/tmp/f") == Offer("data/a", Path("b.xml=/tmp/f"))


@small
def test_a_dead_job_is_acknowledged_with_a_note_and_leaves_the_status(repo, package, run_cli):
    with repo.catalog.session() as s:  # an audit for a copy that no longer exists: permanent, so dead
        job = queue.enqueue(s, kinds.AUDIT, {"replica_id": 999_999}, package_id=package, max_attempts=1)
        job_id = job.id
    _run_worker(repo)
    assert run_cli("status", "--json").json()["dead_jobs"] == 1
    run_cli("jobs", "ack", job_id, "--note", "bad\x07note", "--json", exit_code=2)  # refused: nothing changes
    out = run_cli("jobs", "ack", job_id, "--note", "工单 #4711: copy removed", "--json").json()
    assert out["state"] == "acknowledged"
    report = run_cli("status", "--json").json()
    assert report["dead_jobs"] == 0 and report["dead_job_list"] == []
    listed = run_cli("jobs", "list", "--state", "acknowledged", "--json").json()
    assert [j["id"] for j in listed["jobs"]] == [job_id] and listed["count"] == 1
    with repo.catalog.session() as s:
        ack = s.scalars(select(Event).where(Event.job_id == job_id, Event.outcome == "acknowledged")).one()
        assert ack.detail["note"] == "工单 #4711: copy removed" and ack.detail["previous_state"] == "dead"
    shown = run_cli("jobs", "show", job_id, "--json").json()
    assert shown["state"] == "acknowledged" and shown["events"][-1]["note"] == "工单 #4711: copy removed"
    assert "note: 工单 #4711: copy removed" in run_cli("jobs", "show", job_id).output
    again = json.loads(run_cli("jobs", "ack", job_id, "--json", exit_code=2).stderr)
    assert "only dead jobs" in again["error"]["message"]
    run_cli("jobs", "ack", "424242", exit_code=5)


@small
def test_repair_now_repairs_what_has_a_source_and_exits_1_while_files_are_lost(repo, package, delivery, run_cli):
    flip_bit(node_root(repo, "uni-pku") / package / PDF, offset=100)
    run_cli("audit", exit_code=1)
    out = run_cli("repair", package[:8], "--json").json()
    assert [(c["node"], c["state"], c["files_repaired"]) for c in out["copies"]] == [("uni-pku", "verified", 1)]
    assert out["package_state"] == "preserved" and out["unrepairable"] == []
    for bit, node in enumerate(NODES):
        flip_bit(node_root(repo, node) / package / XML, offset=40, bit=bit)
    run_cli("audit", exit_code=1)
    out = run_cli("repair", package, "--json", exit_code=1).json()
    assert out["package_state"] == "damaged" and out["unrepairable"] == [{"path": XML, "nodes": list(NODES)}]
    assert "re-supply" in run_cli("repair", package, exit_code=1).output


@small
def test_an_acknowledged_dead_job_no_longer_raises_an_alert(repo, package, run_cli):
    from preservation.alerts import current_conditions
    from preservation.catalog.models import utcnow

    with repo.catalog.session() as s:
        job_id = queue.enqueue(s, kinds.AUDIT, {"replica_id": 999_999}, package_id=package, max_attempts=1).id
    _run_worker(repo)
    with repo.catalog.session() as s:
        assert f"job:{job_id}" in {c.key for c in current_conditions(repo, s, utcnow())}
    run_cli("jobs", "ack", job_id)
    with repo.catalog.session() as s:
        assert f"job:{job_id}" not in {c.key for c in current_conditions(repo, s, utcnow())}


def test_a_partial_restore_of_a_version_reports_a_file_an_earlier_version_stored_and_lost(repo, tmp_path, run_cli):
    from .versions.helpers import FIRST, write_delivery

    first = ingest(repo, write_delivery(tmp_path / "m1", FIRST), "journals")["package_id"]
    files = {**FIRST, "b.txt": b"bravo, corrected\n"}
    second = ingest(repo, write_delivery(tmp_path / "m2", files), "journals", version_of=first)["package_id"]
    shared = "data/data-a.txt"  # stored by the first version, referenced by the second
    for bit, node in enumerate(NODES):
        flip_bit(node_root(repo, node) / first / shared, offset=1, bit=bit)
    run_cli("audit", exit_code=1)
    run_cli("restore", second, tmp_path / "refused", exit_code=13)  # without --partial: refused as before
    assert not (tmp_path / "refused").exists()
    dest = tmp_path / "v2"
    result = run_cli("restore", "--partial", second, dest, "--json", exit_code=28).json()
    assert [m["path"] for m in result["missing"]] == [shared] and result["version"] == 2
    assert (dest / "data" / "b.txt").read_bytes() == b"bravo, corrected\n" and not (dest / shared).exists()
    assert _payload_files(dest) == len(files) - 1
