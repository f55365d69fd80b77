"""XML parsed in a child process fed over a pipe: killed children, malformed files, huge front matters, memory."""

from __future__ import annotations

import gc
import os
import signal
import struct
import threading
import time
import weakref

import pytest

from sqlalchemy import select

from preservation import identifiers as ids
from preservation.catalog.library_models import Item
from preservation.errors import BagInvalid, DuplicateDelivery
from preservation.findings import FindingList
from preservation.ingest import ingest
from preservation.metadata import jats as jats_module
from preservation.metadata import parsing
from preservation.metadata.analyser import MetadataAnalyser

from .samples import jats, jats_delivery, onix, onix_product

PARAGRAPH = "<p>" + "正文段落。" * 200 + "</p>"
CHUNK = 512 * 1024


def _article(n: int, body: str = PARAGRAPH) -> bytes:
    article = (f'<article-id pub-id-type="doi">10.7498/aps.68.2019{n:04d}</article-id>'
               f"<title-group><article-title>文章{n}</article-title></title-group>")
    return jats(article=article, body=body).encode()


def _send(analyser: MetadataAnalyser, path: str, data: bytes, *, close: bool = True):
    observer = analyser.observer(path, len(data))
    view = memoryview(data)
    for start in range(0, len(data), CHUNK):
        observer.feed(view[start:start + CHUNK])
    if close:
        observer.close(len(data))
    return observer


def _finish(analyser: MetadataAnalyser) -> tuple[list, list]:
    findings = FindingList()
    analyser.finish("", findings)
    return list(analyser._spool), list(findings)


def _until(condition, what: str) -> None:
    """Wait for something the child does on its own time (an answer to arrive); fails only if it never does."""
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def test_records_and_notes_come_back_in_the_order_the_files_went():
    analyser = MetadataAnalyser()
    malformed = b'<?xml version="1.0"?><article><front><article-meta><article-id'
    _send(analyser, "data/a/1.xml", _article(1))
    _send(analyser, "data/a/bad.xml", malformed + b" " * 100_000)
    _send(analyser, "data/a/2.xml", _article(2))
    records, findings = _finish(analyser)
    assert [(r.doi, r.item_title, r.metadata_path) for r in records] == [
        ("10.7498/aps.68.20190001", "文章1", "data/a/1.xml"), ("10.7498/aps.68.20190002", "文章2", "data/a/2.xml")]
    assert [(f.code, f.path) for f in findings] == [("MD001", "data/a/bad.xml")]
    assert findings[0].params["line"] == 1


def test_the_child_asks_for_no_more_of_a_file_it_gave_up():
    analyser = MetadataAnalyser()
    broken = b'<?xml version="1.0"?><article><front></article>' + b"<p>x</p>" * 10_000
    observer = _send(analyser, "data/a/bad.xml", broken, close=False)
    child = observer._child
    _until(lambda: observer._id in child.stopped, "the child never said it stopped")
    sent: list[int] = []
    send = child.send
    child.send = lambda parts: (sent.append(struct.unpack_from("<B", parts[0])[0]), send(parts))[1]
    observer.feed(b"x" * CHUNK)  # not sent: the child said so
    observer.close(CHUNK)
    assert sent == [parsing.CLOSE]  # no DATA frame after STOPPED, only the file's end
    records, findings = _finish(analyser)
    assert records == [] and [f.code for f in findings] == ["MD001"]


def _products(n: int) -> bytes:
    isbns = (f"978703{i:06d}" + ids.isbn13_check_digit(f"978703{i:06d}") for i in range(n))
    return onix(*(onix_product(f"ref-{i}", isbn, f"书 {i}") for i, isbn in enumerate(isbns))).encode()


def test_the_child_sends_a_file_s_records_before_the_file_ends():
    """Records go to the spool as they are read (a batch at a time), not held until the file closes."""
    analyser = MetadataAnalyser()
    data = _products(2_000)  # some 1 MB of records' JSON
    observer = _send(analyser, "data/onix.xml", data[:-100], close=False)
    _until(lambda: analyser._spool.count > 1_000, "no record came before the file's end")
    observer.feed(data[-100:])
    observer.close(len(data))
    records, findings = _finish(analyser)
    assert [r.where for r in records] == [f"ref-{i}" for i in range(2_000)] and list(findings) == []


def test_a_child_killed_half_way_through_a_file_keeps_what_it_sent_and_says_so():
    analyser = MetadataAnalyser()
    data = _products(2_000)
    observer = _send(analyser, "data/onix.xml", data[:-100], close=False)
    _until(lambda: analyser._spool.count > 1_000, "no record came before the file's end")
    process = observer._child.process
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    observer.close(len(data))
    records, findings = _finish(analyser)
    assert [(f.code, f.path) for f in findings] == [("MD018", "data/onix.xml")]
    assert findings[0].params["read"] == len(records) > 1_000
    assert f"{len(records)} item(s) read from this file before it stopped" in findings[0].message


def test_the_child_imports_nothing_from_the_working_directory_or_the_environment(tmp_path, monkeypatch):
    planted = tmp_path / "planted"
    planted.mkdir()
    marker = tmp_path / "ran"
    for module in ("lxml", "preservation"):
        (planted / f"{module}.py").write_text(f"open({str(marker)!r}, 'a').write({module!r})\n")
    monkeypatch.chdir(planted)
    monkeypatch.setenv("PYTHONPATH", str(planted))
    analyser = MetadataAnalyser()
    _send(analyser, "data/a/1.xml", _article(1))
    records, findings = _finish(analyser)
    assert [r.doi for r in records] == ["10.7498/aps.68.20190001"] and list(findings) == []
    assert not marker.exists()


def test_a_killed_child_costs_only_the_files_it_had_not_answered():
    analyser = MetadataAnalyser()
    _send(analyser, "data/a/1.xml", _article(1))
    _until(lambda: analyser._spool.count == 1, "the first file was never answered")
    first = analyser.parser._child.process
    in_flight = _send(analyser, "data/a/2.xml", _article(2), close=False)  # half sent when the child dies
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    in_flight.feed(b"<p>more</p>")
    in_flight.close(10)
    _send(analyser, "data/a/3.xml", _article(3))  # a new child reads the files after
    records, findings = _finish(analyser)
    assert [r.doi for r in records] == ["10.7498/aps.68.20190001", "10.7498/aps.68.20190003"]
    assert [(f.code, f.path) for f in findings] == [("MD018", "data/a/2.xml")]
    assert "killed by signal 9" in findings[0].message


def test_children_that_keep_dying_are_not_started_again_and_again(monkeypatch):
    monkeypatch.setattr(parsing, "RESTARTS", 1)
    analyser = MetadataAnalyser()
    for n in range(1, 4):
        observer = _send(analyser, f"data/a/{n}.xml", _article(n), close=False)
        if observer._child is not None:  # (none for the third: no child started)
            os.kill(observer._child.process.pid, signal.SIGKILL)
            observer._child.process.wait()
        observer.close(1)
    _send(analyser, "data/a/4.xml", _article(4))
    records, findings = _finish(analyser)
    assert records == []
    assert sorted((f.code, f.path) for f in findings) == [("MD018", f"data/a/{n}.xml") for n in range(1, 5)]
    assert ["failed too often" in f.message for f in sorted(findings, key=lambda f: f.path)] == [
        False, False, True, True]  # two children killed, then none started


def test_a_child_killed_during_an_ingest_leaves_the_delivery_preserved(repo, tmp_path, monkeypatch):
    root = tmp_path / "delivery"
    dois = jats_delivery(root, 4)
    seen: list[str] = []
    observer = parsing.ParserProcess.observer

    def kill_at_the_third(self, path):
        proxy = observer(self, path)
        seen.append(path)
        if len(seen) == 3:  # the third XML's proxy is made: the child dies before it reads a byte of it
            os.kill(proxy._child.process.pid, signal.SIGKILL)
            proxy._child.process.wait()
        return proxy

    monkeypatch.setattr(parsing.ParserProcess, "observer", kill_at_the_third)
    result = ingest(repo, root, "journals")
    assert result["state"] == "preserved" and result["files"] == 8
    lost = [w for w in result["warnings"] if w["code"].startswith("MD")]
    assert [w["code"] for w in lost] == ["MD018"] * len(lost) and seen[2] in {w["path"] for w in lost}
    with repo.catalog.session() as s:
        held = set(s.scalars(select(Item.doi).where(Item.package_id == result["package_id"])))
    assert held == set(dois) - {dois[int(w["path"][-7:-5]) - 1] for w in lost}  # 第NN篇.xml
    assert seen[3] not in {w["path"] for w in lost}  # the file after was read by a new child


def test_a_huge_front_matter_is_given_up_at_its_limit():
    analyser = MetadataAnalyser()
    abstract = "<abstract>" + PARAGRAPH * 10_000 + "</abstract>"  # 30 MB of front matter (the limit: 16 MiB)
    huge = jats(article='<article-id pub-id-type="doi">10.7498/aps.68.20190009</article-id>' + abstract).encode()
    _send(analyser, "data/a/huge.xml", huge)
    _send(analyser, "data/a/1.xml", _article(1))
    records, findings = _finish(analyser)
    assert [r.doi for r in records] == ["10.7498/aps.68.20190001"]
    assert [(f.code, f.path) for f in findings] == [("MD019", "data/a/huge.xml")]
    assert findings[0].params["limit"] == jats_module.FRONT_LIMIT
    assert analyser.parser.peak_rss < 400 * 1024 * 1024  # (a tree is several times its text)


def _peak_after(body_paragraphs: int) -> int:
    analyser = MetadataAnalyser()
    _send(analyser, "data/a/long.xml", _article(1, PARAGRAPH * body_paragraphs))
    records, findings = _finish(analyser)
    assert [r.doi for r in records] == ["10.7498/aps.68.20190001"] and list(findings) == []
    return analyser.parser.peak_rss


def test_the_child_s_memory_does_not_grow_with_the_file():
    small, large = _peak_after(100), _peak_after(40_000)  # 0.3 MB, then 120 MB of body through the pipe
    assert large - small < 16 * 1024 * 1024, (small, large)


def test_an_analyser_dropped_unfinished_ends_its_child():
    """An ingest that fails while bagging never calls finish(): the child must not outlive the analyser."""
    analyser = MetadataAnalyser()
    _send(analyser, "data/a/1.xml", _article(1), close=False)
    process = analyser.parser._child.process
    spool = weakref.ref(analyser._spool)
    assert process.poll() is None
    del analyser  # nothing but the test held it: the child is ended, its answering thread joined
    assert process.returncode is not None
    gc.collect()
    assert spool() is None  # the analyser's finalizer let it go: the spool's own one closed its file


def test_a_child_that_cannot_start_costs_the_file_a_finding(monkeypatch):
    def no_process(*args, **kwargs):
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(parsing.subprocess, "Popen", no_process)
    analyser = MetadataAnalyser()
    _send(analyser, "data/a/1.xml", _article(1))
    records, findings = _finish(analyser)
    assert records == [] and [(f.code, f.path) for f in findings] == [("MD018", "data/a/1.xml")]
    assert "could not start" in findings[0].message


def _spy_children(monkeypatch) -> list:
    """The process of every parsing child started from now on (not the child: it holds the parser)."""
    started: list = []
    init = parsing._Child.__init__

    def spy(self, owner):
        init(self, owner)
        started.append(self.process)

    monkeypatch.setattr(parsing._Child, "__init__", spy)
    return started


def _answering_threads() -> int:
    """The parsing children's answering and feeding threads alive in this process."""
    return sum(t.name in ("preserve-metadata-answers", "preserve-metadata-feeder") for t in threading.enumerate())


def test_a_refused_ingest_ends_its_parsing_child_at_once(repo, tmp_path, monkeypatch):
    """A bag refused while bagging (a wrong manifest line): the child, its thread and its pipes go with the
    refusal, while the error (whose traceback holds the analysis) is still alive: no garbage collector needed."""
    started = _spy_children(monkeypatch)
    threads = _answering_threads()
    bag = tmp_path / "bag"
    (bag / "data").mkdir(parents=True)
    (bag / "data" / "a.xml").write_bytes(_article(1))
    (bag / "bagit.txt").write_text("BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n")
    (bag / "manifest-sha256.txt").write_text("0" * 64 + "  data/a.xml\n")
    refused = []
    for n in range(3):
        with pytest.raises(BagInvalid) as error:
            ingest(repo, bag, "journals", name=f"bad{n}")
        refused.append(error)
    assert len(started) == 3  # one child an ingest, each started with the XML file
    assert [process.returncode is not None for process in started] == [True] * 3
    assert [process.stdin.closed and process.stdout.closed for process in started] == [True] * 3
    assert _answering_threads() == threads


def test_an_analyser_refused_as_a_duplicate_is_let_go(repo, tmp_path, monkeypatch):
    root = tmp_path / "delivery"
    jats_delivery(root, 2)
    ingest(repo, root, "journals", replicate=False)
    started = _spy_children(monkeypatch)
    analyser = MetadataAnalyser()
    spool = weakref.ref(analyser._spool)
    with pytest.raises(DuplicateDelivery):  # refused after staging, before register: its records unwritten
        ingest(repo, root, "journals", replicate=False, allow_duplicate=False, analysers=[analyser])
    assert len(started) == 1 and started[0].returncode is not None
    assert not spool()._closer.alive  # closed by the ingest, not left for the garbage collector
    gone = weakref.ref(analyser)
    del analyser
    gc.collect()
    assert gone() is None and spool() is None  # nothing (no finalizer, no thread) keeps them for the process's life


def test_a_copying_thread_waits_for_a_stopped_child_only_once_the_queue_is_full(monkeypatch):
    """Frames queue beyond the pipe, so a child behind does not hold the copy; past QUEUE_BYTES the copy waits
    (memory stays bounded), and goes on when the child does."""
    monkeypatch.setattr(parsing, "QUEUE_BYTES", 4 * 1024 * 1024)
    analyser = MetadataAnalyser()
    _send(analyser, "data/a/0.xml", _article(0))
    child = analyser.parser._child
    os.kill(child.process.pid, signal.SIGSTOP)
    try:
        body = PARAGRAPH * 30  # some 90 KB an article
        first = threading.Thread(target=lambda: [_send(analyser, f"data/a/{n}.xml", _article(n, body))
                                                 for n in range(1, 31)])  # ~2.7 MB: more than the pipe holds
        first.start()
        first.join(60)
        assert not first.is_alive(), "a copying thread waited for a stopped child with room in the queue"
        second = threading.Thread(target=lambda: [_send(analyser, f"data/b/{n}.xml", _article(100 + n, body))
                                                  for n in range(1, 61)])  # ~5.4 MB more: past the queue
        second.start()
        _until(lambda: child.feeder._size >= parsing.QUEUE_BYTES, "the queue never filled")
        assert second.is_alive() and child.feeder._size < parsing.QUEUE_BYTES + 2 * len(_article(1, body))
    finally:
        os.kill(child.process.pid, signal.SIGCONT)
    second.join(60)
    assert not second.is_alive()
    records, findings = _finish(analyser)
    assert len(records) == 91 and list(findings) == []


def test_the_child_is_a_batch_process():
    analyser = MetadataAnalyser()
    _send(analyser, "data/a/1.xml", _article(1))
    _until(lambda: analyser._spool.count == 1, "the file was never answered")
    assert os.sched_getscheduler(analyser.parser._child.process.pid) == os.SCHED_BATCH
    _finish(analyser)


def _frames(file_id: int, path: str, data: bytes) -> bytes:
    name = path.encode()
    return b"".join([parsing._TO_CHILD.pack(parsing.OPEN, file_id, len(name)), name,
                     parsing._TO_CHILD.pack(parsing.DATA, file_id, len(data)), data,
                     parsing._TO_CHILD.pack(parsing.CLOSE, file_id, 8), struct.pack("<Q", len(data))])


def test_a_file_read_is_answered_before_the_next_frame_is_read():
    """The child's answers are buffered, but a file's answer goes out when the file ends: a child that dies
    later, its input not yet run dry, has lost no file it had finished."""
    import io

    second = _frames(2, "data/a/2.xml", _article(2))
    stream = _frames(1, "data/a/1.xml", _article(1)) + second + parsing._TO_CHILD.pack(parsing.END, 0, 0)
    raw = io.BytesIO()
    answers = io.BufferedWriter(raw, parsing.ANSWER_BYTES)
    answered_at: dict[int, int] = {}  # where in the input each read started -> answer bytes written by then

    class Source:  # the whole input at hand: it never runs dry before END
        at = 0

        def read(self, size: int) -> bytes:
            answered_at[self.at] = len(raw.getvalue())
            data = stream[self.at:self.at + size]
            self.at += size
            return data

    parsing.serve(Source(), answers)
    answers.flush()
    assert answered_at[len(stream) - len(second) - parsing._TO_CHILD.size] > 0  # file 1 answered before file 2
    kinds = []
    out = raw.getvalue()
    while out:
        kind, file_id, records, notes = parsing._FROM_CHILD.unpack_from(out)
        kinds.append((kind, file_id))
        out = out[parsing._FROM_CHILD.size + records + notes:]
    assert kinds == [(parsing.RESULT, 1), (parsing.RESULT, 2), (parsing.DONE, kinds[-1][1])]


def test_a_child_killed_on_its_feeding_thread_keeps_the_pipe_open_until_that_thread_is_done(monkeypatch):
    """A finalizer may run on any thread, the feeding one included: killing the child there must not close the
    pipe that thread is about to write to (its descriptor could be another file's by then)."""
    import stat

    analyser = MetadataAnalyser()
    _send(analyser, "data/a/1.xml", _article(1))
    _until(lambda: analyser._spool.count == 1, "the first file was never answered")
    child = analyser.parser._child
    write = parsing._write_all
    checked: list[bool] = []

    def killed_here(fd, parts):
        if not checked:
            child.kill()  # as a finalizer run on this thread would
            checked.append(stat.S_ISFIFO(os.fstat(fd).st_mode))  # still the pipe (raises if it was closed)
        return write(fd, parts)

    monkeypatch.setattr(parsing, "_write_all", killed_here)
    _send(analyser, "data/a/2.xml", _article(2))
    _until(lambda: checked, "the feeding thread never wrote")
    _until(lambda: child.process.stdin.closed, "the feeding thread never closed the pipe")
    records, findings = _finish(analyser)
    assert checked == [True]
    assert [r.doi for r in records] == ["10.7498/aps.68.20190001"]
    assert [(f.code, f.path) for f in findings] == [("MD018", "data/a/2.xml")]


def test_a_child_without_a_thread_is_ended_and_its_file_noted(monkeypatch):
    started = []
    popen = parsing.subprocess.Popen

    def spy(*args, **kwargs):
        started.append(popen(*args, **kwargs))
        return started[-1]

    def no_thread(self, pipe):
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(parsing.subprocess, "Popen", spy)
    monkeypatch.setattr(parsing._Feeder, "__init__", no_thread)
    analyser = MetadataAnalyser()
    _send(analyser, "data/a/1.xml", _article(1))
    records, findings = _finish(analyser)
    assert records == [] and [(f.code, f.path) for f in findings] == [("MD018", "data/a/1.xml")]
    assert "no thread" in findings[0].message
    assert started and all(p.returncode is not None and p.stdin.closed and p.stdout.closed for p in started)


def _pipe_holds(fd: int) -> int:
    """Bytes waiting in a pipe (FIONREAD)."""
    import array
    import fcntl
    import termios

    held = array.array("i", [0])
    fcntl.ioctl(fd, termios.FIONREAD, held)
    return held[0]


def test_the_answers_of_many_files_are_read_at_once(monkeypatch):
    """The answering thread lets answers gather before each read (it takes the interpreter lock from the copying
    threads once for many files, not once a file)."""
    monkeypatch.setattr(parsing, "ANSWER_WAIT", 0.5)
    reads = []
    real_read = os.read

    def read(fd, size):
        if threading.current_thread().name == "preserve-metadata-answers":
            reads.append(fd)
        return real_read(fd, size)

    monkeypatch.setattr(parsing.os, "read", read)
    analyser = MetadataAnalyser()
    for n in range(40):
        _send(analyser, f"data/a/{n}.xml", _article(n, body=""))
    records, findings = _finish(analyser)
    assert [r.doi for r in records] == [f"10.7498/aps.68.2019{n:04d}" for n in range(40)] and list(findings) == []
    assert 1 <= len(reads) <= 8  # (one a file before: 40 and more)


def _waiting_for_input(child) -> bool:
    """Whether the child has read and answered every frame sent: nothing queued or in its input pipe (all sent
    already), and then the child asleep (blocked in its read: it flushes its answers first, and its answer pipe has
    room).  In that order: asleep first, it may have been waiting for the frames the pipe then held."""
    if child.feeder._size or _pipe_holds(child.process.stdin.fileno()):
        return False
    with open(f"/proc/{child.process.pid}/stat", encoding="ascii") as stat:
        return stat.read().rpartition(")")[2].split()[0] == "S"


def test_answers_waiting_in_the_pipe_outlive_the_child(monkeypatch):
    """A child killed after answering, while its answers wait in the pipe for the answering thread: no file of
    them is lost (each answer is written as its file ends, not kept in the child)."""
    gate = threading.Event()
    monkeypatch.setattr(parsing, "time", type("Clock", (), {"sleep": staticmethod(lambda seconds: gate.wait())}))
    analyser = MetadataAnalyser()
    for n in range(6):
        _send(analyser, f"data/a/{n}.xml", _article(n, body=""))
    child = analyser.parser._child
    _until(lambda: _waiting_for_input(child), "the child never read its input")
    assert _pipe_holds(child.process.stdout.fileno()) > 0 and analyser._spool.count == 0  # nothing read yet
    os.kill(child.process.pid, signal.SIGKILL)
    child.process.wait()
    gate.set()  # the answering thread reads what the dead child wrote
    records, findings = _finish(analyser)
    assert [r.doi for r in records] == [f"10.7498/aps.68.2019{n:04d}" for n in range(6)] and list(findings) == []


def test_answers_that_come_fast_are_not_waited_for(monkeypatch):
    """The answering thread waits for answers to gather only after a read that found the pipe under a quarter
    full: a child sending records faster than that (a large ONIX message) is read at its own pace."""
    slept = []
    monkeypatch.setattr(parsing, "time", type("Clock", (), {"sleep": staticmethod(slept.append)}))
    analyser = MetadataAnalyser()
    _send(analyser, "data/a/0.xml", _article(0, body=""))
    child = analyser.parser._child
    records, findings = _finish(analyser)  # (its answering thread is done: it sleeps no more here)
    assert [r.doi for r in records] == ["10.7498/aps.68.20190000"] and list(findings) == []
    assert child._answer_pipe >= 64 * 1024  # the pipe's size, as the kernel gave it
    before = len(slept)
    for last in (child._answer_pipe, child._answer_pipe // 4, child._answer_pipe // 4 - 1, 0):
        child._gather(last)
    assert slept[before:] == [parsing.ANSWER_WAIT, parsing.ANSWER_WAIT]  # after the two small reads only


def test_a_pipe_that_cannot_be_enlarged_is_measured_as_it_is(monkeypatch):
    """Past the user's pipe quota Linux refuses a larger pipe: the answering thread then judges its reads against the
    pipe it has, not the one it asked for."""
    import fcntl

    real = fcntl.fcntl

    def refuse(fd, command, *args):
        if command == fcntl.F_SETPIPE_SZ:
            raise PermissionError(1, "Operation not permitted")
        return real(fd, command, *args)

    read, write = os.pipe()
    try:
        assert parsing._enlarge(read) == parsing.PIPE_BYTES
        r2, w2 = os.pipe()
        try:
            monkeypatch.setattr(fcntl, "fcntl", refuse)
            assert parsing._enlarge(r2) == real(r2, fcntl.F_GETPIPE_SZ) < parsing.PIPE_BYTES
        finally:
            os.close(r2)
            os.close(w2)
    finally:
        os.close(read)
        os.close(write)
