"""What ingest learns from a delivery's bytes in the pass that bags them: formats, article metadata …

An :class:`Analyser` is asked, for each payload file and before the file is
copied, whether it wants to see its bytes (:meth:`Analyser.observer`).  Its
observer is then fed the file's chunks on the thread that copies them (see
:class:`preservation.bagit.Observer`), so no file is read twice.  When the
bag is written, still in staging, :meth:`Analyser.finish` may look at what
it learnt (and, for the few files it must open whole, such as a PDF to
validate, read them from the staged bag); its error findings refuse the
delivery.  Inside the ingest transaction :meth:`Analyser.register` writes
its rows, so a package and what was learnt of it appear together or not at
all.

A new version's unchanged files need not be staged (``docs/versions.md``,
section 4): an analyser that opens staged files says, through the optional
``reusable`` and ``carry_over`` (see :class:`Analyser`), which of them it can
do without, and carries over what the version before learnt of them.

:class:`Analysis` runs several analysers as one: one observer per file
fanned out to those that want it, each guarded so that an analyser that
raises loses its analysis of that file (a ``CA001`` warning) and never
stops the bagging.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Mapping, Protocol, Sequence

from sqlalchemy.orm import Session

from preservation import codes
from preservation.bagit import BagResult, Observer
from preservation.catalog.db import Catalog
from preservation.findings import FindingList
from preservation.text import for_log

log = logging.getLogger(__name__)


class Analyser(Protocol):
    """One kind of analysis; a new instance for each ingest (it may keep per-delivery state)."""

    name: str
    reads_staged_payload: bool
    """Whether :meth:`finish` opens payload files in the staged bag (an analyser that does not say is
    taken to): a new version's bag leaves out an unchanged file only when each analyser that does says,
    through ``reusable`` below, that it can do without it."""

    def observer(self, path: str, size: int) -> Observer | None:
        """An observer for the payload file ``path`` (``data/…``) of ``size`` bytes, or None to skip it.

        Called on the bagging thread, in delivery order, before the file is copied.
        """

    def finish(self, bag_root: str, findings: FindingList) -> None:
        """Called once the bag is written at ``bag_root`` (staging); add findings (errors refuse the delivery)."""

    def register(self, session: Session, package_id: str, findings: FindingList) -> dict[str, Any]:
        """Write what was learnt, inside the ingest transaction; return a short JSON-safe summary."""

    # Optional, for an analyser that reads staged payload (without them, it gets every file staged):
    #   reusable(catalog, previous_id, previous_number, paths) -> set[str]
    #       which of ``paths`` it can do without in staging, should their bytes be those of the version before;
    #   carry_over(unchanged: set[str]) -> None
    #       those of them whose bytes proved the same (it carries over what it learnt of them there).
    # Optional for any analyser holding something beyond its objects (a child process, a temporary file):
    #   close() -> None
    #       the ingest goes no further (refused, failed, or registered): let it go; called once or more.


KnownDigests = Callable[[list[tuple[str, int]]], Mapping[str, bytes]]
"""What the bag writer asks a batch at a time: the digests a kept copy has of those files (``create_bag``)."""


class Analysis:
    """Several analysers run as one over a delivery."""

    def __init__(self, analysers: Sequence[Analyser]) -> None:
        self.analysers = tuple(analysers)
        self._failures: list[tuple[str, str, str]] = []
        self._lock = threading.Lock()

    def observe(self, path: str, size: int) -> Observer | None:
        """The observer for one payload file: None when no analyser wants it.

        One object per interested analyser and file, and a fan-out only when
        several want it: these live as long as the pipeline's batch of files,
        and every object kept alive across a batch of small files costs the
        ingest garbage-collector passes.
        """
        guarded: list[_Guarded] = []
        for analyser in self.analysers:
            try:
                observer = analyser.observer(path, size)
            except Exception as e:  # noqa: BLE001 - an analyser's failure costs its analysis, never the ingest
                self._failed(analyser.name, path, e)
                continue
            if observer is not None:
                guarded.append(_Guarded(self, analyser.name, path, observer))
        if not guarded:
            return None
        return guarded[0] if len(guarded) == 1 else _Fanout(tuple(guarded))

    def unstaged(self, catalog: Catalog, previous_id: str, previous_number: int, known: KnownDigests
                 ) -> KnownDigests:
        """``known`` (the digests the version ``previous_id`` holds at a batch of paths) narrowed to the files
        that no analyser needs to open in staging (the writer stages the rest, and any whose bytes differ);
        :meth:`bagged` then tells the analysers which of them had those bytes."""
        readers = [a for a in self.analysers if getattr(a, "reads_staged_payload", True)]
        if not readers:
            return known

        def ask(batch: list[tuple[str, int]]) -> dict[str, bytes]:
            found = dict(known(batch))
            for analyser in readers:
                reusable = getattr(analyser, "reusable", None)
                free = reusable(catalog, previous_id, previous_number, sorted(found)) if reusable else set()
                found = {path: digests for path, digests in found.items() if path in free}
            return found

        return ask

    def bagged(self, bag: BagResult) -> None:
        """Tell the analysers which files offered by :meth:`unstaged` have the bytes the version before holds:
        those the writer did not write, their size and digests being the ones it was given (a file whose
        bytes differ is written); what was learnt of them there is carried over."""
        takers = [a.carry_over for a in self.analysers if getattr(a, "carry_over", None) is not None]
        if not takers or not bag.unwritten_rows:
            return
        unchanged = {bag.payload.path_at(i) for i in bag.unwritten_rows}
        for carry_over in takers:
            carry_over(unchanged)

    def finish(self, bag_root: str) -> FindingList:
        findings = FindingList()
        for analyser in self.analysers:
            try:
                analyser.finish(bag_root, findings)
            except Exception as e:  # noqa: BLE001
                self._failed(analyser.name, "", e)
        for name, path, error in self._failures:
            codes.note(findings, codes.ANALYSER_FAILED, f"the {name} analyser failed: {error}", path or None,
                       analyser=name)
        self._failures.clear()
        return findings

    def register(self, session: Session, package_id: str) -> tuple[dict[str, Any], FindingList]:
        """Each analyser's rows, in the caller's transaction; a failure here is the ingest's failure."""
        findings = FindingList()
        summary = {a.name: a.register(session, package_id, findings) for a in self.analysers}
        return summary, findings

    def close(self) -> None:
        """Every exit of an ingest, refused, failed or registered: each analyser's ``close`` (where it has one)."""
        for analyser in self.analysers:
            close = getattr(analyser, "close", None)
            if close is not None:
                try:
                    close()
                except Exception as e:  # noqa: BLE001 - letting go never fails the ingest (nor hides its error)
                    # after finish() no finding can be reported any more: the operator's log says it
                    log.warning("analyser %s could not let go of its resources: %s", analyser.name,
                                for_log(f"{type(e).__name__}: {e}"))
                    self._failed(analyser.name, "", e)

    def _failed(self, name: str, path: str, error: BaseException) -> None:
        with self._lock:
            self._failures.append((name, path, for_log(f"{type(error).__name__}: {error}")))


class _Guarded:
    """Feeds one analyser's observer; if it raises, the analyser loses this file (a CA001 warning), the bagging goes on."""

    __slots__ = ("_analysis", "_name", "_path", "_observer")

    def __init__(self, analysis: Analysis, name: str, path: str, observer: Observer) -> None:
        self._analysis = analysis
        self._name = name
        self._path = path
        self._observer: Observer | None = observer

    def feed(self, chunk: bytes | memoryview) -> None:
        observer = self._observer
        if observer is not None:
            try:
                observer.feed(chunk)
            except Exception as e:  # noqa: BLE001
                self._drop(e)

    def close(self, size: int) -> None:
        observer = self._observer
        if observer is not None:
            try:
                observer.close(size)
            except Exception as e:  # noqa: BLE001
                self._drop(e)

    def close_known(self, size: int) -> None:
        observer = self._observer
        if observer is not None:
            try:
                getattr(observer, "close_known", observer.close)(size)
            except Exception as e:  # noqa: BLE001
                self._drop(e)

    def _drop(self, error: BaseException) -> None:
        self._observer = None
        self._analysis._failed(self._name, self._path, error)


class _Fanout:
    """One file's observers, when several analysers want it."""

    __slots__ = ("_guarded",)

    def __init__(self, guarded: tuple[_Guarded, ...]) -> None:
        self._guarded = guarded

    def feed(self, chunk: bytes | memoryview) -> None:
        for guarded in self._guarded:
            guarded.feed(chunk)

    def close(self, size: int) -> None:
        for guarded in self._guarded:
            guarded.close(size)

    def close_known(self, size: int) -> None:
        for guarded in self._guarded:
            guarded.close_known(size)
