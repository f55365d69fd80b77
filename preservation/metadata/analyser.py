"""The metadata analyser: items read from a delivery's XML and CSV manifest in the pass that bags them.

It watches every ``*.xml`` payload file and ``items.csv`` at the delivery's
root (see :mod:`preservation.analysis` for the protocol).  Each XML file's
chunks, as they pass, go to a parsing process of the ingest's own
(:mod:`preservation.metadata.parsing`), so the copying threads never hold
the interpreter lock to parse; ``items.csv`` is read on the copying thread.
What they yield is a few small records, kept in a spool until the ingest
transaction writes them as items
(:func:`preservation.metadata.items.register_items`).
Problems are MD warnings: metadata never stops a delivery from being
preserved as bytes.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from sqlalchemy.orm import Session

from preservation import codes
from preservation.bagit import Observer
from preservation.findings import FindingList
from preservation.metadata import manifest_csv
from preservation.metadata.items import register_items
from preservation.metadata.parsing import READERS, TAGS, ParserProcess
from preservation.metadata.records import Note, RecordSpool
from preservation.metadata.xmlstream import XmlObserver
SPOOL_MEMORY = 8 * 1024 * 1024
"""Records kept in memory before the spool moves to a temporary file (about 15,000 items)."""


class MetadataAnalyser:
    """One ingest's metadata extraction (see the module's documentation)."""

    name = "metadata"
    reads_staged_payload = False

    def __init__(self, spool_memory: int = SPOOL_MEMORY, *, in_process: bool = False) -> None:
        """``in_process``: parse on the copying threads, as a test of the readers may want (no child process)."""
        self._spool = RecordSpool(spool_memory)
        self._notes = _Notes()
        # neither the parser nor its threads hold the analyser: dropped unfinished, it ends its child (below)
        self._parser = None if in_process else ParserProcess(self._spool.add_lines, self._notes.add)
        # closed by the ingest on every exit (close); one dropped without it still ends its child when it goes
        # (the finalizer holds the parser, and through it the spool and notes, never the analyser)
        self._closer = weakref.finalize(self, self._parser.close) if self._parser is not None else None

    def observer(self, path: str, size: int) -> Observer | None:
        if path == manifest_csv.PATH:
            return manifest_csv.CsvObserver(path, self._spool.add, self._notes.add)
        if path[-4:].lower() == ".xml":
            if self._parser is not None:
                return self._parser.observer(path)
            return XmlObserver(path, READERS, TAGS, self._spool.add, self._notes.add)
        return None

    @property
    def parser(self) -> ParserProcess | None:
        """The parsing process (None when parsing in process)."""
        return self._parser

    def finish(self, bag_root: str, findings: FindingList) -> None:
        if self._parser is not None:
            self._parser.finish()  # every file answered (or noted MD018)
        notes = self._notes.take()
        for path, (code, message, params) in notes:
            codes.note(findings, code, message, path, **params)

    def register(self, session: Session, package_id: str, findings: FindingList) -> dict[str, Any]:
        try:
            return register_items(session, package_id, self._spool, findings)
        finally:
            self._spool.close()

    def close(self) -> None:
        """The ingest goes no further: end the parsing child (without waiting for its answers) and drop the
        spool's records; nothing is left for the garbage collector (:meth:`preservation.analysis.Analysis.close`)."""
        if self._closer is not None:
            self._closer()
        self._spool.close()


class _Notes:
    """The notes of a delivery's files, added from the copying threads and the parser's answering thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._notes: list[tuple[str, Note]] = []

    def add(self, path: str, notes: list[Note]) -> None:
        if notes:
            with self._lock:
                self._notes.extend((path, note) for note in notes)

    def take(self) -> list[tuple[str, Note]]:
        with self._lock:
            notes, self._notes = self._notes, []
        return notes
