"""Preservation policies: YAML files validated into typed objects.

A bad policy is refused on load with an error that names the field, so a
typo can never silently weaken how content is kept.
"""

from __future__ import annotations

import hashlib
import re
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, field_validator, model_validator

from preservation import codes
from preservation.errors import PolicyError
from storage_adapters.hashing import SUPPORTED_ALGORITHMS

OrgType = Literal["university", "cas", "institute"]
AccessMode = Literal["dark", "trigger", "pca", "open"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReplicationPolicy(_Strict):
    copies: int = Field(ge=1, le=20)
    organisation_types: list[OrgType] = Field(default_factory=list)
    min_regions: int = Field(default=1, ge=1, le=20)

    @model_validator(mode="after")
    def _consistent(self) -> "ReplicationPolicy":
        if len(set(self.organisation_types)) != len(self.organisation_types):
            raise ValueError("organisation_types lists a type twice")
        if len(self.organisation_types) > self.copies:
            raise ValueError(
                f"organisation_types asks for {len(self.organisation_types)} kinds of node but copies is {self.copies}"
            )
        if self.min_regions > self.copies:
            raise ValueError(f"min_regions ({self.min_regions}) cannot exceed copies ({self.copies})")
        return self


class AuditPolicy(_Strict):
    interval_days: float = Field(gt=0, le=3650)
    digest: str = "sha256"
    read_budget_bytes_per_day: int = Field(default=2 * 10**12, gt=0)
    challenge_interval_days: float = Field(default=7, gt=0)

    @field_validator("digest")
    @classmethod
    def _known_digest(cls, v: str) -> str:
        if v not in SUPPORTED_ALGORITHMS:
            raise ValueError(f"unknown digest {v!r}; use one of {', '.join(SUPPORTED_ALGORITHMS)}")
        return v


class RepairPolicy(_Strict):
    max_attempts: int = Field(default=5, ge=1, le=100)


class RetentionPolicy(_Strict):
    mode: Literal["none", "GOVERNANCE", "COMPLIANCE"] = "none"
    days: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _days_with_mode(self) -> "RetentionPolicy":
        if self.mode != "none" and self.days <= 0:
            raise ValueError("retention.days must be positive when a retention mode is set")
        return self


class AccessPolicy(_Strict):
    default_mode: AccessMode = "dark"
    grant_days: int = Field(default=30, ge=1, le=3650)


class DeliveryPolicy(_Strict):
    """Limits on what an archive delivery may expand to, counted while it is decompressed."""

    max_expansion_ratio: float = Field(default=64, ge=2, le=1_000_000)
    """Decompressed bytes per byte of archive (past the first MiB) before it is refused as a bomb."""
    max_expanded_bytes: int = Field(default=4 * 1024**4, ge=1024**2)
    """Decompressed bytes one archive may produce in all."""


MATCH_RULES = ("identifier", "title_year")
BAG_INFO_LABEL = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"


class VersionsPolicy(_Strict):
    """How ``preserve ingest`` finds, without ``--version-of``, the package a delivery is the next version of."""

    match_on: list[Literal[MATCH_RULES]] = Field(default_factory=list, max_length=2)  # type: ignore[valid-type]
    """The rules tried in order (docs/versions.md): ``identifier`` (the same value of ``identifier_field`` in
    bag-info), ``title_year`` (the same ``title_field`` and year); none by default."""
    identifier_field: str = Field(default="External-Identifier", pattern=BAG_INFO_LABEL)
    title_field: str = Field(default="Title", pattern=BAG_INFO_LABEL)

    @field_validator("match_on")
    @classmethod
    def _once_each(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("match_on names a rule twice")
        return v


PUID_FORM = r"(?:x-)?[a-z]{3}/[0-9]{1,5}"
FORMAT_FLAGS = ("unidentified", "extension_only", "encrypted", "drm", "invalid", "withdrawn")
"""What a format policy may name beside PUIDs: files nothing identified, identified by name only,
encrypted, DRM-locked, failing validation, or of a PRONOM entry the policy lists as withdrawn."""


def _format_or_flag(value: str) -> str:
    if value in FORMAT_FLAGS or re.fullmatch(PUID_FORM, value):
        return value
    raise ValueError(f"{value!r} is neither a PRONOM PUID (fmt/NN, x-fmt/NN) nor one of {', '.join(FORMAT_FLAGS)}")


class FormatsPolicy(_Strict):
    """Format identification and validation at ingest, and which formats are at risk (docs/formats.md)."""

    identify: StrictBool = True
    """Identify every payload file (PRONOM, with FIDO's signatures) in the bagging pass."""
    validate_files: StrictBool = True
    """Check PDF, XML (JATS, ONIX), EPUB and images in child processes, under the limits below."""
    time_limit_seconds: float = Field(default=30, gt=0, le=3600)
    memory_limit_mib: int = Field(default=1024, ge=128, le=65536)
    workers: int = Field(default=2, ge=1, le=64)
    at_risk: list[str] = Field(default_factory=lambda: ["unidentified", "encrypted", "drm", "invalid", "withdrawn"])
    """PUIDs or flags the format report counts as at risk."""
    unacceptable: list[str] = Field(default_factory=list)
    """PUIDs or flags whose files refuse the delivery."""
    withdrawn: list[str] = Field(default_factory=list)
    """PRONOM entries the consortium treats as withdrawn (FIDO's signature files do not mark them)."""
    refuse: list[str] = Field(default_factory=list)
    """Finding codes (FMT…, FMV…) that refuse the delivery instead of warning."""

    @field_validator("at_risk", "unacceptable")
    @classmethod
    def _formats_or_flags(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("lists an entry twice")
        return [_format_or_flag(x) for x in v]

    @field_validator("withdrawn")
    @classmethod
    def _puids(cls, v: list[str]) -> list[str]:
        for x in v:
            if not re.fullmatch(PUID_FORM, x):
                raise ValueError(f"{x!r} is not a PRONOM PUID (fmt/NN, x-fmt/NN)")
        return v

    @field_validator("refuse")
    @classmethod
    def _format_codes(cls, v: list[str]) -> list[str]:
        for x in v:
            spec = codes.CODES.get(x)
            if spec is None or spec.family not in ("FMT", "FMV"):
                raise ValueError(f"{x!r} is not a format finding code (FMT…, FMV…; see docs/formats.md)")
        return v


class Policy(_Strict):
    name: str = Field(min_length=1, max_length=60, pattern=r"^[A-Za-z0-9_.-]+$")
    version: int = Field(ge=1)
    description: str = ""
    replication: ReplicationPolicy
    digests: list[str] = Field(min_length=1)
    audit: AuditPolicy
    repair: RepairPolicy = RepairPolicy()
    retention: RetentionPolicy = RetentionPolicy()
    access: AccessPolicy = AccessPolicy()
    delivery: DeliveryPolicy = DeliveryPolicy()
    formats: FormatsPolicy = FormatsPolicy()
    versions: VersionsPolicy = VersionsPolicy()
    source_digest: str = ""

    @field_validator("digests")
    @classmethod
    def _digests(cls, v: list[str]) -> list[str]:
        for d in v:
            if d not in SUPPORTED_ALGORITHMS:
                raise ValueError(f"unknown digest {d!r}; use one of {', '.join(SUPPORTED_ALGORITHMS)}")
        if "sha256" not in v or "sha512" not in v:
            raise ValueError("digests must include sha256 and sha512 (BagIt manifests for both are required)")
        if len(set(v)) != len(v):
            raise ValueError("digests lists an algorithm twice")
        return v

    @model_validator(mode="after")
    def _audit_digest_is_kept(self) -> "Policy":
        if self.audit.digest not in self.digests:
            raise ValueError(f"audit.digest {self.audit.digest!r} must be one of digests {self.digests}")
        return self

    @property
    def label(self) -> str:
        """How events name this policy: ``name@version``."""
        return f"{self.name}@{self.version}"


def load_policy(path: str | Path | Traversable) -> Policy:
    """Load and validate a policy file (or packaged resource); raises PolicyError naming the bad field."""
    if isinstance(path, str):
        path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise PolicyError(f"cannot read it ({e.strerror})", source=str(path)) from e
    try:
        data = yaml.safe_load(raw.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise PolicyError(f"not valid UTF-8 YAML: {e}", source=str(path)) from e
    if not isinstance(data, dict):
        raise PolicyError("the file must hold a mapping", source=str(path))
    data["source_digest"] = hashlib.sha256(raw).hexdigest()
    try:
        return Policy(**data)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            field = ".".join(str(p) for p in err["loc"]) or "(top level)"
            problems.append(f"field {field!r}: {err['msg']}")
        raise PolicyError("; ".join(problems), source=str(path)) from e

