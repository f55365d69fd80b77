"""Content analysis at ingest: analysers see every payload byte once, in the bagging pass, and fail safely."""

from __future__ import annotations

import hashlib
import os
import tarfile
import zipfile
from pathlib import Path

import bagit
import pytest
from sqlalchemy import func, select

from preservation.analysis import Analysis
from preservation.catalog.models import Event, Package
from preservation.errors import DeliveryRejected
from preservation.events import record_event
from preservation.findings import FindingList
from preservation.ingest import ingest


def _files(root: Path) -> dict[str, bytes]:
    return {f"data/{p.relative_to(root).as_posix()}": p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


class Recorder:
    """Digests what it is fed of every file; remembers the staging root and writes an event at registration."""

    name = "recorder"

    def __init__(self, want=lambda path, size: True) -> None:
        self.want = want
        self.seen: dict[str, tuple[str, int]] = {}
        self.bag_root: str | None = None

    def observer(self, path, size):
        if not self.want(path, size):
            return None
        recorder = self

        class Observer:
            def __init__(self):
                self.h = hashlib.sha256()

            def feed(self, chunk):
                self.h.update(chunk)

            def close(self, n):
                recorder.seen[path] = (self.h.hexdigest(), n)

        return Observer()

    def finish(self, bag_root, findings):
        self.bag_root = bag_root
        assert os.path.isfile(os.path.join(bag_root, "bagit.txt"))  # still in staging, whole

    def register(self, session, package_id, findings):
        record_event(session, "metadata extraction", "success", agent="test", package_id=package_id,
                     detail={"files": len(self.seen)})
        return {"files": len(self.seen)}


def _big_delivery(tmp_path: Path) -> Path:
    root = tmp_path / "delivery"
    (root / "articles" / "物理学报").mkdir(parents=True)
    (root / "articles" / "物理学报" / "a1.xml").write_text("<article>一</article>", encoding="utf-8")
    (root / "articles" / "a2.pdf").write_bytes(os.urandom(3 * 1024 * 1024 + 17))  # streamed in chunks
    (root / "empty.txt").write_bytes(b"")
    for i in range(70):  # a batch of small files, copied on the calling thread
        (root / f"small-{i:02d}.bin").write_bytes(os.urandom(100 + i))
    return root


def _expected(files: dict[str, bytes]) -> dict[str, tuple[str, int]]:
    return {p: (hashlib.sha256(b).hexdigest(), len(b)) for p, b in files.items()}


@pytest.mark.parametrize("form", ["directory", "tar.gz", "zip", "bag"])
def test_every_payload_byte_reaches_the_observer_once(repo, tmp_path, form):
    root = _big_delivery(tmp_path)
    files = _files(root)
    source: Path = root
    if form == "tar.gz":
        source = tmp_path / "delivery.tar.gz"
        with tarfile.open(source, "w:gz") as tar:
            for p in sorted(root.rglob("*")):
                tar.add(p, arcname=p.relative_to(root).as_posix(), recursive=False)
    elif form == "zip":
        source = tmp_path / "delivery.zip"
        with zipfile.ZipFile(source, "w", zipfile.ZIP_DEFLATED) as zf:
            for p in sorted(root.rglob("*")):
                if p.is_file():
                    zf.write(p, p.relative_to(root).as_posix())
    elif form == "bag":
        bagit.make_bag(str(root), checksums=["sha256"])
    recorder = Recorder()
    result = ingest(repo, source, "journals", analysers=[recorder])
    assert result["state"] == "preserved"
    assert recorder.seen == _expected(files)
    assert result["content"] == {"recorder": {"files": len(files)}}
    with repo.catalog.session() as s:
        assert s.scalar(select(func.count()).select_from(Event).where(
            Event.package_id == result["package_id"], Event.event_type == "metadata extraction")) == 1


def test_an_analyser_sees_only_the_files_it_asks_for(repo, tmp_path):
    root = _big_delivery(tmp_path)
    recorder = Recorder(want=lambda path, size: path.endswith(".xml"))
    ingest(repo, root, "journals", analysers=[recorder])
    assert list(recorder.seen) == ["data/articles/物理学报/a1.xml"]


class Exploding(Recorder):
    name = "exploding"

    def observer(self, path, size):
        if path.endswith("a2.pdf"):
            class Bad:
                def feed(self, chunk):
                    raise ValueError("parser broke\x1b[31m")

                def close(self, n):
                    raise AssertionError("never closed after a failed feed")

            return Bad()
        if path.endswith("empty.txt"):
            raise RuntimeError("refused to look")
        return super().observer(path, size)


def test_an_analyser_that_raises_loses_its_analysis_not_the_package(repo, tmp_path):
    root = _big_delivery(tmp_path)
    files = _files(root)
    exploding, healthy = Exploding(), Recorder()
    result = ingest(repo, root, "journals", analysers=[exploding, healthy])
    assert result["state"] == "preserved"
    assert healthy.seen == _expected(files)  # the other analyser saw everything
    assert "data/articles/a2.pdf" not in exploding.seen and "data/empty.txt" not in exploding.seen
    failed = [w for w in result["warnings"] if w["code"] == "CA001"]
    assert sorted(w["path"] for w in failed) == ["data/articles/a2.pdf", "data/empty.txt"]
    assert all("\x1b" not in w["message"] for w in failed)  # escaped before it reaches a log or a terminal


class Refusing(Recorder):
    name = "refusing"

    def finish(self, bag_root, findings: FindingList):
        super().finish(bag_root, findings)
        findings.add("CA001", "the policy refuses this content", "data/articles/a2.pdf")


class BrokenRegistration(Recorder):
    name = "broken"

    def register(self, session, package_id, findings):
        super().register(session, package_id, findings)
        raise RuntimeError("the catalog said no")


def _nothing_left(repo) -> None:
    with repo.catalog.session() as s:
        assert s.scalar(select(func.count()).select_from(Package)) == 0
        assert s.scalar(select(func.count()).select_from(Event)) == 0
    assert os.listdir(repo.staging_dir) == []


def test_an_error_finding_of_an_analyser_refuses_the_delivery_and_leaves_nothing(repo, tmp_path):
    refusing = Refusing()
    with pytest.raises(DeliveryRejected) as raised:
        ingest(repo, _big_delivery(tmp_path), "journals", analysers=[refusing])
    assert [f.code for f in raised.value.findings] == ["CA001"]
    assert refusing.bag_root is not None and not os.path.exists(refusing.bag_root)
    _nothing_left(repo)


def test_a_failing_registration_leaves_no_package_and_no_staging(repo, tmp_path):
    with pytest.raises(RuntimeError, match="the catalog said no"):
        ingest(repo, _big_delivery(tmp_path), "journals", analysers=[BrokenRegistration()])
    _nothing_left(repo)


def test_analysis_fans_one_observer_out_and_skips_unwanted_files(tmp_path):
    a, b = Recorder(want=lambda p, s: True), Recorder(want=lambda p, s: False)
    analysis = Analysis([a, b])
    assert Analysis([b]).observe("data/x", 1) is None
    observer = analysis.observe("data/x", 3)
    for chunk in (b"a", memoryview(b"bc")):
        observer.feed(chunk)
    observer.close(3)
    assert a.seen == {"data/x": (hashlib.sha256(b"abc").hexdigest(), 3)} and b.seen == {}
    # finish() raising (here: no bag at that path) is a warning per analyser, never an exception
    findings = analysis.finish(str(tmp_path))
    assert findings.ok and [(f.code, f.params["analyser"]) for f in findings] == [("CA001", "recorder")] * 2


def test_an_analyser_that_cannot_let_go_is_logged_and_the_others_still_close(caplog):
    closed = []

    class Stuck(Recorder):
        name = "stuck"

        def close(self):
            raise OSError("pipe\x1b[31m wedged")

    class Tidy(Recorder):
        name = "tidy"

        def close(self):
            closed.append(self.name)

    with caplog.at_level("WARNING", logger="preservation.analysis"):
        Analysis([Stuck(), Tidy()]).close()  # never raises: an ingest's own outcome stands
    assert closed == ["tidy"]
    [record] = [r for r in caplog.records if r.name == "preservation.analysis"]
    assert "stuck" in record.getMessage() and "wedged" in record.getMessage()
    assert "\x1b" not in record.getMessage()  # escaped before it reaches the log
