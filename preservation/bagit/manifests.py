"""Payload and tag manifests: parse them from text lines, format their lines.

Manifest paths are the one place where a bag says which files to open, so
each is checked before anyone may use it: absolute paths and ``..`` are
reported and dropped, ``.`` and empty segments are read canonically, and
RFC 8493 percent-encoding (%25, %0A, %0D only) is decoded from BagIt 1.0 on.
A fast path takes the common line (a plain path, nothing to decode) with
one regular expression; every other line gets every rule.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Iterable

from preservation import codes
from preservation.digests import BAGIT_ALGORITHMS
from preservation.findings import FindingList

from .names import (
    canonical_path,
    decode_manifest_path,
    encode_manifest_path,
    has_unencoded_percent,
    shown,
    unsafe_reason,
)

PAYLOAD = "payload"
TAG = "tag"
NEWEST_VERSION = (1, 0)
DIGEST_HEX_LENGTHS = {name: hashlib.new(name).digest_size * 2 for name in BAGIT_ALGORITHMS}

_MANIFEST_NAME = re.compile(r"^(tag)?manifest-([A-Za-z0-9_-]+)\.txt$")
_MANIFEST_LINE = re.compile(r"([0-9A-Fa-f]+)[ \t]+(.*)", re.S)
_PLAIN_LINE = re.compile(r"([0-9A-Fa-f]+)[ \t]+([^*%/\\.\x00\s][^%\\\x00\r\n]*)")


def manifest_kind(filename: str) -> tuple[str, str] | None:
    """(PAYLOAD or TAG, algorithm) for a manifest file name, else None."""
    match = _MANIFEST_NAME.fullmatch(filename)
    if not match:
        return None
    return (TAG if match.group(1) else PAYLOAD, match.group(2).lower())


def manifest_name(kind: str, algorithm: str) -> str:
    return f"{'tagmanifest' if kind == TAG else 'manifest'}-{algorithm}.txt"


@dataclass
class Manifest:
    """One parsed manifest: path -> lower-case hex digest, in file order."""

    name: str
    kind: str
    algorithm: str
    entries: dict[str, str] = field(default_factory=dict)
    alternates: dict[str, str] = field(default_factory=dict)
    """For the rare paths whose percent-encoding was ambiguous: path -> the other reading."""

    @property
    def supported(self) -> bool:
        return self.algorithm in BAGIT_ALGORITHMS


def parse_manifest(
    lines: Iterable[str],
    name: str,
    findings: FindingList,
    version_info: tuple[int, int] = NEWEST_VERSION,
) -> Manifest:
    """Parse a payload or tag manifest (kind and algorithm come from ``name``).

    Unsafe paths (absolute, ``..``) are reported (BAG106) and left out, so the
    caller never opens them; payload paths outside data/ likewise (BAG107).
    From BagIt 1.0 on, %25, %0A and %0D are decoded; a path that decodes
    differently keeps its literal reading in ``alternates`` so that bags made
    by tools that do not encode ``%`` still match (reported as BAG109).
    """
    kind, algorithm = manifest_kind(name) or (PAYLOAD, "")
    manifest = Manifest(name=name, kind=kind, algorithm=algorithm)
    entries = manifest.entries
    want_length = DIGEST_HEX_LENGTHS.get(algorithm)
    lines = list(lines)
    last = len(lines)
    plain = _PLAIN_LINE.fullmatch
    payload = kind == PAYLOAD
    for number, line in enumerate(lines, start=1):
        # the common line: a digest of the right length and a path with nothing to decode or doubt
        match = plain(line)
        if match is not None:
            digest, path = match.groups()
            if (
                (want_length is None or len(digest) == want_length)
                and path not in entries
                and (path.startswith("data/") if payload else path[1:2] != ":")
                and "/." not in path
                and "//" not in path
                and not path.endswith("/")
            ):
                entries[path] = digest.lower()
                continue
        _parse_line(manifest, line, number, number == last, want_length, version_info, findings)
    return manifest


def _parse_line(
    manifest: Manifest,
    line: str,
    number: int,
    is_last: bool,
    want_length: int | None,
    version_info: tuple[int, int],
    findings: FindingList,
) -> None:
    """One manifest line, every rule applied (the slow path of :func:`parse_manifest`)."""
    name, entries = manifest.name, manifest.entries
    match = _MANIFEST_LINE.fullmatch(line)
    if match is None:
        if not line.strip():
            if not is_last:
                codes.note(findings, codes.MANIFEST_BLANK_LINE, f"line {number} is blank", name, line=number)
            return
        codes.note(
            findings,
            codes.MANIFEST_LINE_MALFORMED,
            f"line {number} is not `digest path`: {shown(line)[:100]!r}",
            name,
            line=number,
        )
        return
    digest, raw = match.group(1).lower(), match.group(2)
    if want_length is not None and len(digest) != want_length:
        codes.note(
            findings,
            codes.MANIFEST_LINE_MALFORMED,
            f"line {number}: a {manifest.algorithm} digest has {want_length} hex digits, not {len(digest)}",
            name,
            line=number,
        )
        return
    if raw.startswith("*"):
        codes.note(
            findings,
            codes.MANIFEST_BINARY_MARKER,
            f"line {number}: md5sum-style `*` binary marker before the path",
            name,
            line=number,
        )
        raw = raw[1:]
    decode = version_info >= (1, 0)
    path = decode_manifest_path(raw) if decode else raw
    if decode and has_unencoded_percent(raw):
        codes.note(
            findings,
            codes.PATH_NOT_PERCENT_ENCODED,
            f"line {number}: a `%` in the path is not percent-encoded as %25",
            name,
            line=number,
        )
    alternate = raw if path != raw else None
    reason = unsafe_reason(path)
    if reason is None and alternate is not None and unsafe_reason(alternate) is not None:
        alternate = None
    if reason is not None:
        codes.note(
            findings,
            codes.MANIFEST_PATH_UNSAFE,
            f"line {number}: {reason} {shown(path)!r}; it is never opened",
            name,
            line=number,
            entry=shown(path),
        )
        return
    canonical = canonical_path(path)
    if canonical != path:
        codes.note(
            findings,
            codes.PATH_NOT_CANONICAL,
            f"line {number}: {shown(path)!r} read as {shown(canonical)!r}",
            name,
            line=number,
        )
        path = canonical
        alternate = canonical_path(alternate) if alternate is not None else None
    if manifest.kind == PAYLOAD and not path.startswith("data/"):
        codes.note(
            findings,
            codes.PAYLOAD_ENTRY_OUTSIDE_DATA,
            f"line {number}: payload manifest entry {shown(path)!r} is not under data/",
            name,
            line=number,
            entry=shown(path),
        )
        return
    if path in entries:
        # the same line twice says nothing new; two digests for one file cannot both be right
        same = entries[path] == digest
        codes.note(
            findings,
            codes.MANIFEST_REPEATED_ENTRY if same else codes.MANIFEST_DUPLICATE,
            f"line {number}: {shown(path)!r} is listed again" + ("" if same else " with a different digest"),
            name,
            line=number,
            entry=shown(path),
        )
        return
    entries[path] = digest
    if alternate is not None:
        manifest.alternates[path] = alternate


def format_manifest_line(hexdigest: str, path: str) -> str:
    return f"{hexdigest}  {encode_manifest_path(path)}\n"
