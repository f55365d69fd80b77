"""BagIt Profiles (https://bagit-profiles.github.io/bagit-profiles-specification/), loaded and checked.

A profile is policy data: :func:`load_profile` validates it and raises
PolicyError for anything it does not understand, rather than silently
ignoring a rule.  :func:`check_profile` turns a validation report into PRF
findings.  One local extension: ``Preserve-Name-Collisions`` ("error" or
"warning", default "warning") decides whether names that collide after NFC
normalisation or case folding make a bag invalid.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Iterable, Mapping, Protocol

from preservation import codes
from preservation.errors import PolicyError
from preservation.findings import Finding, FindingList

from .tagfiles import BAG_INFO_TXT, BAGIT_TXT, FETCH_TXT, BagInfo


_KNOWN_KEYS = {
    "BagIt-Profile-Info",
    "Bag-Info",
    "Manifests-Required",
    "Manifests-Allowed",
    "Tag-Manifests-Required",
    "Tag-Manifests-Allowed",
    "Allow-Fetch.txt",
    "Fetch.txt-Required",
    "Serialization",
    "Accept-Serialization",
    "Accept-BagIt-Version",
    "Tag-Files-Required",
    "Tag-Files-Allowed",
    "Payload-Files-Required",
    "Payload-Files-Allowed",
    "Data-Empty",
    "Preserve-Name-Collisions",
}
_IMPLICIT_TAG_FILES = (BAGIT_TXT, BAG_INFO_TXT, FETCH_TXT, "manifest-*.txt", "tagmanifest-*.txt")


@dataclass(frozen=True)
class TagRule:
    required: bool = False
    values: tuple[str, ...] | None = None
    repeatable: bool = True


@dataclass(frozen=True)
class BagItProfile:
    identifier: str
    source: str
    bag_info: Mapping[str, TagRule] = field(default_factory=dict)
    manifests_required: tuple[str, ...] = ()
    manifests_allowed: tuple[str, ...] | None = None
    tag_manifests_required: tuple[str, ...] = ()
    tag_manifests_allowed: tuple[str, ...] | None = None
    allow_fetch: bool = True
    fetch_required: bool = False
    serialization: str = "optional"
    accept_versions: tuple[str, ...] | None = None
    tag_files_required: tuple[str, ...] = ()
    tag_files_allowed: tuple[str, ...] | None = None
    payload_files_required: tuple[str, ...] = ()
    payload_files_allowed: tuple[str, ...] | None = None
    data_empty: bool = False
    name_collisions: str = "warning"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str) -> "BagItProfile":
        """Build a profile from its JSON object; raises PolicyError when it is malformed."""

        def fail(detail: str) -> PolicyError:
            return PolicyError(detail, source=source)

        if not isinstance(data, Mapping):
            raise fail("a BagIt profile is a JSON object")
        unknown = sorted(set(data) - _KNOWN_KEYS)
        if unknown:
            raise fail(f"unknown keys {unknown} (supported: {sorted(_KNOWN_KEYS)})")
        info = data.get("BagIt-Profile-Info")
        if not isinstance(info, Mapping) or not isinstance(info.get("BagIt-Profile-Identifier"), str):
            raise fail("BagIt-Profile-Info.BagIt-Profile-Identifier is required")

        def strings(key: str, default: tuple[str, ...] | None = ()) -> tuple[str, ...] | None:
            if key not in data:
                return default
            value = data[key]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise fail(f"{key} must be a list of strings")
            return tuple(value)

        def flag(key: str, default: bool) -> bool:
            value = data.get(key, default)
            if not isinstance(value, bool):
                raise fail(f"{key} must be true or false")
            return value

        rules: dict[str, TagRule] = {}
        bag_info = data.get("Bag-Info", {})
        if not isinstance(bag_info, Mapping):
            raise fail("Bag-Info must be an object of tag rules")
        for label, rule in bag_info.items():
            if not isinstance(rule, Mapping):
                raise fail(f"Bag-Info.{label} must be an object")
            values = rule.get("values")
            if values is not None and (not isinstance(values, list) or not all(isinstance(v, str) for v in values)):
                raise fail(f"Bag-Info.{label}.values must be a list of strings")
            required, repeatable = rule.get("required", False), rule.get("repeatable", True)
            if not isinstance(required, bool) or not isinstance(repeatable, bool):
                raise fail(f"Bag-Info.{label}: required and repeatable must be true or false")
            rules[label] = TagRule(required, tuple(values) if values is not None else None, repeatable)
        serialization = data.get("Serialization", "optional")
        if serialization not in ("forbidden", "required", "optional"):
            raise fail("Serialization must be forbidden, required or optional")
        collisions = data.get("Preserve-Name-Collisions", "warning")
        if collisions not in ("error", "warning"):
            raise fail("Preserve-Name-Collisions must be error or warning")
        strings("Accept-Serialization")
        return cls(
            identifier=info["BagIt-Profile-Identifier"],
            source=source,
            bag_info=rules,
            manifests_required=_lower(strings("Manifests-Required")),
            manifests_allowed=_lower(strings("Manifests-Allowed", None)),
            tag_manifests_required=_lower(strings("Tag-Manifests-Required")),
            tag_manifests_allowed=_lower(strings("Tag-Manifests-Allowed", None)),
            allow_fetch=flag("Allow-Fetch.txt", True),
            fetch_required=flag("Fetch.txt-Required", False),
            serialization=serialization,
            accept_versions=strings("Accept-BagIt-Version", None),
            tag_files_required=strings("Tag-Files-Required") or (),
            tag_files_allowed=strings("Tag-Files-Allowed", None),
            payload_files_required=strings("Payload-Files-Required") or (),
            payload_files_allowed=strings("Payload-Files-Allowed", None),
            data_empty=flag("Data-Empty", False),
            name_collisions=collisions,
        )


def _lower(values: tuple[str, ...] | None) -> tuple[str, ...] | None:
    return None if values is None else tuple(v.lower() for v in values)


def default_profile() -> Traversable:
    """The BagIt profile the bags made here satisfy: package data, so an installed wheel has it too.

    Looked up when asked for, not on import: finding package resources loads
    the zip readers, which the bag code otherwise never needs.
    """
    return resources.files("preservation").joinpath("policies", "bagit-profile.json")


def load_profile(path: str | os.PathLike[str] | Traversable | None = None) -> BagItProfile:
    """Read and validate a BagIt profile JSON file or packaged resource (default: :func:`default_profile`).

    Raises PolicyError when it is missing, unreadable or not a profile: a
    profile that cannot be read is never a profile that passes.
    """
    if path is None:
        path = default_profile()
    source = str(path)
    try:
        raw = (Path(path) if isinstance(path, (str, os.PathLike)) else path).read_bytes()
        data = json.loads(raw.decode("utf-8"))
    except OSError as e:
        raise PolicyError(f"cannot read it: {e.strerror or e}", source=source) from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise PolicyError(f"not valid JSON: {e}", source=source) from e
    return BagItProfile.from_dict(data, source)


class ProfileSubject(Protocol):
    """What :func:`check_profile` needs to know about a bag (a ValidationReport provides it)."""

    version: str | None
    bag_info: BagInfo
    payload_algorithms: tuple[str, ...]
    tag_algorithms: tuple[str, ...]
    tag_files: tuple[str, ...]
    payload_paths: tuple[str, ...]
    payload_bytes: int
    has_fetch: bool
    collisions: list[Finding]


def check_profile(subject: ProfileSubject, profile: BagItProfile) -> list[Finding]:
    """Every way ``subject`` breaks ``profile``, as PRF findings."""
    findings = FindingList()
    _check_bag_info(findings, subject.bag_info, profile)
    _check_algorithms(
        findings,
        subject.payload_algorithms,
        profile.manifests_required,
        profile.manifests_allowed,
        codes.PROFILE_MANIFEST_MISSING,
        codes.PROFILE_MANIFEST_NOT_ALLOWED,
        "manifest",
    )
    _check_algorithms(
        findings,
        subject.tag_algorithms,
        profile.tag_manifests_required,
        profile.tag_manifests_allowed,
        codes.PROFILE_TAG_MANIFEST_MISSING,
        codes.PROFILE_TAG_MANIFEST_NOT_ALLOWED,
        "tagmanifest",
    )
    if subject.has_fetch and not profile.allow_fetch:
        codes.note(findings, codes.PROFILE_FETCH, "the profile does not allow fetch.txt", FETCH_TXT)
    if profile.fetch_required and not subject.has_fetch:
        codes.note(findings, codes.PROFILE_FETCH, "the profile requires fetch.txt", FETCH_TXT)
    if profile.accept_versions is not None and subject.version not in profile.accept_versions:
        codes.note(
            findings,
            codes.PROFILE_VERSION,
            f"BagIt version {subject.version} is not one of {list(profile.accept_versions)}",
            BAGIT_TXT,
            version=subject.version,
        )
    if profile.serialization == "required":
        codes.note(findings, codes.PROFILE_SERIALIZATION, "the profile requires a serialized bag, not a directory", None)
    tag_files = set(subject.tag_files)
    for required in profile.tag_files_required:
        if required not in tag_files:
            codes.note(findings, codes.PROFILE_TAG_FILE_MISSING, "a tag file the profile requires is missing", required)
    if profile.tag_files_allowed is not None:
        allowed = (*profile.tag_files_allowed, *_IMPLICIT_TAG_FILES)
        for path in subject.tag_files:
            if not _matches(path, allowed):
                codes.note(findings, codes.PROFILE_TAG_FILE_NOT_ALLOWED, "the profile does not allow this tag file", path)
    _check_payload_files(findings, subject, profile)
    if profile.name_collisions == "error":
        for collision in subject.collisions:
            codes.note(
                findings,
                codes.PROFILE_NAME_COLLISION,
                f"the profile forbids colliding names ({collision.code}: {collision.message})",
                collision.path,
            )
    declared = subject.bag_info.get("BagIt-Profile-Identifier")
    if declared is not None and declared != profile.identifier:
        codes.note(
            findings,
            codes.PROFILE_IDENTIFIER,
            f"the bag names profile {declared!r}, it was checked against {profile.identifier!r}",
            BAG_INFO_TXT,
        )
    return list(findings)


def _check_bag_info(findings: FindingList, bag_info: BagInfo, profile: BagItProfile) -> None:
    for label, rule in profile.bag_info.items():
        values = bag_info.values(label)
        if rule.required and not any(v.strip() for v in values):
            codes.note(
                findings, codes.PROFILE_TAG_MISSING, f"bag-info.txt needs a {label} tag", BAG_INFO_TXT, label=label
            )
        if rule.values is not None:
            for value in values:
                if value not in rule.values:
                    codes.note(
                        findings,
                        codes.PROFILE_TAG_VALUE,
                        f"{label}: {value!r} is not one of {list(rule.values)}",
                        BAG_INFO_TXT,
                        label=label,
                        value=value,
                    )
        if not rule.repeatable and len(values) > 1:
            codes.note(
                findings,
                codes.PROFILE_TAG_REPEATED,
                f"{label} appears {len(values)} times; the profile allows one",
                BAG_INFO_TXT,
                label=label,
            )


def _check_algorithms(
    findings: FindingList,
    present: Iterable[str],
    required: tuple[str, ...],
    allowed: tuple[str, ...] | None,
    missing_code: str,
    not_allowed_code: str,
    prefix: str,
) -> None:
    have = set(present)
    for algorithm in required:
        if algorithm not in have:
            codes.note(findings, missing_code, "the profile requires this manifest", f"{prefix}-{algorithm}.txt")
    if allowed is not None:
        for algorithm in sorted(have - set(allowed)):
            codes.note(findings, not_allowed_code, "the profile does not allow this algorithm", f"{prefix}-{algorithm}.txt")


def _check_payload_files(findings: FindingList, subject: ProfileSubject, profile: BagItProfile) -> None:
    if profile.payload_files_required:
        present = set(subject.payload_paths)
        for required in profile.payload_files_required:
            if required not in present:
                codes.note(findings, codes.PROFILE_PAYLOAD_FILE_MISSING, "a payload file the profile requires", required)
    if profile.payload_files_allowed is not None:
        for path in subject.payload_paths:
            if not _matches(path, profile.payload_files_allowed):
                codes.note(findings, codes.PROFILE_PAYLOAD_FILE_NOT_ALLOWED, "the profile does not allow this file", path)
    if profile.data_empty and (len(subject.payload_paths) > 1 or subject.payload_bytes > 0):
        codes.note(
            findings,
            codes.PROFILE_DATA_NOT_EMPTY,
            "the profile wants data/ to hold at most one empty file",
            "data",
        )


def _matches(path: str, patterns: Iterable[str]) -> bool:
    return any(fnmatchcase(path, pattern) for pattern in patterns)
