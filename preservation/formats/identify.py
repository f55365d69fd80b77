"""Format identification from a file's first and last bytes, with FIDO's PRONOM signatures.

`opf-fido <https://github.com/openpreserve/fido>`_ ships PRONOM's binary
and container signatures and the rules that rank competing matches.  Its
``Fido.match_formats`` tries all ~1,900 signatures against a file through
ElementTree look-ups, several milliseconds a file: far too slow for ingest,
where a file of 4 KiB costs well under a millisecond to bag.  This module
keeps FIDO's signatures, its priorities and its decision order (signature,
then container, then extension) and only changes how the signatures are
tried: each regular expression is compiled once, and a signature whose
``BOF`` pattern needs a byte at a fixed offset is tried only when the
file's first bytes have it there (an index built from the parsed
expression; a signature the index cannot describe is always tried, so the
index can make identification faster, never different).
``tests/formats/test_identify.py`` checks the result against FIDO's own
``match_formats``.

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
from dataclasses import dataclass, field
from typing import Any, Iterable
from xml.etree import ElementTree

import ahocorasick_rs
import olefile
from fido import CONFIG_DIR
from fido import __version__ as FIDO_VERSION
from fido.fido import Fido
from fido.versions import get_local_versions

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
_MAX_SET = 64  # a character set wider than this is not worth indexing
_CACHED = 10_000  # distinct extensions, and distinct answers, remembered at most
_MIN_SCANNED = 3  # literals at least this long are looked for in one scan of the head; shorter ones by find()
_MAX_SPREAD = 8  # `.{a,b}` before a byte: indexed at each of the offsets a..b when b - a is at most this


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
    extensions: frozenset[str]
    container: str  # "zip", "tar", "ole" or ""


@dataclass
class _Signature:
    format_index: int
    name: str
    patterns: list[tuple[str, re.Pattern[bytes], int | None]] = field(default_factory=list)
    """(position, expression, where an ``EOF`` search may start from the end: None for anywhere)."""
    needs: list[tuple[bool, bytes, int | None]] = field(default_factory=list)
    """Bytes each pattern cannot match without: (in the tail?, the bytes, how far into the buffer)."""

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


class Signatures:
    """FIDO's installed signature files, compiled for fast matching; one per process (:func:`signatures`)."""

    def __init__(self, conf_dir: str = CONFIG_DIR) -> None:
        versions = get_local_versions(conf_dir)
        self.conf_dir = conf_dir
        self.tool = TOOL
        self.tool_version = FIDO_VERSION
        pronom = str(versions.pronom_version)
        container_file = str(versions.pronom_container_signature)
        container_date = re.sub(r"\D", "", container_file) or container_file
        self.signature_version = f"v{pronom} container-{container_date}"
        """Which PRONOM signature file (and container signature file) said what a file is."""
        fido = Fido(quiet=True, conf_dir=conf_dir, handle_matches=lambda *a, **k: None,
                    format_files=[versions.pronom_signature, versions.fido_extension_signature])
        self._formats: list[_Format] = []
        index_of: dict[str, int] = {}
        for element in fido.formats:
            puid = element.findtext("puid") or ""
            index_of[puid] = len(self._formats)
            self._formats.append(_Format(
                puid=puid, mime=element.findtext("mime") or "", name=element.findtext("name") or "",
                version=element.findtext("version") or "",
                extensions=frozenset((e.text or "").lower() for e in element.findall("extension")),
                container=element.findtext("container") or ("ole" if puid == "fmt/111" else ""),
            ))
        self._index_of = index_of
        # priority[i]: the formats format i has priority over (FIDO's has_priority_over)
        self._priority: list[frozenset[int]] = [
            frozenset(index_of[p] for p in fido.puid_has_priority_over_map.get(f.puid, ()) if p in index_of)
            for f in self._formats
        ]
        self._signatures: list[_Signature] = []
        self._by_offset: dict[int, dict[int, list[int]]] = {}
        always: list[int] = []
        for fi, element in enumerate(fido.formats):
            for sig in element.findall("signature"):
                si = len(self._signatures)
                signature = _Signature(fi, sig.findtext("name") or "")
                keys: set[tuple[int, int]] | None = None
                for pat in sig.findall("pattern"):
                    position = pat.findtext("position") or ""
                    source = (pat.findtext("regex") or "").encode("utf-8")
                    expression = re.compile(source)
                    reach = _tail_reach(source) if position == _EOF else None
                    signature.patterns.append((position, expression, reach))
                    needed = _needed_bytes(source)
                    if needed is not None:
                        if position == _BOF:
                            reach = _head_reach(source)
                        signature.needs.append((position == _EOF, needed, reach))
                    if position == _BOF and keys is None:
                        keys = _leading_bytes(source)
                self._signatures.append(signature)
                if keys:
                    for offset, byte in keys:
                        self._by_offset.setdefault(offset, {}).setdefault(byte, []).append(si)
                else:
                    always.append(si)
        self._plan_unindexed(always)
        self._offsets = sorted(self._by_offset.items())
        self._by_extension: dict[str, list[int]] = {}
        for fi, f in enumerate(self._formats):
            for ext in sorted(f.extensions):
                self._by_extension.setdefault(ext, []).append(fi)
        tree = ElementTree.parse(os.path.join(os.path.abspath(conf_dir), str(container_file)))
        self._zip_signatures = fido.extract_signatures(tree, signature_type="ZIP")
        self._ole_signatures = fido.extract_signatures(tree, signature_type="OLE2")
        self._fido = fido
        # answers that depend on nothing but their key, kept (up to _CACHED) as a delivery repeats them
        self._extension_cache: dict[str, list[int]] = {}
        self._result_cache: dict[tuple[tuple[int, ...], str, str], Identification] = {}

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

    def _plan_unindexed(self, unindexed: list[int]) -> None:
        """Signatures the byte index cannot place wait for one literal they need, all found in one scan."""
        in_head: dict[bytes, list[tuple[int, int | None]]] = {}
        in_tail: dict[tuple[bytes, int | None], list[int]] = {}
        always: list[int] = []
        for si in unindexed:
            needs = [n for n in self._signatures[si].needs if len(n[1]) >= _MIN_SCANNED]
            head = next((n for n in needs if not n[0]), None)
            if head is not None:
                in_head.setdefault(head[1], []).append((si, head[2]))
            elif needs:
                in_tail.setdefault((needs[0][1], needs[0][2]), []).append(si)
            else:
                always.append(si)
        self._always = tuple(always)
        self._head_literals = list(in_head)
        self._head_waiting = [in_head[lit] for lit in self._head_literals]
        self._head_scan = (ahocorasick_rs.BytesAhoCorasick(self._head_literals,
                                                           implementation=ahocorasick_rs.Implementation.DFA)
                           if self._head_literals else None)
        self._tail_waiting = [(lit, reach, tuple(sis)) for (lit, reach), sis in in_tail.items()]

    def match(self, bof: bytes, eof: bytes) -> list[int]:
        """The indices of the formats whose signatures match, inferior matches removed (FIDO's rules)."""
        candidates = set(self._always)
        if self._head_scan is not None:
            first_end: dict[int, int] = {}
            for li, _, end in self._head_scan.find_matches_as_indexes(bof, overlapping=True):
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
        for offset, table in self._offsets:
            if offset >= length:
                break
            hit = table.get(bof[offset])
            if hit:
                candidates.update(hit)
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
        for other, _ in result:
            if other != fi and fi in self._priority[other]:
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
                puids = _zip_container_formats(view, self._zip_signatures)
            elif view.whole is not None:
                puids = _ole_container_formats(view.whole, self._ole_signatures)
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


def _zip_container_formats(view: _HeadTailFile, signatures: dict[str, dict[str, list[dict]]]) -> list[str]:
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
                if any(re.search(s["signature"], contents) for s in sigs):
                    found.append(puid)
    return found


def _ole_container_formats(whole: bytes, signatures: dict[str, dict[str, list[dict]]]) -> list[str]:
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
                if any(re.search(s["signature"], contents) for s in sigs):
                    found.append(puid)
    return found


# --- the index: which byte a BOF expression needs where --------------------------------------------


def _leading_bytes(source: bytes) -> set[tuple[int, int]] | None:
    """(offset, byte) pairs one of which the head must have for ``source`` to match at its start, or None.

    None when the expression does not reduce to such a rule (it is then tried on every file).
    """
    try:
        from re import _constants as C
        from re import _parser
    except ImportError:  # a Python without the parser: no index, every signature is tried
        return None
    try:
        parsed = _parser.parse(source)
    except re.error:
        return None
    if parsed.state.flags & (re.IGNORECASE | re.VERBOSE):
        return None
    offsets = {0}
    for op, av in parsed:
        if op is C.AT:
            if av is C.AT_BEGINNING_STRING:
                continue
            return None
        if op is C.ANY:
            offsets = {o + 1 for o in offsets}
            continue
        if op in (C.MAX_REPEAT, C.MIN_REPEAT):
            low, high, sub = av
            if len(sub) == 1 and sub[0][0] is C.ANY and high - low <= _MAX_SPREAD:
                offsets = {o + k for o in offsets for k in range(low, high + 1)}
                if len(offsets) > _MAX_SPREAD + 1:
                    return None
                continue
            return None
        first = _first_bytes(C, op, av)
        if first is None:
            return None
        return {(o, b) for o in offsets for b in first}
    return None


def _first_bytes(C: Any, op: Any, av: Any) -> set[int] | None:
    if op is C.LITERAL:
        return {av}
    if op is C.IN:
        out: set[int] = set()
        for kind, value in av:
            if kind is C.LITERAL:
                out.add(value)
            elif kind is C.RANGE:
                out.update(range(value[0], value[1] + 1))
            else:  # NEGATE, CATEGORY …
                return None
        return out if len(out) <= _MAX_SET else None
    if op is C.BRANCH:
        out = set()
        for alternative in av[1]:
            if not alternative:
                return None
            first = _first_bytes(C, *alternative[0])
            if first is None:
                return None
            out |= first
        return out if len(out) <= _MAX_SET else None
    if op is C.SUBPATTERN and len(av[3]) > 0:
        return _first_bytes(C, *av[3][0])
    return None


def _tail_reach(source: bytes) -> int | None:
    """How far from the end an expression anchored at the end (``…\\Z``) can start, or None."""
    try:
        from re import _constants as C
        from re import _parser
        parsed = _parser.parse(source)
    except (ImportError, re.error):
        return None
    items = list(parsed)
    if not items or items[-1] != (C.AT, C.AT_END_STRING):
        return None
    if _looks_around(C, items[:-1]):
        return None
    low, high = parsed.getwidth()
    return high if high < C.MAXREPEAT else None


def _looks_around(C: Any, items: Any) -> bool:
    """Whether parsed items anchor or look anywhere (then a search must start where FIDO's does)."""
    for op, av in items:
        if op in (C.AT, C.ASSERT, C.ASSERT_NOT, C.GROUPREF, C.GROUPREF_EXISTS):
            return True
        if op in (C.MAX_REPEAT, C.MIN_REPEAT, C.POSSESSIVE_REPEAT) and _looks_around(C, av[2]):
            return True
        if op is C.SUBPATTERN and _looks_around(C, av[3]):
            return True
        if op is C.ATOMIC_GROUP and _looks_around(C, av):
            return True
        if op is C.BRANCH and any(_looks_around(C, alternative) for alternative in av[1]):
            return True
    return False


def _parsed(source: bytes) -> tuple[Any, Any] | None:
    try:
        from re import _constants as C
        from re import _parser
        parsed = _parser.parse(source)
    except (ImportError, re.error):
        return None
    if parsed.state.flags & (re.IGNORECASE | re.VERBOSE):
        return None
    return C, parsed


def _needed_bytes(source: bytes) -> bytes | None:
    """The longest run of literal bytes (two or more) every match of ``source`` contains, or None."""
    found = _parsed(source)
    if found is None:
        return None
    C, parsed = found
    best = run = b""
    for op, av in list(parsed) + [(None, None)]:
        if op is C.LITERAL:
            run += bytes((av,))
            continue
        if len(run) > len(best):
            best = run
        run = b""
    return best if len(best) >= 2 else None


def _head_reach(source: bytes) -> int | None:
    """How far into the head a match anchored at the start can reach (its widest width), or None."""
    found = _parsed(source)
    if found is None:
        return None
    C, parsed = found
    high = parsed.getwidth()[1]
    return high if high < C.MAXREPEAT else None
