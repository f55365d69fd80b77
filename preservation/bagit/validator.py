"""Validate a local bag against RFC 8493 (BagIt 0.93 to 1.0) and, optionally, a BagIt profile.

>>> report = validate_bag("/staging/pkg-123", profile=default_profile())
>>> report.valid, [f.code for f in report.errors]

Every problem is reported, never only the first.  Each file is read once,
for all algorithms of all manifests that list it, on ``workers`` threads;
``completeness_only`` skips reading payload bytes altogether.
"""

from __future__ import annotations

import os
from contextlib import closing
from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from typing import Any, Mapping

from preservation import codes
from preservation.errors import InvalidRequest, NotFound
from preservation.findings import Finding, FindingList

from .inspection import BagInspection
from .pipeline import FilePipeline, Job, Progress, ProgressMeter
from .profile import BagItProfile, check_profile, load_profile
from .records import RecordTable
from .tagfiles import BagInfo

ProfileSource = BagItProfile | Mapping[str, Any] | str | os.PathLike[str] | Traversable
"""A loaded profile, a profile as a mapping, or where to read one (a path or a packaged resource)."""


@dataclass
class ValidationReport:
    """The outcome of :func:`validate_bag`: every finding, and the digests of what was read."""

    path: str
    version: str | None
    bag_info: BagInfo
    payload_algorithms: tuple[str, ...]
    tag_algorithms: tuple[str, ...]
    findings: FindingList
    files: RecordTable
    """Path, size and digests (every supported manifest algorithm) of each file read."""
    payload_files: int = 0
    payload_bytes: int = 0
    payload_paths: tuple[str, ...] = ()
    tag_files: tuple[str, ...] = ()
    has_fetch: bool = False
    completeness_only: bool = False
    profile: str | None = None
    collisions: list[Finding] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return self.findings.ok

    @property
    def errors(self) -> list[Finding]:
        return self.findings.errors

    @property
    def warnings(self) -> list[Finding]:
        return self.findings.warnings

    @property
    def payload_oxum(self) -> str:
        """What Payload-Oxum should say for the payload on disk."""
        return f"{self.payload_bytes}.{self.payload_files}"

    def to_dict(self, include_files: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": self.path,
            "valid": self.valid,
            "version": self.version,
            "completeness_only": self.completeness_only,
            "profile": self.profile,
            "payload_algorithms": list(self.payload_algorithms),
            "tag_algorithms": list(self.tag_algorithms),
            "payload_oxum": self.payload_oxum,
            "bag_info": self.bag_info.as_dict(),
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "findings": self.findings.to_list(),
        }
        if include_files:
            out["files"] = self.files.to_list()
        return out


def validate_bag(
    path: str | os.PathLike[str],
    *,
    workers: int = 2,
    profile: ProfileSource | None = None,
    completeness_only: bool = False,
    progress: Progress | None = None,
) -> ValidationReport:
    """Validate the bag in local directory ``path``; problems are findings in the report.

    ``progress(bytes, files)`` gets running totals of what has been read.

    Raises NotFound when ``path`` does not exist, InvalidRequest when it is
    not a directory, PolicyError when ``profile`` cannot be loaded.
    """
    root = os.fspath(path)
    loaded = _load(profile)
    if not os.path.exists(root):
        raise NotFound(f"no bag at {root}")
    if not os.path.isdir(root):
        raise InvalidRequest(f"{root} is not a directory: validate an unpacked bag")
    inspection = BagInspection(root)
    files = RecordTable(inspection.algorithms)
    if not completeness_only and inspection.algorithms:
        _read_and_verify(inspection, files, workers, ProgressMeter(progress))
    inspection.check_oxum()
    report = build_report(inspection, files, completeness_only)
    if loaded is not None:
        report.profile = loaded.identifier
        report.findings.extend(check_profile(report, loaded))
    return report


def validate_profile(
    report_or_bag: ValidationReport | str | os.PathLike[str], profile: ProfileSource
) -> FindingList:
    """The profile findings (PRF codes) of a report, or of the bag at a path (checked for completeness only)."""
    loaded = _load(profile)
    assert loaded is not None
    report = (
        report_or_bag
        if isinstance(report_or_bag, ValidationReport)
        else validate_bag(report_or_bag, completeness_only=True)
    )
    return FindingList(check_profile(report, loaded))


def _load(profile: ProfileSource | None) -> BagItProfile | None:
    if profile is None or isinstance(profile, BagItProfile):
        return profile
    if isinstance(profile, Mapping):
        return BagItProfile.from_dict(profile, source="<profile>")
    return load_profile(profile)


def _read_and_verify(inspection: BagInspection, files: RecordTable, workers: int, meter: ProgressMeter) -> None:
    root = os.fsencode(inspection.root) + b"/"
    pipeline = FilePipeline(inspection.algorithms, workers)
    jobs = (
        Job(path, root + path.encode("utf-8", "surrogateescape"), None, None, None, size)
        for path, size in inspection.files_to_verify()
    )
    with closing(pipeline.run(jobs)) as outcomes:
        for outcome in outcomes:
            path = outcome.tag
            if outcome.error is not None:
                codes.note(
                    inspection.findings,
                    codes.BAG_FILE_UNREADABLE,
                    f"cannot be read: {outcome.error.strerror or outcome.error}",
                    path,
                )
                continue
            files.append(path, outcome.size, outcome.raw)
            inspection.verify(path, files.digests_at(len(files) - 1))
            meter.add(outcome.size)
    meter.finish()


def build_report(inspection: BagInspection, files: RecordTable, completeness_only: bool) -> ValidationReport:
    """The report of an inspection whose files (those in ``files``) have been read and verified."""
    metadata = inspection.metadata
    collision_codes = (codes.NAMES_COLLIDE_NFC, codes.NAMES_COLLIDE_CASE)
    return ValidationReport(
        path=inspection.root,
        version=metadata.version,
        bag_info=metadata.bag_info,
        payload_algorithms=tuple(metadata.manifests),
        tag_algorithms=tuple(metadata.tag_manifests),
        findings=inspection.findings,
        files=files,
        payload_files=len(inspection.payload),
        payload_bytes=inspection.payload_octets,
        payload_paths=tuple(inspection.payload),
        tag_files=tuple(inspection.tag_files),
        has_fetch=inspection.has_fetch,
        completeness_only=completeness_only,
        collisions=[f for f in inspection.findings if f.code in collision_codes],
    )
