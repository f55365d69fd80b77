"""Re-identification when a newer signature file is installed: planned within read budgets, heads and tails only."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from preservation.catalog.format_models import FileFormat
from preservation.catalog.models import Event, Job, Node, utcnow
from preservation.formats.analyser import FORMAT_IDENTIFICATION
from preservation.formats.identify import BUFSIZE, signatures
from preservation.formats.reidentify import read_estimate, reidentify_package
from preservation.ingest import ingest
from preservation.jobs import kinds
from preservation.runtime.handlers import default_registry
from preservation.runtime.worker import Worker, WorkerOptions
from preservation.upkeep.reidentification import plan_reidentification

from ..fixtures import node_root
from .test_identify_ingest import format_delivery

OLD = "v100 container-20190101"
BIG = 3 * 1024 * 1024 + 5


class CountingAdapter:
    """Wraps a node's adapter and counts the bytes every read returns."""

    def __init__(self, inner, counter: dict) -> None:
        self._inner = inner
        self._counter = counter

    def read(self, key, offset=0, length=None):
        for chunk in self._inner.read(key, offset, length):
            self._counter["bytes"] += len(chunk)
            self._counter["reads"].append((key.rsplit("/", 1)[-1], offset, length))
            yield chunk

    def __getattr__(self, name):
        return getattr(self._inner, name)


@pytest.fixture
def counted(repo, monkeypatch):
    counter = {"bytes": 0, "reads": []}
    adapter = repo.adapter
    monkeypatch.setattr(repo, "adapter", lambda node: CountingAdapter(adapter(node), counter))
    return counter


def _ingest(repo, tmp_path, name="delivery"):
    root = format_delivery(tmp_path / name)
    rng = random.Random(11)
    (root / "big.pdf").write_bytes(b"%PDF-1.4\n" + rng.randbytes(BIG - 16) + b"\n%%EOF\n")
    result = ingest(repo, root, "journals")
    assert result["state"] == "preserved"
    return result["package_id"]


def _age(repo, package_id, **changes):
    """Make the package's records look identified by an older signature file (and say other things)."""
    with repo.catalog.session() as s:
        s.execute(update(FileFormat).where(FileFormat.package_id == package_id).values(signature_version=OLD))
        for path, values in changes.items():
            s.execute(update(FileFormat).where(FileFormat.package_id == package_id, FileFormat.path == path)
                      .values(**values))


def _records(repo, package_id):
    with repo.catalog.session() as s:
        rows = s.scalars(select(FileFormat).where(FileFormat.package_id == package_id)).all()
        s.expunge_all()
        return {r.path: r for r in rows}


def test_the_scheduler_reidentifies_older_records_from_heads_and_tails(repo, tmp_path, counted):
    package_id = _ingest(repo, tmp_path)
    before = _records(repo, package_id)
    _age(repo, package_id, **{"data/images/good.png": {"puid": "fmt/12", "basis": "extension"},
                              "data/mystery.zz9q": {"puid": "fmt/999", "basis": "signature"}})
    counted["bytes"] = 0
    planned = plan_reidentification(repo)
    assert planned["enqueued"] == 1 and planned["signature_version"] == signatures().signature_version
    assert plan_reidentification(repo)["enqueued"] == 0  # one live job per package
    Worker(repo, default_registry(), WorkerOptions(once=True)).run()
    after = _records(repo, package_id)
    current = signatures().signature_version
    assert {r.signature_version for r in after.values()} == {current}
    assert after["data/images/good.png"].puid == "fmt/11" and after["data/images/good.png"].basis == "signature"
    assert after["data/mystery.zz9q"].puid is None
    for path, row in after.items():  # the same answers as ingest gave, validation kept
        assert (row.puid, row.basis, row.validation) == (before[path].puid, before[path].basis, before[path].validation)
    assert after["data/articles/truncated.pdf"].details.get("validation") == before[
        "data/articles/truncated.pdf"].details.get("validation")
    with repo.catalog.session() as s:
        changes = s.scalars(select(Event).where(Event.package_id == package_id,
                                                Event.event_type == FORMAT_IDENTIFICATION,
                                                Event.job_id.is_not(None))).all()
        assert sorted(e.detail["path"] for e in changes) == ["data/images/good.png", "data/mystery.zz9q"]
        png = next(e for e in changes if e.detail["path"] == "data/images/good.png")
        assert png.detail["from"] == {"puid": "fmt/12", "basis": "extension", "signature_version": OLD}
        assert png.detail["to"]["puid"] == "fmt/11" and png.detail["to"]["signature_version"] == current
        (job,) = s.scalars(select(Job).where(Job.kind == kinds.REIDENTIFY)).all()
        assert job.state == "succeeded" and job.result["changed"] == 2
    # only heads and tails were read: the big file's 256 KiB, never its 3 MiB
    sizes = [r.size for r in after.values()]
    assert counted["bytes"] == read_estimate(sizes) < sum(sizes)
    big = [(offset, length) for name, offset, length in counted["reads"] if name == "big.pdf"]
    assert sorted(big) == [(0, BUFSIZE), (BIG - BUFSIZE, BUFSIZE)]
    assert plan_reidentification(repo)["enqueued"] == 0  # nothing left to do


def test_planning_keeps_within_a_share_of_the_nodes_read_budget(repo, tmp_path):
    first = _ingest(repo, tmp_path, "one")
    second = _ingest(repo, tmp_path, "two")
    _age(repo, first)
    _age(repo, second)
    with repo.catalog.session() as s:  # a day's share (10 %) smaller than one package's heads and tails
        s.execute(update(Node).values(read_budget_bytes_per_day=1_000_000))
    now = utcnow().replace(hour=12)
    planned = plan_reidentification(repo, now=now)
    assert planned["enqueued"] == 1 and planned["waiting"] == 1  # the first of the day always fits: nothing starves
    Worker(repo, default_registry(), WorkerOptions(once=True)).run()
    assert plan_reidentification(repo, now=now)["enqueued"] == 0  # today's share is spent
    assert plan_reidentification(repo, now=now + timedelta(days=1))["enqueued"] == 1  # tomorrow's is not


def test_a_file_no_copy_gives_is_left_as_it_was_with_a_finding(repo, tmp_path):
    package_id = _ingest(repo, tmp_path)
    _age(repo, package_id)
    for node in ("uni-pku", "cas-nsl", "inst-istic"):
        (node_root(repo, node) / package_id / "data" / "mystery.zz9q").unlink()
    report = reidentify_package(repo, package_id)
    assert [f["code"] for f in report["findings"]] == ["FMT007"]
    assert report["reidentified"] == report["files"] - 1
    assert _records(repo, package_id)["data/mystery.zz9q"].signature_version == OLD


def test_the_cli_reidentifies_at_once(repo, tmp_path, run_cli):
    package_id = _ingest(repo, tmp_path)
    _age(repo, package_id, **{"data/images/good.png": {"puid": "fmt/12"}})
    listed = run_cli("formats", "reidentify", "--json").json()
    (report,) = listed["packages"]
    assert listed["count"] == 1 and report["package_id"] == package_id and report["changed"] == 1
    assert run_cli("formats", "reidentify", "--json").json() == {"packages": [], "count": 0}
    again = run_cli("formats", "reidentify", "--package", package_id[:8], "--json").json()  # a prefix will do
    assert again["packages"][0]["package_id"] == package_id and again["packages"][0]["files"] == 0
    assert run_cli("formats", "reidentify", "--package", "nope", "--json", exit_code=5)
