"""FilePipeline: one read per file, digests and copies right, order kept, errors per file."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest

from preservation import pagecache
from preservation.bagit import pipeline
from preservation.bagit.pipeline import BATCH_FILES, CHUNK_SIZE, READ, WRITE, FilePipeline, Job


def expected(data: bytes) -> bytes:
    return hashlib.sha256(data).digest() + hashlib.md5(data).digest()


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_copies_and_digests_in_order(tmp_path: Path, workers: int) -> None:
    sizes = [0, 1, 4096, 4097, CHUNK_SIZE, CHUNK_SIZE + 1, 2 * CHUNK_SIZE + 7] + [100] * (3 * BATCH_FILES)
    jobs, contents = [], []
    for i, size in enumerate(sizes):
        data = os.urandom(size)
        src = tmp_path / f"src{i}"
        src.write_bytes(data)
        contents.append(data)
        hint = size if i % 2 else 10  # a wrong size hint only changes the read strategy
        jobs.append(Job(i, os.fsencode(src), target=os.fsencode(tmp_path / f"dst{i}"), size=hint))
    outcomes = list(FilePipeline(("sha256", "md5"), workers).run(iter(jobs)))
    assert [o.tag for o in outcomes] == list(range(len(sizes)))
    for outcome, data in zip(outcomes, contents):
        assert outcome.error is None and outcome.size == len(data) and outcome.raw == expected(data)
        assert (tmp_path / f"dst{outcome.tag}").read_bytes() == data


def test_in_memory_and_streamed_sources(tmp_path: Path) -> None:
    big = os.urandom(CHUNK_SIZE + 99)
    jobs = [
        Job("mem", data=b"held in memory", target=os.fsencode(tmp_path / "mem")),
        Job("stream", opener=lambda: io.BytesIO(big), target=os.fsencode(tmp_path / "stream"), size=len(big)),
        Job("digest-only", data=b"no target"),
    ]
    out = {o.tag: o for o in FilePipeline(("sha256", "md5"), 2).run(jobs)}
    assert out["mem"].raw == expected(b"held in memory")
    assert out["stream"].raw == expected(big) and (tmp_path / "stream").read_bytes() == big
    assert out["digest-only"].raw == expected(b"no target") and not (tmp_path / "digest-only").exists()


def test_errors_name_the_side_that_failed(tmp_path: Path) -> None:
    (tmp_path / "exists").write_bytes(b"old")
    (tmp_path / "src").write_bytes(b"new")
    jobs = [
        Job("missing", os.fsencode(tmp_path / "nope"), size=1),
        Job("occupied", os.fsencode(tmp_path / "src"), target=os.fsencode(tmp_path / "exists"), size=3),
        Job("fine", os.fsencode(tmp_path / "src"), size=3),
    ]
    out = {o.tag: o for o in FilePipeline(("sha256",), 2).run(jobs)}
    assert out["missing"].side == READ and isinstance(out["missing"].error, FileNotFoundError)
    assert out["occupied"].side == WRITE and isinstance(out["occupied"].error, FileExistsError)
    assert (tmp_path / "exists").read_bytes() == b"old"
    assert out["fine"].error is None


def test_symlinks_are_not_followed(tmp_path: Path) -> None:
    (tmp_path / "real").write_bytes(b"x")
    os.symlink(tmp_path / "real", tmp_path / "link")
    (outcome,) = FilePipeline(("sha256",), 1).run([Job("l", os.fsencode(tmp_path / "link"), size=1)])
    assert outcome.error is not None and outcome.side == READ


def _copy_jobs(tmp_path: Path, sizes: list[int]) -> tuple[list[Job], list[bytes]]:
    jobs, contents = [], []
    for i, size in enumerate(sizes):
        data = os.urandom(size)
        (tmp_path / f"src{i}").write_bytes(data)
        contents.append(data)
        jobs.append(Job(i, os.fsencode(tmp_path / f"src{i}"), target=os.fsencode(tmp_path / f"dst{i}"), size=size))
    return jobs, contents


@pytest.mark.parametrize("workers", [1, 2])
def test_drop_behind_advises_every_streamed_copy_and_changes_no_byte(tmp_path: Path, monkeypatch, workers: int) -> None:
    monkeypatch.setattr(pipeline, "CHUNK_SIZE", 4096)
    monkeypatch.setattr(pipeline, "DROP_BEHIND", 3 * 4096)
    advised: dict[int, list[tuple[int, int]]] = {}

    def record(fd: int, offset: int, length: int, advice: int) -> None:
        assert advice == os.POSIX_FADV_DONTNEED
        advised.setdefault(os.fstat(fd).st_ino, []).append((offset, offset + length))

    monkeypatch.setattr(pagecache, "FADVISE", record)
    sizes = [100, 4095, 4096, 5 * 4096 + 17, 11 * 4096 + 3, 8 * 4096, 3, 7 * 4096]
    jobs, contents = _copy_jobs(tmp_path, sizes)
    outcomes = list(FilePipeline(("sha256", "md5"), workers).run(jobs))
    for outcome, data in zip(outcomes, contents):
        assert outcome.error is None and outcome.raw == expected(data)
        target = tmp_path / f"dst{outcome.tag}"
        assert target.read_bytes() == data
        ranges = sorted(advised.get(target.stat().st_ino, []))
        if len(data) < 4096:
            assert ranges == []  # small files are written in one go and left alone
        else:
            # the whole copy was advised (its writeback started), window after window
            covered = 0
            for start, end in ranges:
                assert start <= covered
                covered = max(covered, end)
            assert covered == len(data)
    sources = {(tmp_path / f"src{i}").stat().st_ino for i in range(len(sizes))}
    assert not sources & advised.keys()  # the delivery's pages are not ours to drop


def test_drop_behind_that_fails_or_is_missing_changes_nothing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(pipeline, "CHUNK_SIZE", 4096)
    monkeypatch.setattr(pipeline, "DROP_BEHIND", 4096)

    def refuse(fd: int, offset: int, length: int, advice: int) -> None:
        raise OSError(22, "Invalid argument")

    for fadvise in (refuse, None):
        monkeypatch.setattr(pagecache, "FADVISE", fadvise)
        target_dir = tmp_path / ("refused" if fadvise else "missing")
        target_dir.mkdir()
        jobs, contents = _copy_jobs(target_dir, [9 * 4096 + 1, 3 * 4096, 5])
        for outcome, data in zip(FilePipeline(("sha256", "md5"), 2).run(jobs), contents):
            assert outcome.error is None and outcome.raw == expected(data)
            assert (target_dir / f"dst{outcome.tag}").read_bytes() == data


def test_digest_only_runs_never_advise(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(pipeline, "CHUNK_SIZE", 4096)
    monkeypatch.setattr(pipeline, "DROP_BEHIND", 4096)
    monkeypatch.setattr(pagecache, "FADVISE", lambda *args: pytest.fail("advised while only reading"))
    (tmp_path / "src").write_bytes(b"z" * 50_000)
    (outcome,) = FilePipeline(("sha256", "md5"), 1).run([Job("r", os.fsencode(tmp_path / "src"), size=50_000)])
    assert outcome.raw == expected(b"z" * 50_000)


def test_small_files_stay_on_the_calling_thread_and_big_ones_go_to_workers(tmp_path: Path, monkeypatch) -> None:
    import threading

    where: dict[object, str] = {}
    real = FilePipeline._one

    def one(self, job):
        where[job.tag] = threading.current_thread().name
        return real(self, job)

    monkeypatch.setattr(FilePipeline, "_one", one)
    big = 2 * pipeline.INLINE_BELOW
    sizes = [100] * BATCH_FILES + [big] * BATCH_FILES + [100] * BATCH_FILES  # small, big, small batches
    jobs = []
    for i, size in enumerate(sizes):
        src = tmp_path / f"src{i}"
        src.write_bytes(os.urandom(size))
        jobs.append(Job(i, os.fsencode(src), size=size))
    outcomes = list(FilePipeline(("sha256", "md5"), 2).run(iter(jobs)))
    assert [o.tag for o in outcomes] == list(range(len(sizes)))  # order kept across the switch
    assert all(o.error is None and o.raw == expected((tmp_path / f"src{o.tag}").read_bytes()) for o in outcomes)
    here = threading.current_thread().name
    assert {where[i] for i in range(BATCH_FILES)} == {here}
    assert {where[i] for i in range(BATCH_FILES, 2 * BATCH_FILES)} <= {"preserve-bag_0", "preserve-bag_1"}
    assert {where[i] for i in range(2 * BATCH_FILES, 3 * BATCH_FILES)} == {here}


@pytest.mark.parametrize("size", [100, CHUNK_SIZE - 1, CHUNK_SIZE, 3 * CHUNK_SIZE + 5])
def test_a_file_whose_digests_are_known_is_digested_and_not_written(tmp_path: Path, size: int) -> None:
    same, other = os.urandom(size), os.urandom(size)
    (tmp_path / "same").write_bytes(same)
    (tmp_path / "other").write_bytes(other)
    jobs = [Job(name, os.fsencode(tmp_path / name), target=os.fsencode(tmp_path / f"copy-{name}"), size=size,
                known=expected(same)) for name in ("same", "other")]
    out = {o.tag: o for o in FilePipeline(("sha256", "md5"), 2).run(jobs)}
    assert out["same"].error is None and out["same"].raw == expected(same) and out["same"].written is False
    assert not (tmp_path / "copy-same").exists()
    assert out["other"].error is None and out["other"].raw == expected(other) and out["other"].written is True
    assert (tmp_path / "copy-other").read_bytes() == other


class _Closes:
    """An observer that notes how it was closed, and how many bytes it was fed."""

    def __init__(self) -> None:
        self.fed, self.closed = 0, None

    def feed(self, chunk) -> None:
        self.fed += len(chunk)

    def close(self, size: int) -> None:
        self.closed = ("close", size)

    def close_known(self, size: int) -> None:
        self.closed = ("close_known", size)


@pytest.mark.parametrize("size", [100, CHUNK_SIZE - 1, CHUNK_SIZE, 3 * CHUNK_SIZE + 5])
def test_an_observer_learns_that_the_bytes_were_the_known_ones(tmp_path: Path, size: int) -> None:
    same, other = os.urandom(size), os.urandom(size)
    (tmp_path / "same").write_bytes(same)
    (tmp_path / "other").write_bytes(other)
    observers = {"same": _Closes(), "other": _Closes(), "unasked": _Closes()}
    jobs = [Job(name, os.fsencode(tmp_path / ("same" if name == "unasked" else name)),
                target=os.fsencode(tmp_path / f"copy-{name}"), size=size, observer=observers[name],
                known=None if name == "unasked" else expected(same)) for name in observers]
    assert all(o.error is None for o in FilePipeline(("sha256", "md5"), 2).run(jobs))
    assert observers["same"].closed == ("close_known", size) and observers["same"].fed == size
    assert observers["other"].closed == ("close", size) and observers["other"].fed == size  # seen once, not twice
    assert observers["unasked"].closed == ("close", size)


class _Rewrites:
    """An observer that changes the file on disk once its first read is done (the second read sees it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fed = 0

    def feed(self, chunk) -> None:
        self.fed += len(chunk)

    def close(self, size: int) -> None:
        with open(self.path, "r+b") as f:
            f.write(b"changed!")


def test_a_big_file_that_changes_between_its_two_reads_is_refused_and_not_left_behind(tmp_path: Path) -> None:
    data = os.urandom(2 * CHUNK_SIZE + 3)
    src = tmp_path / "src"
    src.write_bytes(data)
    observer = _Rewrites(src)
    job = Job("f", os.fsencode(src), target=os.fsencode(tmp_path / "copy"), size=len(data), observer=observer,
              known=expected(b"the digests of other bytes"))
    (outcome,) = FilePipeline(("sha256", "md5"), 1).run([job])
    assert outcome.side == READ and isinstance(outcome.error, pipeline.FileChanged)
    assert observer.fed == len(data)  # the observer saw the first read only
    assert not (tmp_path / "copy").exists()
