"""Format identification from a file's first and last bytes, with FIDO's PRONOM signatures.

`opf-fido <https://github.com/openpreserve/fido>`_ ships PRONOM's binary
and container signatures and the rules that rank competing matches.  Its
``Fido.match_formats`` tries all ~1,900 signatures against a file through
ElementTree look-ups, several milliseconds a file: far too slow for ingest,
where a file of 4 KiB costs well under a millisecond to bag.  This module
keeps FIDO's signatures, its priorities and its decision order (signature,
then container, then extension) and only changes how the signatures are
tried, from a table planned once per signature install and kept in the
user's cache (:mod:`preservation.formats.signature_table`):

- a signature whose ``BOF`` pattern needs fixed bytes at a fixed offset
  (``%PDF`` at 0) is tried only when the file's head has them there: one
  dictionary look-up per (offset, length) for all such signatures;
- a signature with no such key waits for a string it needs anywhere in the
  head, and all of those are looked for in one Aho-Corasick scan;
- the rest (a dozen) are tried on every file, each expression compiled
  the first time it runs.

Each condition is necessary for a match, so the plan makes identification
faster, never different: ``tests/formats/test_identify.py`` checks the
result against FIDO's own ``match_formats``.

What FIDO reads of a file is its first and its last ``bufsize`` bytes
(128 KiB): :class:`HeadTail` keeps exactly those from the chunks the
bagging pass copies, so no file is read twice.  Zip-based containers
(EPUB, OOXML, OpenDocument) are looked into through the same bytes: the
zip's central directory is in the tail and the small member a container
signature reads (``mimetype``, ``[Content_Types].xml``) is usually at the
very start; when it is not, the file keeps its signature match and the
record says the container was not decided (``container: undecided``).
"""

from __future__ import annotations

import io
import os
import re
import threading
import zipfile
from dataclasses import dataclass
from typing import Any, Iterable

import ahocorasick_rs
import olefile
from fido import CONFIG_DIR
from fido import __version__ as FIDO_VERSION

from preservation import collector
from preservation.formats import signature_table

TOOL = "fido"
BUFSIZE = 128 * 1024
"""How many bytes of a file's head and of its tail identification sees: FIDO's own ``bufsize``."""
MAX_CONTAINER_MEMBER = 1024 * 1024
"""A container signature reads at most this much of a zip member (declared size); a bigger one is not opened."""

SIGNATURE = "signature"
CONTAINER = "container"
EXTENSION = "extension"
NONE = "none"
BASES = (SIGNATURE, CONTAINER, EXTENSION, NONE)

_BOF, _EOF, _VAR, _IFB = "BOF", "EOF", "VAR", "IFB"
_CACHED = 10_000  # distinct extensions, and distinct answers, remembered at most
_SCANNED_PREFIX = 8  # how much of each string a signature waits for the scan of the head looks for
QUICK_LOOK_BELOW = 16 * 1024
"""A head up to this long is first scanned for any string a signature waits for, and only then for all of them."""


@dataclass(frozen=True)
class Identification:
    """What one file is, as its bytes (or its name) say."""

    puid: str | None
    mime: str
    format_name: str
    format_version: str
    basis: str
    """signature | container | extension | none"""
    alternatives: tuple[str, ...] = ()
    """Other PUIDs that matched as well as ``puid``."""
    extension_mismatch: bool = False
    """The bytes were identified, and the file's extension is not one the format uses."""
    notes: tuple[str, ...] = ()

    @property
    def identified(self) -> bool:
        return self.basis in (SIGNATURE, CONTAINER)

    def details(self) -> dict[str, Any]:
        """The JSON-safe extras a catalog row keeps beside its columns."""
        out: dict[str, Any] = {}
        if self.alternatives:
            out["alternatives"] = list(self.alternatives)
        if self.extension_mismatch:
            out["extension_mismatch"] = True
        if self.notes:
            out["notes"] = list(self.notes)
        return out


UNIDENTIFIED = Identification(None, "", "", "", NONE)


@dataclass(frozen=True)
class _Format:
    puid: str
    mime: str
    name: str
    version: str
    extensions: tuple[str, ...]
    container: str  # "zip", "tar", "ole" or ""


class _Signature:
    """One signature: its patterns (compiled when first tried) and the substrings they cannot match without."""

    __slots__ = ("format_index", "name", "_sources", "_patterns", "needs")

    def __init__(self, planned: dict[str, Any]) -> None:
        self.format_index: int = planned["format"]
        self.name: str = planned["name"]
        self._sources = tuple((position, _bytes(source), reach) for position, source, reach in planned["patterns"])
        self._patterns: list[tuple[str, re.Pattern[bytes], int | None]] | None = None
        self.needs = tuple((in_tail, _bytes(needed), reach) for in_tail, needed, reach in planned["needs"])
        """Bytes each pattern cannot match without: (in the tail?, the bytes, how far into the buffer)."""

    @property
    def patterns(self) -> list[tuple[str, re.Pattern[bytes], int | None]]:
        """(position, expression, where an ``EOF`` search may start from the end: None for anywhere)."""
        patterns = self._patterns
        if patterns is None:  # two threads may both compile: the same result, whichever is kept
            patterns = self._patterns = [(position, re.compile(source), reach)
                                         for position, source, reach in self._sources]
        return patterns

    def matches(self, bof: bytes, eof: bytes) -> bool:
        for in_tail, needed, reach in self.needs:  # a substring search is far cheaper than the expression
            if in_tail:
                if eof.find(needed, 0 if reach is None else max(0, len(eof) - reach)) < 0:
                    return False
            elif bof.find(needed, 0, len(bof) if reach is None else reach) < 0:
                return False
        for position, expression, last in self.patterns:
            if position == _BOF:
                if expression.match(bof) is None:
                    return False
            elif position == _EOF:
                start = 0 if last is None else max(0, len(eof) - last)
                if expression.search(eof, start) is None:
                    return False
            elif expression.search(bof) is None:  # VAR, IFB: anywhere in the head, as FIDO does
                return False
        return True


def _bytes(text: str) -> bytes:
    return text.encode("latin-1")


class Signatures:
    """FIDO's installed signature files, planned for fast matching; one per process (:func:`signatures`).

    Built from the table :func:`signature_table.load` keeps in the user's
    cache: a process loads it in milliseconds and compiles only the
    expressions of the signatures that some file's bytes make it try.

    What it keeps is made of tuples of strings, bytes and numbers where it
    can (rather than lists and sets), which the garbage collector stops
    tracking: a few thousand objects instead of some 20,000, which would
    otherwise bring on a full collection of the ingest's process (tenths of
    a second each) and make every later one longer.
    """

    def __init__(self, conf_dir: str = CONFIG_DIR, table: dict[str, Any] | None = None) -> None:
        if table is None:
            table = signature_table.load(conf_dir)
        self.conf_dir = conf_dir
        self.tool = TOOL
        self.tool_version = FIDO_VERSION
        self.signature_version: str = table["signature_version"]
        """Which PRONOM signature file (and container signature file) said what a file is."""
        self._formats = tuple(_Format(puid=puid, mime=mime, name=name, version=version,
                                      extensions=tuple(sorted(set(extensions))), container=container)
                              for puid, mime, name, version, extensions, container in table["formats"])
        self._index_of = {f.puid: i for i, f in enumerate(self._formats)}
        # (i, j) when format i has priority over format j (FIDO's has_priority_over)
        self._outranks: frozenset[tuple[int, int]] = frozenset(
            (i, j) for i, over in enumerate(table["priority"]) for j in over)
        self._signatures = tuple(_Signature(planned) for planned in table["signatures"])
        by_key: dict[int, dict[int, dict[int, dict[bytes, list[int]]]]] = {}  # offset, first byte, length, key
        waiting: list[tuple[int, list[bytes], int | None]] = []
        unplanned: list[int] = []
        when_empty: list[int] = []
        for si, planned in enumerate(table["signatures"]):
            if planned["empty"]:
                when_empty.append(si)
            elif planned["keys"]:
                offsets, keys = planned["keys"]
                for offset in offsets:
                    for key in map(_bytes, keys):
                        (by_key.setdefault(offset, {}).setdefault(key[0], {}).setdefault(len(key), {})
                         .setdefault(key, []).append(si))
            elif planned["wait"]:
                strings, reach = planned["wait"]
                waiting.append((si, [_bytes(s) for s in strings], reach))
            else:
                unplanned.append(si)
        # per offset, in order: first byte -> (signatures keyed by that byte alone, longer keys by length)
        self._keyed = [
            (offset, {byte: (tuple(by_length.get(1, {}).get(bytes((byte,)), ())),
                             tuple((length, {k: tuple(v) for k, v in keys.items()})
                                   for length, keys in sorted(by_length.items()) if length > 1))
                      for byte, by_length in by_byte.items()})
            for offset, by_byte in sorted(by_key.items())]
        self._when_empty = tuple(when_empty)
        self._plan_unkeyed(waiting, unplanned)
        by_extension: dict[str, list[int]] = {}
        for fi, f in enumerate(self._formats):
            for ext in f.extensions:
                by_extension.setdefault(ext, []).append(fi)
        self._by_extension = {ext: tuple(fis) for ext, fis in by_extension.items()}
        self._containers = {kind: {path: {puid: tuple(_bytes(s) for s in sigs) for puid, sigs in by_puid.items()}
                                   for path, by_puid in found.items()}
                            for kind, found in table["containers"].items()}
        self._fido_matcher: Any = None
        # answers that depend on nothing but their key, kept (up to _CACHED) as a delivery repeats them
        self._extension_cache: dict[str, list[int]] = {}
        self._result_cache: dict[tuple[tuple[int, ...], str, str], Identification] = {}

    @property
    def _fido(self) -> Any:
        """FIDO's own matcher on the same signature files (slow to load: for comparing answers only)."""
        if self._fido_matcher is None:
            from fido.fido import Fido
            from fido.versions import get_local_versions

            versions = get_local_versions(self.conf_dir)
            self._fido_matcher = Fido(quiet=True, conf_dir=self.conf_dir, handle_matches=lambda *a, **k: None,
                                      format_files=[versions.pronom_signature, versions.fido_extension_signature])
        return self._fido_matcher

    # --- FIDO's decision, on the head and tail of a file ---------------------------------------

    def identify(self, head: bytes, tail: bytes, size: int, name: str) -> Identification:
        """Identify a file of ``size`` bytes from its first and last :data:`BUFSIZE` bytes and its name.

        ``head`` is the first ``min(size, BUFSIZE)`` bytes, ``tail`` the last
        ``min(size, BUFSIZE)`` (for a small file both are the whole file).
        Never raises for any bytes or name.
        """
        matches = self.match(head, tail) if size > 0 else []
        notes: list[str] = []
        if matches:
            container = self._container_type(matches)
            if container in ("zip", "ole"):
                found, note = self._match_container(container, head, tail, size)
                if found:
                    return self._result(found, CONTAINER, name, notes)
                if note:
                    notes.append(note)
            return self._result(matches, SIGNATURE, name, notes)
        by_name = self.match_extension(name)
        if by_name:
            return self._result(by_name, EXTENSION, name, notes)
        return UNIDENTIFIED

    def _plan_unkeyed(self, waiting: list[tuple[int, list[bytes], int | None]], unplanned: list[int]) -> None:
        """Signatures with no key wait for a string they need, all found in one scan of the head."""
        in_head: dict[bytes, list[tuple[int, int | None]]] = {}
        for si, strings, reach in waiting:
            for string in strings:
                # the scan looks for a prefix (a smaller automaton, a faster scan): it ends that much earlier
                prefix = string[:_SCANNED_PREFIX]
                ends_by = None if reach is None else reach - (len(string) - len(prefix))
                waiters = in_head.setdefault(prefix, [])
                if (si, ends_by) not in waiters:
                    waiters.append((si, ends_by))
        in_tail: dict[tuple[bytes, int | None], list[int]] = {}
        always: list[int] = []
        for si in unplanned:
            tail = next((n for n in self._signatures[si].needs if n[0] and len(n[1]) >= signature_table.MIN_WAITED),
                        None)
            if tail is not None:
                in_tail.setdefault((tail[1], tail[2]), []).append(si)
            else:
                always.append(si)
        self._always = tuple(always)
        self._head_strings = list(in_head)
        self._head_waiting = tuple(tuple(in_head[s]) for s in self._head_strings)
        self._head_scan = (ahocorasick_rs.BytesAhoCorasick(self._head_strings, implementation=ahocorasick_rs.Implementation.DFA)
                           if self._head_strings else None)
        self._tail_waiting = tuple((lit, reach, tuple(sis)) for (lit, reach), sis in in_tail.items())

    def match(self, bof: bytes, eof: bytes) -> list[int]:
        """The indices of the formats whose signatures match, inferior matches removed (FIDO's rules)."""
        candidates = set(self._always)
        if not bof:
            candidates.update(self._when_empty)
        scan = self._head_scan
        # a quick look first when the head is small: most small heads have none of the strings, while two in three
        # heads of 128 KiB of random bytes have one, and would be scanned twice (250 + 270 µs)
        if scan is not None and (len(bof) > QUICK_LOOK_BELOW or scan.find_matches_as_indexes(bof)):
            first_end: dict[int, int] = {}
            for li, _, end in scan.find_matches_as_indexes(bof, overlapping=True):
                if end < first_end.get(li, end + 1):
                    first_end[li] = end
            for li, end in first_end.items():
                for si, reach in self._head_waiting[li]:
                    if reach is None or end <= reach:
                        candidates.add(si)
        for needed, reach, sis in self._tail_waiting:
            if eof.find(needed, 0 if reach is None else max(0, len(eof) - reach)) >= 0:
                candidates.update(sis)
        length = len(bof)
        for offset, by_byte in self._keyed:
            if offset >= length:
                break
            entry = by_byte.get(bof[offset])
            if entry is not None:
                alone, longer = entry
                candidates.update(alone)
                for size, keys in longer:
                    hit = keys.get(bof[offset:offset + size])
                    if hit:
                        candidates.update(hit)
        if not candidates:
            return []
        result: list[tuple[int, int]] = []
        current = -1
        good = False
        for si in sorted(candidates):  # signature order is FIDO's format order
            signature = self._signatures[si]
            fi = signature.format_index
            if fi != current:
                current = fi
                good = self._as_good_as_any(fi, result)
            if good and signature.matches(bof, eof):
                result.append((fi, si))
        kept = [fi for fi, _ in result if self._as_good_as_any(fi, result)]
        return list(dict.fromkeys(kept))

    def match_extension(self, name: str) -> list[int]:
        """Formats whose extension the name has (FIDO's ``match_extensions``)."""
        ext = os.path.splitext(name)[1].lower().lstrip(".")
        if not ext:
            return []
        found = self._extension_cache.get(ext)
        if found is None:
            hits = [(fi, -1) for fi in self._by_extension.get(ext, ())]
            found = [fi for fi, _ in hits if self._as_good_as_any(fi, hits)]
            if len(self._extension_cache) < _CACHED:
                self._extension_cache[ext] = found
        return found

    def format_of(self, puid: str) -> _Format | None:
        index = self._index_of.get(puid)
        return None if index is None else self._formats[index]

    def _as_good_as_any(self, fi: int, result: Iterable[tuple[int, int]]) -> bool:
        outranks = self._outranks
        for other, _ in result:
            if other != fi and (other, fi) in outranks:
                return False
        return True

    def _container_type(self, matches: list[int]) -> str:
        for fi in matches:
            if self._formats[fi].container:
                return self._formats[fi].container
        return ""

    def _match_container(self, kind: str, head: bytes, tail: bytes, size: int) -> tuple[list[int], str]:
        view = _HeadTailFile(head, tail, size)
        try:
            if kind == "zip":
                puids = _zip_container_formats(view, self._containers["zip"])
            elif view.whole is not None:
                puids = _ole_container_formats(view.whole, self._containers["ole"])
            else:
                return [], "container: undecided (an OLE2 directory needs the whole file)"
        except _Undecided:
            return [], "container: undecided (a member it needs is neither in the head nor the tail)"
        except Exception:  # noqa: BLE001 - a malformed container is only a container FIDO cannot look into
            return [], "container: unreadable"
        return [self._index_of[p] for p in dict.fromkeys(puids) if p in self._index_of], ""

    def _result(self, matches: list[int], basis: str, name: str, notes: list[str]) -> Identification:
        ext = os.path.splitext(name)[1].lower().lstrip(".")
        key = (tuple(matches), basis, ext)
        if not notes:
            known = self._result_cache.get(key)
            if known is not None:
                return known
        found = self._new_result(matches, basis, ext, notes)
        if not notes and len(self._result_cache) < _CACHED:
            self._result_cache[key] = found
        return found

    def _new_result(self, matches: list[int], basis: str, ext: str, notes: list[str]) -> Identification:
        first = self._formats[matches[0]]
        mismatch = basis in (SIGNATURE, CONTAINER) and bool(ext) and not any(
            ext in self._formats[fi].extensions for fi in matches)
        return Identification(
            puid=first.puid, mime=first.mime, format_name=first.name, format_version=first.version, basis=basis,
            alternatives=tuple(self._formats[fi].puid for fi in matches[1:]), extension_mismatch=mismatch,
            notes=tuple(notes),
        )


_loaded: dict[str, Signatures] = {}
_lock = threading.Lock()


def signatures(conf_dir: str = CONFIG_DIR) -> Signatures:
    """The process's compiled signatures from ``conf_dir`` (FIDO's installed ones by default), loaded once."""
    with _lock:
        found = _loaded.get(conf_dir)
        if found is None:
            with collector.paused():  # tens of thousands of lists and dicts, no cycle among them
                found = _loaded[conf_dir] = Signatures(conf_dir)
        return found


# --- keeping the head and tail of a file as it streams past ---------------------------------------


class HeadTail:
    """The first and last :data:`BUFSIZE` bytes of a stream of chunks, whatever the chunks' sizes."""

    __slots__ = ("head", "_rest", "size", "limit")

    def __init__(self, limit: int = BUFSIZE) -> None:
        self.limit = limit
        self.head = bytearray()
        self._rest = bytearray()  # the last bytes seen after the head (up to 2 × limit before trimming)
        self.size = 0

    def feed(self, chunk: bytes | memoryview) -> None:
        n = len(chunk)
        self.size += n
        limit = self.limit
        room = limit - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            if n <= room:
                return
            chunk = chunk[room:]
            n -= room
        if n >= limit:
            self._rest[:] = chunk[n - limit:]
        else:
            self._rest += chunk
            if len(self._rest) > 2 * limit:
                del self._rest[:-limit]

    @property
    def tail(self) -> bytes:
        """The last ``min(size, limit)`` bytes."""
        if not self._rest:
            return bytes(self.head)
        if len(self._rest) >= self.limit:
            return bytes(self._rest[-self.limit:])
        return bytes(self.head[len(self._rest) - self.limit:] + self._rest)


# --- zip and OLE2 containers, seen through the head and the tail ----------------------------------


class _Undecided(Exception):
    """A read fell between the head and the tail."""


class _HeadTailFile(io.RawIOBase):
    """A read-only file of ``size`` bytes of which only the head and the tail are known."""

    def __init__(self, head: bytes, tail: bytes, size: int) -> None:
        self._head, self._tail, self._size = head, tail, size
        self._tail_start = size - len(tail)
        self._pos = 0
        self.whole: bytes | None = None
        if self._tail_start <= len(head):
            self.whole = head + tail[len(head) - self._tail_start:]

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def read(self, n: int = -1) -> bytes:
        start = self._pos
        end = self._size if n is None or n < 0 else min(self._size, start + n)
        if start >= end:
            return b""
        if self.whole is not None:
            data = self.whole[start:end]
        elif end <= len(self._head):
            data = self._head[start:end]
        elif start >= self._tail_start:
            data = self._tail[start - self._tail_start:end - self._tail_start]
        else:
            raise _Undecided
        self._pos = end
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


def _zip_container_formats(view: _HeadTailFile, signatures: dict[str, dict[str, tuple[bytes, ...]]]) -> list[str]:
    """FIDO's ``ZipPackage.detect_formats`` on the head and tail, reading no member over its size limit."""
    found: list[str] = []
    with zipfile.ZipFile(view) as archive:
        names = set(archive.namelist())
        for path, by_puid in signatures.items():
            if path not in names:
                continue
            info = archive.getinfo(path)
            if info.file_size > MAX_CONTAINER_MEMBER or info.flag_bits & 0x1:
                continue
            with archive.open(info) as member:
                contents = member.read(MAX_CONTAINER_MEMBER + 1)
            for puid, sigs in by_puid.items():
                if any(re.search(s, contents) for s in sigs):
                    found.append(puid)
    return found


def _ole_container_formats(whole: bytes, signatures: dict[str, dict[str, tuple[bytes, ...]]]) -> list[str]:
    """FIDO's ``OlePackage.detect_formats`` on a file held whole."""
    found: list[str] = []
    with olefile.OleFileIO(whole) as ole:
        streams = ["/".join(p) for p in ole.listdir()]
        for path, by_puid in signatures.items():
            match = next((p for p in streams if p == path or p[1:] == path), None)
            if match is None or ole.get_size(match) > MAX_CONTAINER_MEMBER:
                continue
            with ole.openstream(match) as stream:
                contents = stream.read()
            for puid, sigs in by_puid.items():
                if any(re.search(s, contents) for s in sigs):
                    found.append(puid)
    return found
