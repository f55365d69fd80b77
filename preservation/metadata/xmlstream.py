"""Reading a metadata XML file as its bytes stream past, once, in bounded memory.

An :class:`XmlObserver` feeds each chunk the bagging pass hands it into an
incremental lxml parser (``XMLPullParser``) and passes the events of the
elements its vocabulary cares about to a :class:`VocabularyReader`, which
takes what it needs and lets the observer discard the element (and the
siblings before it), so a file of any size costs the element being read.

The parser is built never to reach outside the file: no DTD is loaded (an
external subset it would load is empty: nothing is opened, on the network or
on the disk), no entity is substituted, and lxml's ``huge_tree`` limits stay
on.  A file whose DTD declares entities (the
XXE and "billion laughs" attacks both need one) is refused outright; an
entity left unresolved (a JATS ``&mdash;`` whose DTD was not loaded) is
dropped from the text.
"""

from __future__ import annotations

import functools
import posixpath
import re
import threading
from contextlib import suppress
from typing import Callable, Iterable, Protocol
from urllib.parse import unquote, urlsplit

from lxml import etree

from preservation import codes
from preservation.metadata.records import LIMITS, Checker, ItemRecord, Note


class VocabularyReader(Protocol):
    """What one vocabulary (JATS, ONIX, Dublin Core) makes of the elements of a file."""

    name: str

    def start(self, element: etree._Element) -> None: ...

    def end(self, element: etree._Element) -> int:
        """Take what is needed of ``element``; say what the observer may discard: KEEP, CLEAR or CLEAR_BEFORE."""

    links_after_done: tuple[bytes, ...]
    """Start tags (``b"<name"``) the reader still wants once :meth:`end` said DONE: those parsed already
    go to :meth:`start`, those after the parser stopped to :meth:`link`."""

    def link(self, name: str, href: str) -> None:
        """A link found by scanning the bytes after DONE (``name`` without ``<``)."""

    done_at: bytes | None
    """Optional: the end tag (``b"</front>"``) whose element's end the reader usually answers with DONE, a child
    of the root.  The observer ends a slice right after each one it finds, so that the parser is stopped there
    with only the root open, and ends the document with the root's end tag (a document ended early costs lxml an
    error to build; a tag elsewhere, or written otherwise, is parsed as any other)."""

    held_limit: int | None
    """Optional: bytes of a file the reader may keep before it says DONE (a JATS front matter); past them the
    file is given up (MD019), so that the tree held never grows with the file."""

    def take(self) -> list[ItemRecord]:
        """The records complete so far (each returned once)."""

    def finish(self) -> list[ItemRecord]:
        """The last records, after the end of the file."""

    def recognised(self) -> bool:
        """Whether the file was this vocabulary at all."""


def local_name(element: etree._Element) -> str:
    tag = element.tag
    if not isinstance(tag, str):
        return ""
    return tag.rpartition("}")[2]


def text_of(element: etree._Element, limit: int = 4 * LIMITS["item_title"]) -> str:
    """The text of ``element`` and its descendants, without unresolved entities, at most about ``limit`` characters."""
    if not len(element):  # most fields (a surname, an ISSN, a volume) are one element holding text only
        text = element.text if isinstance(element.tag, str) else None
        return text[: limit + 1] if text else ""
    parts: list[str] = []
    size = 0

    def walk(node: etree._Element) -> None:
        nonlocal size
        if size > limit:
            return
        if node.text and isinstance(node.tag, str):
            parts.append(node.text)
            size += len(node.text)
        for child in node:
            if isinstance(child.tag, str):
                walk(child)
            if child.tail:  # an entity's or a comment's own text is skipped, the text after it is not
                parts.append(child.tail)
                size += len(child.tail)

    walk(element)
    return "".join(parts)[: limit + 1]


def _joined(metadata_path: str, href: str) -> str | None:
    """The general way of :func:`resolve_href` (before its payload check): ``href`` unquoted, joined to the
    metadata file's folder and normalised; None for a URL, a fragment or nothing."""
    if not href or urlsplit(href).scheme or href.startswith("#"):
        return None
    href = unquote(href)
    if href.startswith("/") or "\\" in href:
        raise ValueError("absolute")
    return posixpath.normpath(posixpath.join(posixpath.dirname(metadata_path), href))


_PLAIN_HREF = re.compile(r"[^/.:%#\\\s][^/:%#\\\s]*(?:/[^/.:%#\\\s][^/:%#\\\s]*)*")
"""A relative link that ``normpath`` and ``unquote`` would leave as it is: names without a scheme, an escape, a
fragment or a backslash, none starting with a dot, joined by single slashes (most links: ``aps-68-07000.pdf``)."""


def resolve_href(metadata_path: str, href: str | None) -> str | None:
    """The bag path a metadata file's relative link names, or None for a URL or an empty link.

    ``metadata_path`` is a bag path as the bagging pass gives it (normalised: no ``.``, ``..`` or empty
    segment), which the short way for plain links relies on.  Raises ValueError when the link is absolute or
    climbs out of the payload.
    """
    href = (href or "").strip()
    if _PLAIN_HREF.fullmatch(href):  # a file name or a relative path without dots, escapes or a scheme
        folder = metadata_path.rpartition("/")[0]
        joined = f"{folder}/{href}" if folder else href
    else:
        joined = _joined(metadata_path, href)
        if joined is None:
            return None
    if not joined.startswith("data/") or len(joined) > LIMITS["href"]:
        raise ValueError("outside the payload")
    return joined


KEEP = 0
CLEAR = 1
"""The element is read: its content and attributes may go."""
CLEAR_BEFORE = 2
"""The element and every sibling before it are read: all of them may go."""
DONE = 3
"""The reader needs no more elements, only the links named by its ``links_after_done``: the rest is scanned."""
SCANNABLE = {"utf-8", "utf8", "us-ascii", "ascii"}
"""Encodings whose markup the scan after DONE reads as bytes; any other is parsed to its end."""
_CARRY = 4096
"""Bytes of the last parsed chunk scanned again (a tag lxml had not finished); duplicates are merged later."""
_SLICE = 2048
"""Bytes handed to the parser at a time: a reader done with the front matter stops it within a slice.  Small,
because what lxml parses past the front matter (a body's paragraphs, each an element and an event) is wasted:
a JATS article of 40 KiB took 0.51 ms to read with slices of 8 KiB, 0.39 ms with 2 KiB."""
_PROLOGUE = 64 * 1024
"""How far into a file a DOCTYPE is looked for (what comes before the root element)."""
_HREF = re.compile(rb"""\s[A-Za-z_][\w.-]*:href\s*=\s*(?:"([^"<]*)"|'([^'<]*)')""")
_REFERENCE = re.compile(r"&(#x[0-9a-fA-F]{1,6}|#[0-9]{1,7}|amp|lt|gt|quot|apos);")
_LONGEST_NAME = 64
"""Bytes kept at the end of a scanned chunk, in case a tag's name is cut by it."""
_DECLARED = re.compile(rb"""(?:\xef\xbb\xbf)?<\?xml[^>]{0,200}?encoding\s*=\s*["']([A-Za-z0-9._-]{1,40})["']""")
_NAMED = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}

def _declares_entities(head: bytes) -> bool:
    """Whether a DOCTYPE's internal subset in ``head`` declares an entity.

    Looked for before lxml sees the bytes: libxml2 reports an entity
    explosion as a syntax error before any element, which would hide the
    attack behind "not well-formed".  (The DTD lxml reads is checked again
    at the root, for what this look misses, such as UTF-16.)
    """
    doctype = head.find(b"<!DOCTYPE", 0, _PROLOGUE)
    if doctype < 0:
        return False
    subset = head.find(b"[", doctype)  # an internal subset opens before the DOCTYPE's first ">"
    if subset < 0 or 0 <= head.find(b">", doctype, subset) < subset:
        return False
    end = head.find(b"]>", subset)
    return head.find(b"<!ENTITY", subset, end if end >= 0 else len(head)) >= 0


def _declared_encoding(head: bytes) -> str:
    """The encoding the first bytes of an XML file declare (UTF-8 by default); ``utf-16`` for any wide form."""
    if head[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in head[:4]:
        return "utf-16"
    match = _DECLARED.match(head)
    return match.group(1).decode("ascii").lower() if match else "utf-8"


def _attribute(raw: bytes) -> str:
    """An attribute value found by the scan, its character references resolved ("" when it is not UTF-8)."""
    try:
        return _REFERENCE.sub(_reference, raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, OverflowError):
        return ""


def _reference(match: re.Match[str]) -> str:
    name = match.group(1)
    if name in _NAMED:
        return _NAMED[name]
    return chr(int(name[2:], 16) if name[1] == "x" else int(name[1:]))


@functools.lru_cache(maxsize=None)
def _tags_pattern(tags: tuple[bytes, ...]) -> re.Pattern[bytes]:
    """One expression finding the first of ``tags``; of two at the same place the shorter, as ``min`` would.
    Their common ``<`` is written once (``<(?:a|b)``): a body's many other tags then cost one test each."""
    ordered = sorted(tags)
    if all(tag[:1] == b"<" for tag in ordered):
        return re.compile(b"<(?:" + b"|".join(re.escape(tag[1:]) for tag in ordered) + b")")
    return re.compile(b"|".join(re.escape(tag) for tag in ordered))


_IDLE = threading.local()
"""Each thread's idle pull parsers, by tag filter (``idle``: a dict).  An lxml pull parser is some 45 objects in
reference cycles, which only the garbage collector frees: a new one per file brought on a collection every
15 files or so, and with them full passes over the whole ingesting process.  One parser per thread, reset
between files, leaves none."""


class _NothingOutside(etree.Resolver):
    """Every document, DTD or entity the parser would load from outside the file is empty.

    ``collect_ids=False`` (which keeps memory flat however many ``xml:id`` a file carries: lxml never removes
    an ID it collected) makes libxml2 load a DOCTYPE's external subset, by default from the local file system:
    ``<!DOCTYPE article SYSTEM "/dev/zero">`` read a device and a named pipe hung the parser for good.  Nothing
    is opened now; the subset is empty (its entities could never be substituted anyway).
    """

    def resolve(self, url, pubid, context):  # noqa: ARG002 (lxml's signature)
        return self.resolve_string("", context)


def _take_parser(tags: tuple[str, ...]) -> etree.XMLPullParser:
    """An idle parser of this thread for ``tags``, or a new one: never one another file is using."""
    idle = getattr(_IDLE, "idle", None)
    parser = idle.pop(tags, None) if idle else None
    if parser is None:
        parser = etree.XMLPullParser(
            events=("start", "end"), tag=list(tags), resolve_entities=False, no_network=True, load_dtd=False,
            huge_tree=False, remove_comments=True, remove_pis=True, collect_ids=False,
        )
        parser.resolvers.add(_NothingOutside())
    return parser


def _give_back(tags: tuple[str, ...], parser: etree.XMLPullParser, *, closed: bool, end: bytes = b"") -> None:
    """Make ``parser`` this thread's idle parser for ``tags``, reset for the next file.

    Unless ``closed`` (its document parsed to the end), the document it was
    left in is ended first: with ``end`` (the end tag of the only element
    still open), as a document that ends there; else lxml refuses the
    unfinished document.  The events its ending makes are read and dropped
    with the events left over, so that none reaches the next file's reader.
    """
    if not closed:
        with suppress(etree.XMLSyntaxError):  # the document stopped before its end: what ending it says
            if end:
                with suppress(etree.XMLSyntaxError):  # the end tag did not fit: ended as it is
                    parser.feed(end)
            parser.close()
    for _ in parser.read_events():
        pass
    idle = getattr(_IDLE, "idle", None)
    if idle is None:
        idle = _IDLE.idle = {}
    idle[tags] = parser


def _only_done_at(readers: dict[str, Callable[[Checker], VocabularyReader]]) -> bytes | None:
    """The ``done_at`` of the readers, when one is found among them (a slice cut there does no harm to another)."""
    return _one_mark(tuple(readers.values()))


@functools.lru_cache(maxsize=64)
def _one_mark(makers: tuple) -> bytes | None:
    marks = {getattr(make, "done_at", None) for make in makers} - {None}
    return marks.pop() if len(marks) == 1 else None


Emit = Callable[[list[ItemRecord]], None]


class XmlObserver:
    """Feeds one XML payload file to the parser and the reader of its vocabulary; never raises."""

    __slots__ = ("path", "check", "_emit", "_notes", "_parser", "_tags", "_readers", "_reader", "_done", "_scanning",
                 "_encoding", "_tail", "_parsed", "_limit", "_done_at", "_root_end")

    def __init__(self, path: str, readers: dict[str, Callable[[Checker], VocabularyReader]],
                 tags: Iterable[str], emit: Emit, notes: Callable[[str, list[Note]], None]) -> None:
        self.path = path
        self.check = Checker(path)
        self._emit = emit
        self._notes = notes
        self._readers = readers
        self._reader: VocabularyReader | None = None
        self._done = False
        self._scanning: bytes | None = None  # after DONE: the bytes not yet scanned for links
        self._encoding: str | None = None
        self._tail = b""  # the last bytes the parser was fed: a tag cut there has given lxml no event yet
        self._parsed = 0  # bytes fed to the parser
        self._limit: int | None = None  # the reader's held_limit, once it is chosen
        # the reader's done_at once it is chosen; before, the one any reader has (the root is in the first slice)
        self._done_at: bytes | None = _only_done_at(readers)
        self._root_end = b""  # the root's end tag (b"</article>"), once the reader is chosen
        self._tags = tuple(tags)
        self._parser: etree.XMLPullParser | None = None  # taken on the thread that reads the file (_take_parser)

    def feed(self, chunk: bytes | memoryview) -> None:
        if self._done:
            return
        data = bytes(chunk)  # a copy: the chunk's buffer is reused once feed returns
        if self._scanning is not None:
            self._scan(self._scanning + data)
            return
        if self._reader is None:
            if _declares_entities(data):
                self._refuse_entities()
                return
            if self._encoding is None:
                self._encoding = _declared_encoding(data)
        if self._parser is None:
            self._parser = _take_parser(self._tags)
        try:
            # mark: where in data the next done_at ends (-1: to be looked for from start; -2: none in this chunk)
            start, mark = 0, self._straddling_mark(data)
            while start < len(data):  # in slices, so that parsing stops soon after the reader is done
                stop = start + _SLICE
                if self._done_at is not None:
                    if -1 <= mark <= start:
                        found = data.find(self._done_at, start)
                        mark = found + len(self._done_at) if found >= 0 else -2
                    if start < mark < stop:
                        stop = mark
                piece = data[start:stop]
                self._parser.feed(piece)
                self._parsed += len(piece)
                self._tail = (self._tail + piece)[-_CARRY:]
                if self._drain():
                    self._start_scanning(self._tail + data[stop:], at_mark=stop == mark)
                    if self._scanning is not None:
                        self._scan(self._scanning)
                        return
                elif self._done:  # refused at its root (entities in a DTD the byte look missed)
                    return
                elif self._limit is not None and self._parsed > self._limit and self._reader is not None:
                    self._too_large()
                    return
                start = stop
        except etree.XMLSyntaxError as e:
            self._malformed(e)

    def _straddling_mark(self, data: bytes) -> int:
        """Where in ``data`` a done_at that began in the last chunk ends; -1 when none does."""
        if self._done_at is None or not self._tail:
            return -1
        before = self._tail[1 - len(self._done_at):]
        found = (before + data[:len(self._done_at) - 1]).find(self._done_at)
        return found + len(self._done_at) - len(before) if found >= 0 else -1

    def close(self, size: int) -> None:
        if self._scanning is not None:
            self._scan(self._scanning, final=True)
            self._emit([*self._reader.take(), *self._reader.finish()])
        elif not self._done:
            if self._parser is None:
                self._parser = _take_parser(self._tags)
            try:
                root = self._parser.close()
                self._drain()
                if self._parser is not None:  # (None: refused by its root as the events were read, given back)
                    _give_back(self._tags, self._parser, closed=True)
                    self._parser = None
                if self._reader is None and not self._done:
                    self._choose(root)
            except etree.XMLSyntaxError as e:
                self._malformed(e)
            if not self._done and self._reader is not None:
                self._emit([*self._reader.take(), *self._reader.finish()])
                if not self._reader.recognised():
                    self.check.note(codes.MD_UNKNOWN_VOCABULARY,
                                    f"the root element <{local_name(root)[:100]}> is not JATS, ONIX 3 or Dublin Core: "
                                    "no item read", root=local_name(root)[:100])
        self._done = True
        self._parser = None
        self._notes(self.path, self.check.notes)

    @property
    def stopped(self) -> bool:
        """Whether the file was given up (malformed, entities, too large): the rest of its bytes are not wanted."""
        return self._done

    def _drain(self) -> bool:
        """Hand the parser's events to the reader; True once the reader said DONE."""
        done = False
        for event, element in self._parser.read_events():
            reader = self._reader
            if reader is None:
                reader = self._choose(element.getroottree().getroot())
                if reader is None:
                    return False
            if done:  # parsed with the slice already: only the start tags of links are still wanted
                if event == "start" and ("<" + local_name(element)).encode() in reader.links_after_done:
                    reader.start(element)
                continue
            if event == "start":
                reader.start(element)
                continue
            a = reader.end(element)
            if a == KEEP:
                continue
            element.clear(keep_tail=False)
            parent = element.getparent()
            if a == CLEAR_BEFORE and parent is not None:
                while element.getprevious() is not None:
                    del parent[0]
            elif a == DONE:
                done = True
        if self._reader is not None:
            records = self._reader.take()
            if records:
                self._emit(records)
        return done

    def _start_scanning(self, rest: bytes, at_mark: bool) -> None:
        """Stop parsing: ``rest`` (from a little before where the parser stopped) and what follows are scanned.
        ``at_mark``: the parser stopped right after the reader's ``done_at``, with only the root open."""
        if self._encoding not in SCANNABLE or not self._reader.links_after_done:
            return  # parsed to the end as before (the reader ignores what follows)
        # the tree goes with the reader; the body is not built
        _give_back(self._tags, self._parser, closed=False, end=self._root_end if at_mark else b"")
        self._parser = None
        self._scanning = rest

    def _scan(self, data: bytes, final: bool = False) -> None:
        """Find the reader's links in ``data``; keep an unfinished tag (or a cut name) for the next chunk."""
        reader = self._reader
        tags = _tags_pattern(reader.links_after_done)
        position, keep = 0, max(len(data) - _LONGEST_NAME, 0)
        while True:
            found = tags.search(data, position)  # one pass over the bytes for all the tags
            if found is None:
                break
            at, tag = found.start(), found.group()
            end = data.find(b">", at, at + _CARRY)
            if end < 0:
                if len(data) - at < _CARRY:
                    keep = min(keep, at)  # its end is in the next chunk
                break  # (a start tag longer than _CARRY is no link: dropped)
            match = _HREF.search(data, at, end)
            if match is not None:
                href = _attribute(match.group(1) if match.group(1) is not None else match.group(2))
                if href:
                    reader.link(tag[1:].decode("ascii"), href)
            position = end + 1
            keep = max(keep, position)
        self._scanning = b"" if final else data[keep:]

    def _choose(self, root: etree._Element) -> VocabularyReader | None:
        """The reader for the file's root, once its DTD is known to declare no entity."""
        dtd = root.getroottree().docinfo.internalDTD
        if dtd is not None and any(True for _ in dtd.iterentities()):
            self._refuse_entities()
            return None
        make = self._readers.get(root.tag if isinstance(root.tag, str) else "") or self._readers[""]
        self._reader = make(self.check)
        self._limit = getattr(self._reader, "held_limit", None)
        self._done_at = getattr(self._reader, "done_at", None)
        name = local_name(root)
        self._root_end = f"</{root.prefix}:{name}>".encode() if root.prefix else f"</{name}>".encode()
        return self._reader

    def _refuse_entities(self) -> None:
        self.check.note(codes.MD_ENTITIES, "the XML declares entities in its DTD: refused, nothing expanded or "
                        "fetched, no item read")
        self._stop()

    def _too_large(self) -> None:
        self.check.note(codes.MD_FRONT_TOO_LARGE, f"no end of the front matter in the first {self._limit:,} bytes: "
                        "no item read", limit=self._limit)
        self._stop()

    def _malformed(self, error: etree.XMLSyntaxError) -> None:
        line = error.position[0] if error.position else None
        self.check.note(codes.MD_MALFORMED, f"the XML is not well-formed (line {line}): {error.msg[:200]}; "
                        "no item read from there on", line=line)
        self._stop()

    def _stop(self) -> None:
        self._done = True
        self._reader = None
        if self._parser is not None:  # the tree built so far goes now, and the parser to the next file
            _give_back(self._tags, self._parser, closed=False)
            self._parser = None
