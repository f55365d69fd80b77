"""What a benchmark reports: contenders, their ratio and whether the target is met."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from bench.measure import Measured


@dataclass
class Contender:
    name: str
    seconds: float
    files: int
    bytes: int
    peak_rss: int
    detail: str = ""
    others: float = 0.0
    """Fraction of the machine's CPU that other processes used meanwhile."""
    cpu: float = 0.0
    """CPU seconds of the whole child process (set-up and start-up included)."""
    runs: list[float] = field(default_factory=list)
    """Seconds of every run when the fastest of several was kept (``bench.measure.best_of``)."""

    @classmethod
    def from_measured(cls, name: str, m: Measured, detail: str = "") -> "Contender":
        return cls(name, m.seconds, int(m.result["files"]), int(m.result["bytes"]), m.peak_rss, detail, m.others,
                   m.cpu, list(m.result.get("runs", [])))

    @property
    def files_per_s(self) -> float:
        return self.files / self.seconds if self.seconds else 0.0

    @property
    def bytes_per_s(self) -> float:
        return self.bytes / self.seconds if self.seconds else 0.0


@dataclass
class Comparison:
    """Ours against a reference on one corpus; ``ratio`` > 1 means ours is faster."""

    benchmark: str
    corpus: str
    ours: Contender
    reference: Contender
    target: float | None = None
    target_on: str = "ratio"  # "ratio" or "normalised"
    normalised: float | None = None
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.reference.seconds / self.ours.seconds if self.ours.seconds else float("inf")

    @property
    def disturbed(self) -> float:
        """The larger share of the CPU other processes took during either measurement."""
        return max(self.ours.others, self.reference.others)

    @property
    def judged(self) -> float:
        return self.normalised if self.target_on == "normalised" and self.normalised is not None else self.ratio

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.judged >= self.target

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(ratio=self.ratio, met=self.met)
        return out


@dataclass
class CatalogScale:
    """One catalog back end filled with ``rows`` file rows."""

    backend: str
    rows: int
    packages: int
    replicas: int
    register_seconds: float
    register_peak_rss: int
    status_seconds: float
    plan_seconds: float
    query_peak_rss: int
    plan_source: str
    planned_replicas: int
    planned_bytes: int
    others: float = 0.0
    notes: list[str] = field(default_factory=list)

    STATUS_TARGET = 2.0
    PLAN_TARGET = 2.0
    MEMORY_TARGET = 500 * 1024 * 1024

    @property
    def met(self) -> bool:
        return (
            self.status_seconds < self.STATUS_TARGET
            and self.plan_seconds < self.PLAN_TARGET
            and max(self.register_peak_rss, self.query_peak_rss) < self.MEMORY_TARGET
        )

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["met"] = self.met
        return out


@dataclass
class Skipped:
    benchmark: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
