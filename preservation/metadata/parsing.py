"""Metadata XML parsed in a process of its own, fed the bytes the ingest copies, over a pipe.

Parsing a JATS front matter holds the interpreter lock for some 300 µs,
on the thread that copies the file.  The other copying threads wait for
the lock each time a system call or a digest hands it back, and the ingest
slows by more than the parsing costs.  So the parsing (the same
:class:`~preservation.metadata.xmlstream.XmlObserver` and vocabulary
readers) runs in a child process, ``python -m preservation.metadata.parsing``:

* the copying thread queues each chunk of an XML file for the child as it
  passes (a copy of it; the file is still read once, by the copy), in
  frames ``kind, file id, length`` + payload; a feeding thread writes them
  to the child's stdin (``os.writev`` releases the lock), many frames a
  write: the child wakes for a batch of files, not for each;
* the child runs as a batch process (``SCHED_BATCH``): it gets its fair
  share of the cores, but does not preempt a copying thread when frames
  wake it, and works through them in runs, with its caches warm (on the
  bench, its CPU time fell from 4.6-5.2 to 3.0-3.8 s for 10,000 articles
  once queued; a copying thread no longer waits on a full pipe);
* the child sends a file's records (the spool's JSON lines) as it reads
  them, a frame each :data:`RECORDS_BATCH` bytes of them, then the file's
  notes when it closes; a thread of the ingest writes each frame into the
  spool (which spills to disk), so neither process holds a file's records:
  an ONIX message of 600,000 products is read one product at a time;
* the child answers each file as it ends (a write of its own, so that a
  child that dies later loses only the files it had not finished: its
  answers wait in the pipe); the records of a file being read wait in a
  buffer until it fills, the file ends or the child's input runs dry; the
  answering thread lets answers gather :data:`ANSWER_WAIT` between reads
  (unless they come fast), many files a read;
* the child says when it needs no more of a file (malformed, entities,
  front matter over its limit), and the copying thread stops sending it;
* memory stays bounded: at most :data:`QUEUE_BYTES` are queued (a writer
  waits past them) and the pipe holds :data:`PIPE_BYTES`; the child parses
  as before (elements discarded as read), under an address-space limit of
  :data:`MEMORY_LIMIT`;
* a child that dies (killed, out of memory) costs the files it had not
  answered an ``MD018`` finding each (the records it had sent of such a
  file are kept, as a file malformed half-way keeps those before the fault);
  the next file starts a new child (at most :data:`RESTARTS` times an
  ingest).  The delivery is preserved all the same: nothing here ever
  raises into the copy;
* the child is started isolated (``python -I``, in ``/``, its module path
  the parent's own): nothing in the worker's working directory or
  environment is imported by it.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import threading
import time
from collections import deque
from contextlib import suppress
from typing import BinaryIO, Callable

from preservation import codes
from preservation.metadata import dc, jats, onix
from preservation.metadata.records import Note
from preservation.metadata.xmlstream import XmlObserver

READERS = {jats.ROOT: jats.JatsReader, **{root: onix.OnixReader for root in onix.ROOTS}, "": dc.DublinCoreReader}
"""The reader for each root element; any other root is tried as Dublin Core, which may find nothing."""
TAGS = (*jats.TAGS, *onix.TAGS, *dc.TAGS)

PIPE_BYTES = 1024 * 1024
"""The pipe to the child holds this much (Linux ``F_SETPIPE_SZ``; the system's default where refused)."""
MEMORY_LIMIT = 1024 * 1024 * 1024
"""The child's address space: a file that would need more kills the child (MD018), never the ingest."""
RESTARTS = 3
"""Children an ingest starts after the first died; later files get MD018 without being parsed."""
QUEUE_BYTES = 32 * 1024 * 1024
"""Frames queued for the child beyond its pipe: a copying thread waits for the child only past them."""
FEED_BATCH = 512 * 1024
FEED_WAIT = 0.01
"""The feeding thread writes what is queued once :data:`FEED_BATCH` bytes are, or this many seconds after the
first frame: the child is woken for many files at once, not for each."""
_FRAME_COST = 64
"""What a queued frame costs beyond its bytes (the object and its place in the queue), counted against the limit."""
INPUT_BYTES = 1024 * 1024
"""The child reads its input, and the parent the child's answers, this much at a time (many frames a read)."""
ANSWER_WAIT = 0.01
"""The parent's answering thread lets the child's answers gather this long before a read, unless its last read
found the pipe a quarter full or more (answers coming faster than it wakes): it wakes (and takes the interpreter
lock from the copying threads) for many files at once, not for each.  The child still writes each file's answer as
the file ends, so a child that dies later loses none of them: they wait in the pipe."""
ANSWER_BYTES = 256 * 1024
"""The records of a file being read wait in a buffer of this size until it fills, the file ends (its answer is
written at once) or the child's input runs dry (:class:`_Input`)."""
RECORDS_BATCH = 64 * 1024
"""The child sends a file's records each time this many bytes of them are read (and the rest when it closes)."""

_TO_CHILD = struct.Struct("<BII")  # kind, file id, payload length
_FROM_CHILD = struct.Struct("<BIII")  # kind, file id, length of the records, length of the notes
OPEN, DATA, CLOSE, END = 1, 2, 3, 4
RESULT, STOPPED, DONE, RECORDS = 1, 2, 3, 4
_BOOTSTRAP = ("import json, sys; sys.path[:] = json.loads(sys.argv[1]); "
              "from preservation.metadata.parsing import _main; _main()")

Lines = Callable[[str, int], None]
"""Where answered records go: their JSON lines and how many."""
Notes = Callable[[str, list[Note]], None]


def _write_all(fd: int, parts: list[bytes | memoryview]) -> None:
    """Write every byte of ``parts`` (a pipe may take fewer than asked when a signal comes)."""
    written = os.writev(fd, parts)
    if written < sum(len(p) for p in parts):
        rest = b"".join(parts)[written:]
        while rest:
            rest = rest[os.write(fd, rest):]


class ParserProcess:
    """The parsing child of one ingest, started with the first XML file (see the module's documentation)."""

    def __init__(self, lines: Lines, notes: Notes) -> None:
        self._lines = lines
        self._notes = notes
        self._lock = threading.Lock()
        self._child: _Child | None = None
        self._dead: list[_Child] = []  # children that died: their readers may still be noting lost files
        self._deaths = 0
        self._next_id = 0
        self.peak_rss: int = 0
        """The largest resident size a child reported at its end, in bytes (for tests and benches)."""

    def observer(self, path: str) -> "_Proxy":
        with self._lock:
            self._next_id += 1
            file_id = self._next_id
            child = self._child
            if child is not None and not child.expect(file_id, path):
                self._deaths += 1
                self._dead.append(child)
                child = self._child = None
            why = "the metadata parser failed too often in this ingest"
            if child is None and self._deaths <= RESTARTS:
                try:
                    child = self._child = _Child(self)
                    child.expect(file_id, path)
                except OSError as e:  # no process or thread to be had (too many open files, no memory): as if it died
                    self._deaths += 1
                    why = f"the metadata parser process could not start ({type(e).__name__}: {e})"
        if child is None:
            self._notes(path, [_lost(why)])
        return _Proxy(child, file_id, path)

    def finish(self) -> None:
        """Wait until the child has answered every file it was sent (or died), and let it end."""
        with self._lock:
            child, self._child = self._child, None
            dead, self._dead = self._dead, []
        if child is not None:
            child.end()
        for child in dead:
            child.kill()  # dead already: its reader has noted its lost files once this returns

    def close(self) -> None:
        """End the child without waiting for its answers (an ingest that failed before registering)."""
        with self._lock:
            children = [self._child, *self._dead] if self._child is not None else self._dead
            self._child, self._dead = None, []
        for child in children:
            child.kill()


def _enlarge(fd: int) -> int:
    """Ask for a pipe of :data:`PIPE_BYTES` (Linux ``F_SETPIPE_SZ``; refused past the user's pipe quota, or
    elsewhere); the bytes the pipe holds (Linux's default of 64 KiB where that cannot be asked)."""
    try:
        import fcntl
    except ImportError:
        return 64 * 1024
    with suppress(OSError, AttributeError):
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    with suppress(OSError, AttributeError):
        return fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ)
    return 64 * 1024


def _module_path() -> list[str]:
    """The child's module path: the directory this package is imported from, then this process's own
    (absolute; never the working directory, which ``""`` would be)."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return [root, *(os.path.abspath(p) for p in sys.path if p)]


def _lost(why: str, read: int = 0) -> Note:
    if read:
        return (codes.MD_PARSER_LOST, f"{why}: {read} item(s) read from this file before it stopped, none "
                "after (the file is preserved as it is)", {"read": read})
    return (codes.MD_PARSER_LOST, f"{why}: no item read from this file (it is preserved as it is)", {})


class _Feeder:
    """Frames queued for the child and written to its pipe by a thread of their own, so that a copying thread
    waits for the child only when :data:`QUEUE_BYTES` are queued (a child behind catches up on idle time).

    The thread owns the pipe: it alone writes to it, and it closes it when it ends (the child gone, or
    :meth:`close`), so the descriptor is never closed under a write, whichever thread asks to stop.
    """

    def __init__(self, pipe: BinaryIO) -> None:
        self._pipe = pipe
        self._fd = pipe.fileno()
        self._queue: deque[bytes] = deque()
        self._size = 0
        self._cond = threading.Condition()
        self._closed = False
        self.failed = False
        self._thread = threading.Thread(target=self._run, name="preserve-metadata-feeder", daemon=True)
        self._thread.start()

    def put(self, frame: bytes) -> bool:
        with self._cond:
            while self._size >= QUEUE_BYTES and not (self.failed or self._closed):
                self._cond.wait()
            if self.failed or self._closed:
                return False
            first = not self._queue
            self._queue.append(frame)
            self._size += len(frame) + _FRAME_COST
            if first or self._size >= FEED_BATCH:  # the feeder wakes for a first frame, then for a batch
                self._cond.notify_all()
            return True

    def close(self) -> None:
        """Write what is queued (unless the child is gone), then end the thread, which closes the pipe (at
        once when called on that thread: a finalizer may run there; the thread closes it when it ends)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join()

    def _run(self) -> None:
        try:
            with suppress(OSError):  # the child is gone (EPIPE): what is queued is dropped, its reader notes the loss
                self._write_until_closed()
        finally:  # (any other error too: the writers are let go, never left waiting on a queue nobody empties)
            with self._cond:
                self.failed = True
                self._queue.clear()
                self._size = 0
                self._cond.notify_all()
            with suppress(OSError):
                self._pipe.close()

    def _write_until_closed(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return
                if self._size < FEED_BATCH and not self._closed:
                    self._cond.wait(FEED_WAIT)  # more frames, in one write (a batch's worth wakes it sooner)
                batch = [self._queue.popleft() for _ in range(min(len(self._queue), 512))]
            _write_all(self._fd, batch)
            with self._cond:
                self._size -= sum(len(frame) + _FRAME_COST for frame in batch)
                self._cond.notify_all()


class _Child:
    """One child process, the thread that feeds it and the thread that reads its answers."""

    def __init__(self, owner: ParserProcess) -> None:
        self.owner = owner
        # isolated (-I: no working directory, PYTHONPATH or user site on its path), in "/", like the validation pool
        self.process = subprocess.Popen([sys.executable, "-I", "-c", _BOOTSTRAP, json.dumps(_module_path())],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0, close_fds=True,
                                        cwd="/")
        _enlarge(self.process.stdin.fileno())
        self._answer_pipe = _enlarge(self.process.stdout.fileno())  # the answers gather in it (ANSWER_WAIT)
        self.dead = False
        self.pending: dict[int, str] = {}  # files sent and not answered: id -> path
        self.read: dict[int, int] = {}  # records received of the files pending: id -> count
        self.stopped: set[int] = set()  # files the child needs no more of
        self._state = threading.Lock()
        self._reader = threading.Thread(target=self._read, name="preserve-metadata-answers", daemon=True)
        try:
            self.feeder = _Feeder(self.process.stdin)
            self._reader.start()
        except RuntimeError as e:  # no thread to be had: the child goes, and the file is noted as for a death
            self.process.kill()
            if hasattr(self, "feeder"):
                self.feeder.close()  # (it closes the pipe)
            self.process.wait()
            for pipe in (self.process.stdin, self.process.stdout):
                with suppress(OSError):
                    pipe.close()
            raise OSError(f"no thread for the metadata parser ({e})") from e

    def expect(self, file_id: int, path: str) -> bool:
        with self._state:
            if self.dead or self.process.poll() is not None:  # (its reader may not have seen the end yet)
                return False
            self.pending[file_id] = path
            return True

    def send(self, parts: list[bytes | memoryview]) -> bool:
        """Queue a frame (a copy: a chunk's buffer is reused); False once the child is gone (its reader notes
        the files it had not answered)."""
        return not self.dead and self.feeder.put(b"".join(parts))

    def end(self) -> None:
        self.send([_TO_CHILD.pack(END, 0, 0)])
        self.feeder.close()  # END written, then the pipe closed by the feeding thread
        self._reader.join()
        self.process.wait()

    def kill(self) -> None:
        with suppress(OSError):
            self.process.kill()
        self.feeder.close()  # its writes fail now; it closes the pipe as it ends
        if threading.current_thread() is not self._reader:  # (an analyser may be dropped by a note's call)
            self._reader.join()
        self.process.wait()

    def _gather(self, last: int) -> None:
        """Before a read of the answers: let them gather (:data:`ANSWER_WAIT`), unless the last read (``last``
        bytes) found the pipe a quarter full or more: answers that come faster than that are not waited for."""
        if last < self._answer_pipe // 4:
            time.sleep(ANSWER_WAIT)

    def _read(self) -> None:
        """The answers, until the child ends: records to the spool, notes to the analyser."""
        out = _Input(self.process.stdout.fileno(), self._gather)  # many answers a read
        finished = False
        try:
            while True:
                header = out.read(_FROM_CHILD.size)
                if header is None:
                    break
                kind, file_id, records_size, notes_size = _FROM_CHILD.unpack(header)
                body = out.read(records_size + notes_size) if records_size + notes_size else b""
                if body is None:
                    break
                if kind == STOPPED:
                    self.stopped.add(file_id)
                elif kind == DONE:
                    self.owner.peak_rss = max(self.owner.peak_rss, file_id * 1024)
                    finished = True
                elif kind == RECORDS:  # some of an open file's records: into the spool now (one batch in memory)
                    with self._state:
                        if file_id not in self.pending:
                            continue
                        lines = body[:records_size].decode("utf-8")
                        count = lines.count("\n")
                        self.read[file_id] = self.read.get(file_id, 0) + count
                    self.owner._lines(lines, count)
                elif kind == RESULT:
                    with self._state:
                        path = self.pending.pop(file_id, None)
                        self.read.pop(file_id, None)
                    if path is None:
                        continue
                    if records_size:
                        lines = body[:records_size].decode("utf-8")
                        self.owner._lines(lines, lines.count("\n"))
                    if notes_size:
                        notes = [tuple(n) for n in json.loads(body[records_size:])]
                        self.owner._notes(path, notes)
        except (OSError, ValueError):
            pass  # a broken answer is the child's death
        finally:
            with self._state:
                self.dead = True
                lost, self.pending = self.pending, {}
                read, self.read = self.read, {}
            with suppress(OSError):
                self.process.stdout.close()
            if not finished or lost:
                why = f"the metadata parser process stopped ({self._exit()})"
                for file_id, path in lost.items():
                    self.owner._notes(path, [_lost(why, read.get(file_id, 0))])

    def _exit(self) -> str:
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return "did not answer"
        return f"killed by signal {-code}" if code < 0 else f"exit status {code}"


class _Proxy:
    """The observer of one XML file in the ingest: its bytes go to the child; never raises."""

    __slots__ = ("_child", "_id", "_path", "_opened")

    def __init__(self, child: _Child | None, file_id: int, path: str) -> None:
        self._child = child
        self._id = file_id
        self._path = path
        self._opened = False

    def feed(self, chunk: bytes | memoryview) -> None:
        child = self._child
        if child is None or self._id in child.stopped:
            return
        parts: list[bytes | memoryview] = [_TO_CHILD.pack(DATA, self._id, len(chunk)), chunk]
        if not self._opened:
            name = self._path.encode("utf-8", "surrogateescape")
            parts[:0] = [_TO_CHILD.pack(OPEN, self._id, len(name)), name]
            self._opened = True
        if not child.send(parts):
            self._child = None

    def close(self, size: int) -> None:
        child = self._child
        if child is None:
            return
        parts: list[bytes | memoryview] = [_TO_CHILD.pack(CLOSE, self._id, 8), struct.pack("<Q", size)]
        if not self._opened:  # an empty file
            name = self._path.encode("utf-8", "surrogateescape")
            parts[:0] = [_TO_CHILD.pack(OPEN, self._id, len(name)), name]
        child.send(parts)
        self._child = None


# --- the child ------------------------------------------------------------------------------------------


class _Records:
    """A file's records in the child, sent each :data:`RECORDS_BATCH` bytes of them (never the whole file's)."""

    __slots__ = ("_answers", "_id", "_lines", "_size")

    def __init__(self, answers: BinaryIO, file_id: int) -> None:
        self._answers = answers
        self._id = file_id
        self._lines: list[str] = []
        self._size = 0

    def add(self, records: list) -> None:
        for record in records:
            line = record.to_json() + "\n"
            self._lines.append(line)
            self._size += len(line)
        if self._size >= RECORDS_BATCH:
            _answer(self._answers, RECORDS, self._id, self.take())

    def take(self) -> bytes:
        lines, self._lines, self._size = self._lines, [], 0
        return "".join(lines).encode("utf-8")


class _Input:
    """Frames from a pipe, read as they come, many a read; ``before_read(last)`` is called before each read, which
    may wait, with the bytes the last read gave: the child sends what is buffered of its answers (the records of a
    file still being read), the parent's answering thread lets answers gather (:data:`ANSWER_WAIT`).
    """

    __slots__ = ("_fd", "_before_read", "_data", "_at", "_last")

    def __init__(self, fd: int, before_read: Callable[[int], object]) -> None:
        self._fd = fd
        self._before_read = before_read
        self._data = b""
        self._at = 0
        self._last = 0

    def read(self, size: int) -> bytes | None:
        """``size`` bytes, or None when the input ends before them."""
        while len(self._data) - self._at < size:
            self._before_read(self._last)
            more = os.read(self._fd, max(INPUT_BYTES, size - (len(self._data) - self._at)))
            self._last = len(more)
            if not more:
                return None
            self._data = self._data[self._at:] + more
            self._at = 0
        data = self._data[self._at:self._at + size]
        self._at += size
        return data


def serve(source: _Input, answers: BinaryIO) -> None:
    """Read frames from ``source`` until END (or its end), answer each file on ``answers`` (flushed at END)."""
    files: dict[int, tuple[XmlObserver, _Records, list[Note]]] = {}
    while True:
        header = source.read(_TO_CHILD.size)
        if header is None:
            return
        kind, file_id, size = _TO_CHILD.unpack(header)
        payload = source.read(size) if size else b""
        if payload is None:
            return
        if kind == OPEN:
            found = _Records(answers, file_id)
            noted: list[Note] = []
            path = payload.decode("utf-8", "surrogateescape")
            observer = XmlObserver(path, READERS, TAGS, found.add,
                                   lambda _path, notes, noted=noted: noted.extend(notes))
            files[file_id] = (observer, found, noted)
        elif kind == DATA and file_id in files:
            observer = files[file_id][0]
            if not observer.stopped:
                observer.feed(payload)
                if observer.stopped:
                    _answer(answers, STOPPED, file_id)
                    answers.flush()  # at once: the copying thread sends no more of it
        elif kind == CLOSE and file_id in files:
            observer, found, noted = files.pop(file_id)
            observer.close(struct.unpack("<Q", payload)[0])
            _answer(answers, RESULT, file_id, found.take(),
                    json.dumps(noted, ensure_ascii=False).encode("utf-8") if noted else b"")
            answers.flush()  # a file read is answered now: a child that dies later loses only files it had not
        elif kind == END:
            _answer(answers, DONE, _peak_kib())
            answers.flush()
            return


def _peak_kib() -> int:
    """This process's peak resident size in KiB (``VmHWM``: ``ru_maxrss`` would count the parent's before exec)."""
    with suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    return 0


def _answer(answers: BinaryIO, kind: int, file_id: int, records: bytes = b"", notes: bytes = b"") -> None:
    answers.write(_FROM_CHILD.pack(kind, file_id, len(records), len(notes)) + records + notes)


def _main() -> None:
    import resource
    import signal

    with suppress(AttributeError, OSError):  # a batch process: it does not preempt the copying threads on waking
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # an interrupted ingest ends the child by closing its stdin
    with suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    answers = os.fdopen(sys.stdout.fileno(), "wb", buffering=ANSWER_BYTES)
    try:
        serve(_Input(sys.stdin.fileno(), lambda _last: answers.flush()), answers)
    finally:  # (a MemoryError under the address-space limit too: what was read is answered)
        answers.flush()


if __name__ == "__main__":
    _main()
