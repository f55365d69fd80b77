"""What the check of an archive remembers of every member, kept in temporary SQLite files, not in memory.

An archive has no directories to walk one at a time: duplicates, clashes
and colliding names can only be judged once every member has been seen, and
a zip's bag pass needs each entry the check read.  Both are rows in a private
SQLite database in a temporary file (at most 2 MiB of it in memory), so the
check's memory does not grow with the member count.
"""

from __future__ import annotations

import sqlite3
from typing import Iterator

from preservation import codes
from preservation.findings import FindingList

from .delivery_base import Delivery, DeliveryTotals
from .names import canonical_path, fold, shown, unsafe_reason
from .zipdir import CentralEntry


def scratch_database() -> sqlite3.Connection:
    """A private SQLite database in a temporary file, deleted when it is closed; at most 2 MiB of it in memory.

    The bag pass may read it from another thread than the check's, never
    from two at once.
    """
    # "" opens a private database in a temporary file
    db = sqlite3.connect("", check_same_thread=False)
    for pragma in ("journal_mode=OFF", "synchronous=OFF", "temp_store=FILE", "cache_size=-2048"):
        db.execute(f"PRAGMA {pragma}")
    return db


FILE, DIRECTORY, OTHER, IMPLIED = range(4)
"""Kinds of member row; implied rows are the directories above a member."""


class MemberIndex:
    """Every member path, kept in a temporary SQLite file rather than in memory, for the checks that need them all.

    Duplicates, file/directory clashes, colliding names and empty
    directories can only be judged once every member has been seen (an
    archive lists them in any order).  Rows go to disk in batches and the
    judging is a few sorted queries at :meth:`finish`, so memory stays flat
    whatever the member count (a set of paths cost about 730 bytes per
    member).  Paths are stored as UTF-8 with lone surrogates passed
    through, so undecodable names survive the round trip.
    """

    _BATCH = 10_000

    def __init__(self, delivery: Delivery, findings: FindingList, totals: DeliveryTotals) -> None:
        self.delivery = delivery
        self.findings = findings
        self.totals = totals
        self.members = 0
        self.over_size = False
        self.held_bag = False
        self._db = scratch_database()
        self._db.execute("CREATE TABLE member (path BLOB NOT NULL, parent BLOB NOT NULL, kind INTEGER NOT NULL)")
        self._db.create_function("folded_name", 1, _folded_name, deterministic=True)
        self._rows: list[tuple[bytes, bytes, int]] = []
        self._chain: frozenset[str] = frozenset()
        """The directories above the previous member, whose rows are already written."""

    def __enter__(self) -> "MemberIndex":
        return self

    def __exit__(self, *exc: object) -> None:
        self._db.close()

    def path_of(self, raw: str) -> str | None:
        """The canonical relative path of member name ``raw``; None (after reporting) when unsafe or the root."""
        name = raw.rstrip("/") if raw not in ("/", "") else raw
        reason = unsafe_reason(name)
        if reason is not None:
            code = codes.ABSOLUTE_PATH if reason == "absolute path" else codes.PATH_TRAVERSAL
            self.delivery.note(self.findings, code, f"{reason}: the member is never extracted", shown(raw))
            return None
        path = canonical_path(name)
        if path in ("", "."):
            return None
        depth = path.count("/") + 1
        if depth > self.delivery.limits.max_depth:
            self.delivery.note(
                self.findings,
                codes.TOO_DEEP,
                f"the member is {depth} levels deep (limit {self.delivery.limits.max_depth})",
                shown(path),
                limit=self.delivery.limits.max_depth,
            )
            return None
        return path

    def _add(self, path: str, kind: int) -> None:
        parent = path.rpartition("/")[0]
        self._rows.append((_blob(path), _blob(parent), kind))
        if parent and parent not in self._chain:
            segments = parent.split("/")
            chain = frozenset("/".join(segments[: i + 1]) for i in range(len(segments)))
            for directory in chain - self._chain:
                self._rows.append((_blob(directory), _blob(directory.rpartition("/")[0]), IMPLIED))
            self._chain = chain
        if len(self._rows) >= self._BATCH:
            self._flush()

    def _flush(self) -> None:
        self._db.executemany("INSERT INTO member (path, parent, kind) VALUES (?, ?, ?)", self._rows)
        self._rows.clear()

    def count_member(self) -> bool:
        """Count one member; False (after reporting once) when the member limit is passed."""
        self.members += 1
        if self.members > self.delivery.limits.max_members:
            self.delivery.note(
                self.findings,
                codes.TOTAL_SIZE_LIMIT,
                f"the archive has more than {self.delivery.limits.max_members} members; inspection stopped",
                None,
                limit=self.delivery.limits.max_members,
            )
            return False
        return True

    def add_file(self, path: str, size: int) -> None:
        self._add(path, FILE)
        self.delivery.check_path_length(self.findings, path)
        self.totals.files += 1
        self.totals.bytes += size
        limit = self.delivery.limits.max_total_bytes
        if self.totals.bytes > limit and not self.over_size:
            self.over_size = True
            self.delivery.note(
                self.findings,
                codes.TOTAL_SIZE_LIMIT,
                f"the archive expands to more than {limit} bytes",
                None,
                limit=limit,
            )
        if not self.held_bag and (path == "bagit.txt" or (path.count("/") == 1 and path.endswith("/bagit.txt"))):
            self.held_bag = True
            self.delivery.note(
                self.findings,
                codes.ARCHIVE_HOLDS_BAG,
                "the archive holds a bag; it will be bagged as payload (unpack it to keep it as it is)",
                shown(path),
            )

    def add_dir(self, path: str) -> None:
        self._add(path, DIRECTORY)

    def add_other(self, path: str) -> None:
        self._add(path, OTHER)

    def finish(self) -> None:
        """Judge every member path at once: names, collisions, duplicates, clashes, empty directories."""
        self._flush()
        self._names()
        note, findings = self.delivery.note, self.findings
        # one sorted pass: how often each path is a file, an explicit directory, a directory above a member
        rows = self._db.execute(
            "SELECT path, SUM(kind = ?) AS files, SUM(kind = ?) AS dirs, SUM(kind = ?) AS above FROM member"
            " GROUP BY path HAVING files > 1 OR (files > 0 AND dirs + above > 0) OR (dirs > 0 AND above = 0)",
            (FILE, DIRECTORY, IMPLIED),
        )
        for path, files, dirs, above in rows:
            shown_path = shown(_text(path))
            if files > 1:
                note(findings, codes.DUPLICATE_MEMBER, "the archive holds this path twice", shown_path)
            if files and dirs + above:
                note(findings, codes.FILE_AND_DIRECTORY, "the path is both a file and a directory", shown_path)
            elif dirs and not above:
                note(findings, codes.EMPTY_DIRECTORY, "an empty directory cannot be carried in a bag", shown_path)

    def _names(self) -> None:
        """Each distinct name once, then siblings that one filesystem or another would store as one."""
        rows = self._db.execute(
            "WITH distinct_paths AS MATERIALIZED (SELECT DISTINCT parent, path FROM member)"
            " SELECT parent, path, folded_name(path) AS folded FROM distinct_paths ORDER BY parent, folded, path"
        )
        check_name, check_siblings, findings = self.delivery.check_name, self.delivery.check_siblings, self.findings
        group: list[str] = []
        key: tuple[bytes, bytes] | None = None
        for parent, path, folded in rows:
            text = _text(path)
            name = text.rpartition("/")[2]
            check_name(findings, text, name)
            if (parent, folded) != key:
                if len(group) > 1 and key is not None:
                    check_siblings(findings, _text(key[0]), group)
                group, key = [], (parent, folded)
            group.append(name)
        if len(group) > 1 and key is not None:
            check_siblings(findings, _text(key[0]), group)


def _folded_name(path: bytes) -> bytes:
    """The key under which a case-insensitive filesystem stores the last segment of ``path``."""
    return _blob(fold(_text(path).rpartition("/")[2]))


def _blob(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _text(blob: bytes) -> str:
    return blob.decode("utf-8", "surrogatepass")


class ZipMembers:
    """The central directory's entries as the check read them, kept in a temporary SQLite file.

    One row per entry (raw name, flags, method, CRC, sizes, local header
    offset, attributes), with its kind and, when its local header was found,
    where its data ends.  Overlapping members are found by one sorted query,
    and the bag pass serves exactly the members the check saw without reading
    the directory again; memory stays flat whatever the member count
    (``zipfile`` keeps about 720 bytes a member).
    """

    _BATCH = 10_000
    _ENTRY = "seq, name, flags, method, crc, compressed, size, offset, system, attributes"

    def __init__(self) -> None:
        self._db = scratch_database()
        self._db.execute(
            "CREATE TABLE entry (seq INTEGER PRIMARY KEY, name BLOB NOT NULL, flags INTEGER, method INTEGER,"
            " crc INTEGER, compressed INTEGER, size INTEGER, offset INTEGER, system INTEGER, attributes INTEGER,"
            " kind INTEGER NOT NULL, data_end INTEGER)"
        )
        self._rows: list[tuple[int | bytes | None, ...]] = []
        self.complete = False
        """True once every entry of the directory was read and judged."""

    def close(self) -> None:
        self._db.close()

    def add(self, entry: CentralEntry, kind: int, data_end: int | None) -> None:
        self._rows.append((entry.index, entry.raw_name, entry.flags, entry.method, entry.crc, entry.compressed_size,
                           entry.size, entry.header_offset, entry.create_system, entry.external_attr, kind, data_end))
        if len(self._rows) >= self._BATCH:
            self._flush()

    def _flush(self) -> None:
        self._db.executemany(f"INSERT INTO entry VALUES ({', '.join('?' * 12)})", self._rows)
        self._rows.clear()

    def spans(self) -> Iterator[tuple[int, int, bytes]]:
        """(local header offset, end of data, raw name) of every member whose local header was found, by offset."""
        self._flush()
        yield from self._db.execute(
            "SELECT offset, data_end, name FROM entry WHERE data_end IS NOT NULL ORDER BY offset, data_end, name"
        )

    def files(self) -> Iterator[CentralEntry]:
        """The regular members, in directory order."""
        self._flush()
        for row in self._db.execute(f"SELECT {self._ENTRY} FROM entry WHERE kind = ? ORDER BY seq", (FILE,)):
            yield CentralEntry(*row)
