"""The metadata analyser: items read from a delivery's XML and CSV manifest in the pass that bags them.

It watches every ``*.xml`` payload file and ``items.csv`` at the delivery's
root (see :mod:`preservation.analysis` for the protocol).  Each file is
parsed as its chunks pass, on the thread that copies it; what it yields is
a few small records, kept in a spool until the ingest transaction writes
them as items (:func:`preservation.metadata.items.register_items`).
Problems are MD warnings: metadata never stops a delivery from being
preserved as bytes.
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy.orm import Session

from preservation import codes
from preservation.bagit import Observer
from preservation.findings import FindingList
from preservation.metadata import dc, jats, manifest_csv, onix
from preservation.metadata.items import register_items
from preservation.metadata.records import Note, RecordSpool
from preservation.metadata.xmlstream import XmlObserver

READERS = {jats.ROOT: jats.JatsReader, **{root: onix.OnixReader for root in onix.ROOTS}, "": dc.DublinCoreReader}
"""The reader for each root element; any other root is tried as Dublin Core, which may find nothing."""
TAGS = (*jats.TAGS, *onix.TAGS, *dc.TAGS)
SPOOL_MEMORY = 8 * 1024 * 1024
"""Records kept in memory before the spool moves to a temporary file (about 15,000 items)."""


class MetadataAnalyser:
    """One ingest's metadata extraction (see the module's documentation)."""

    name = "metadata"
    reads_staged_payload = False

    def __init__(self, spool_memory: int = SPOOL_MEMORY) -> None:
        self._spool = RecordSpool(spool_memory)
        self._notes: list[tuple[str, Note]] = []
        self._lock = threading.Lock()

    def observer(self, path: str, size: int) -> Observer | None:
        if path == manifest_csv.PATH:
            return manifest_csv.CsvObserver(path, self._spool.add, self._noted)
        if path[-4:].lower() == ".xml":
            return XmlObserver(path, READERS, TAGS, self._spool.add, self._noted)
        return None

    def finish(self, bag_root: str, findings: FindingList) -> None:
        with self._lock:
            notes, self._notes = self._notes, []
        for path, (code, message, params) in notes:
            codes.note(findings, code, message, path, **params)

    def register(self, session: Session, package_id: str, findings: FindingList) -> dict[str, Any]:
        try:
            return register_items(session, package_id, self._spool, findings)
        finally:
            self._spool.close()

    def _noted(self, path: str, notes: list[Note]) -> None:
        if notes:
            with self._lock:
                self._notes.extend((path, note) for note in notes)
