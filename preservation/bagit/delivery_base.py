"""What every kind of delivery shares: entries, limits, totals and the name checks.

A delivery is what a publisher hands over: a directory, an existing bag, or
a tar/zip archive.  :meth:`Delivery.check` inspects all of it before a byte
is written and returns every problem as a coded finding;
:meth:`Delivery.entries` then streams the regular files, in a deterministic
order, to the bag writer.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable, ClassVar, Iterator

from preservation import codes
from preservation.errors import DeliveryRejected
from preservation.findings import FindingList

from .names import control_characters, find_collisions, is_valid_utf8_text, name_problem, path_too_long, shown

DEFAULT_MAX_DEPTH = 100
"""Deepest file path (in segments) a delivery may hold; real deliveries stay far below."""
MAX_COMPRESSION_RATIO = 64.0
"""An archive (or a zip member) that expands to more than this many times its size is refused as a bomb ..."""
RATIO_MIN_SIZE = 1024 * 1024
"""... once it expands to at least this many bytes (small, very compressible files are common)."""
MAX_TOTAL_BYTES = 4 * 1024**4
"""An archive may expand to at most this many bytes in all."""
MAX_MEMBERS = 10_000_000
"""An archive may hold at most this many members."""


@dataclass(frozen=True)
class DeliveryLimits:
    max_depth: int = DEFAULT_MAX_DEPTH
    max_compression_ratio: float = MAX_COMPRESSION_RATIO
    ratio_min_size: int = RATIO_MIN_SIZE
    max_total_bytes: int = MAX_TOTAL_BYTES
    max_members: int = MAX_MEMBERS


@dataclass(frozen=True, slots=True)
class DeliveryEntry:
    """One regular file of a delivery.

    ``open()`` returns a binary file object.  For archives it is valid only
    until the next entry is requested (members are streamed, never
    extracted).  ``open_fd`` is set when the file is a local regular file:
    it returns a raw descriptor (the writer then avoids Python file objects)
    and may be called once, on any thread; it raises :class:`EntryReplaced`
    when the file is no longer the one the check saw.
    """

    path: str
    """'/'-separated path relative to the delivery root."""
    size: int
    open: Callable[[], BinaryIO]
    open_fd: Callable[[], int] | None = None


class ExpansionLimit(Exception):
    """Decompression produced more bytes than the archive's limits allow; ``code`` says which limit."""

    def __init__(self, code: str, message: str, produced: int, limit: float) -> None:
        super().__init__(message)
        self.code = code
        self.produced = produced
        self.limit = limit


class ExpansionMeter:
    """Counts the bytes that decompressing one archive has produced, and stops it at its limits.

    The ratio limit is the archive's size times ``max_compression_ratio``
    (never below ``ratio_min_size``); the cap is ``max_total_bytes``.
    :meth:`add` raises :class:`ExpansionLimit` as soon as either is passed,
    so a bomb is stopped after producing at most one read more than that.
    Framing bytes (tar headers and padding, a fixed amount per member,
    given to :meth:`credit`) count towards the cap but not the ratio: a tar
    of many small files is mostly zero padding and compresses past 100:1.
    The member limit bounds what framing can bring in.
    """

    def __init__(self, archive_size: int, limits: "DeliveryLimits") -> None:
        self.produced = 0
        self.framing = 0
        self.ratio = limits.max_compression_ratio
        self.ratio_limit = max(limits.ratio_min_size, int(limits.max_compression_ratio * archive_size))
        self.total_limit = limits.max_total_bytes
        self.archive_size = archive_size

    def add(self, count: int) -> None:
        self.produced += count
        if self.produced > self.total_limit:
            raise ExpansionLimit(
                codes.TOTAL_SIZE_LIMIT,
                f"the archive expands to more than {self.total_limit} bytes; decompression stopped",
                self.produced,
                self.total_limit,
            )
        if self.produced - self.framing > self.ratio_limit:
            raise ExpansionLimit(
                codes.COMPRESSION_RATIO,
                f"{self.archive_size} bytes expanded past {self.produced} (more than {self.ratio:g} times): "
                "a compression bomb; decompression stopped",
                self.produced,
                self.ratio,
            )

    def credit(self, framing: int) -> None:
        """Count ``framing`` bytes already produced (or about to be) as the archive's structure, not content."""
        self.framing += framing


class EntryReplaced(OSError):
    """A delivery file or directory is no longer the one the check saw (swapped, moved, relinked)."""


@dataclass
class DeliveryTotals:
    files: int = 0
    bytes: int = 0


class Delivery(ABC):
    """A delivery to be bagged; see :func:`preservation.bagit.delivery.open_delivery`."""

    kind: ClassVar[str] = ""
    sequential: ClassVar[bool] = False
    """True when entries must be consumed in order, one at a time (archives)."""
    stream_errors: ClassVar[tuple[type[Exception], ...]] = ()
    """What reading an entry raises, besides OSError, when the delivery itself is broken (a corrupt archive)."""

    def __init__(self, source: str, *, strict: bool = True, limits: DeliveryLimits | None = None) -> None:
        self.source = source
        self.strict = strict
        self.limits = limits or DeliveryLimits()
        self.totals: DeliveryTotals | None = None
        self._findings: FindingList | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.source!r}, strict={self.strict})"

    def check(self, *, refresh: bool = False) -> FindingList:
        """Inspect the whole delivery and return every problem found (cached unless ``refresh``).

        Also sets :attr:`totals` (regular files and bytes).  Nothing is written.
        """
        if self._findings is None or refresh:
            findings = FindingList()
            totals = DeliveryTotals()
            self._inspect(findings, totals)
            if totals.files == 0:
                self.note(findings, codes.NO_FILES, "the delivery has no files to preserve", None)
            self._findings, self.totals = findings, totals
        return self._findings

    def require_acceptable(self) -> FindingList:
        """:meth:`check`, raising DeliveryRejected (with every finding) when there are errors."""
        findings = self.check()
        if not findings.ok:
            errors = findings.errors
            raise DeliveryRejected(
                f"{len(errors)} problem(s), first: {errors[0]}", findings=list(findings), source=self.source
            )
        return findings

    def rejected(self, code: str, message: str, path: str | None) -> DeliveryRejected:
        """A DeliveryRejected carrying one finding, for what goes wrong after the check."""
        findings = FindingList()
        codes.note(findings, code, message, path)
        return DeliveryRejected(f"{path or self.source}: {message}", findings=list(findings), source=self.source)

    @abstractmethod
    def entries(self) -> Iterator[DeliveryEntry]:
        """The regular files, in a deterministic order, streamed."""

    @abstractmethod
    def _inspect(self, findings: FindingList, totals: DeliveryTotals) -> None: ...

    def close(self) -> None:
        """Release open archive handles."""

    def __enter__(self) -> "Delivery":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- shared checks -------------------------------------------------------

    def note(self, findings: FindingList, code: str, message: str, path: str | None, **params: Any) -> None:
        codes.note(findings, code, message, path, strict=self.strict, **params)

    def check_name(self, findings: FindingList, path: str, name: str) -> None:
        """Problems of one name (the last segment of ``path``): encoding, control characters, portability."""
        if not is_valid_utf8_text(name):
            self.note(
                findings,
                codes.DELIVERY_NAME_NOT_UTF8,
                "the name is not valid UTF-8 and cannot be written to a manifest",
                shown(path),
            )
            return
        controls = control_characters(name)
        if controls:
            self.note(
                findings,
                codes.CONTROL_CHARACTER,
                f"the name contains control character(s) {', '.join(controls)}",
                shown(path),
                characters=controls,
            )
        problem = name_problem(name)
        if problem is not None:
            self.note(findings, codes.NAME_NOT_PORTABLE, problem, shown(path))

    def check_path_length(self, findings: FindingList, path: str) -> None:
        problem = path_too_long(path)
        if problem is not None:
            self.note(findings, codes.NAME_NOT_PORTABLE, problem, shown(path))

    def check_siblings(self, findings: FindingList, parent: str, names: list[str]) -> None:
        """Report sibling names that another filesystem would store as one."""
        for collision in find_collisions(names):
            path = f"{parent}/{collision.second}" if parent else collision.second
            code = codes.DELIVERY_COLLIDE_NFC if collision.kind == "nfc" else codes.DELIVERY_COLLIDE_CASE
            how = "NFC normalisation" if collision.kind == "nfc" else "case folding"
            self.note(
                findings,
                code,
                f"{shown(collision.second)!r} and {shown(collision.first)!r} are the same name after {how}",
                shown(path),
                other=shown(collision.first),
            )
