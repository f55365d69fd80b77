"""Parse and format BagIt tag files from bytes: bagit.txt, bag-info.txt, manifests, fetch.txt.

Manifests are parsed in :mod:`.manifests`.  Nothing here touches a
filesystem, so a bag held on any storage adapter can be read: :func:`parse_bag_metadata` takes a reader callback,
:func:`read_bag_metadata` reads a local bag and
:func:`read_bag_metadata_from_adapter` reads only the tag files of a bag
stored under a key prefix (the catalog rebuild uses it).  Every problem is
added to a :class:`FindingList` with a code from :mod:`preservation.codes`; parsing
never stops at the first.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, NamedTuple

from preservation import codes
from preservation.digests import BAGIT_ALGORITHMS
from preservation.errors import ObjectNotFound
from preservation.findings import FindingList
from preservation.text import check_xml_text, xml_forbidden

from .manifests import NEWEST_VERSION, TAG, Manifest, manifest_kind, parse_manifest
from .names import canonical_path, decode_manifest_path, shown, unsafe_reason

if TYPE_CHECKING:
    # only annotated: loading the adapters would cost every bag writer and validator their imports
    from storage_adapters.base import StorageAdapter

BAGIT_TXT = "bagit.txt"
BAG_INFO_TXT = "bag-info.txt"
PACKAGE_INFO_TXT = "package-info.txt"
FETCH_TXT = "fetch.txt"
PAYLOAD_DIR = "data"
WRITE_VERSION = "1.0"
OLDEST_VERSION = (0, 93)
RESERVED_NOT_REPEATABLE = ("bagging-date", "bag-size", "payload-oxum", "bag-group-identifier", "bag-count")

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_VERSION = re.compile(r"^(\d+)\.(\d+)$")
_EXACT_DECLARATION_LINE = re.compile(r"[^\s:]+: \S+")
_OXUM = re.compile(r"^(\d+)\.(\d+)$")
_BOMS = (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)

# --- bagit.txt ------------------------------------------------------------------


@dataclass(frozen=True)
class BagDeclaration:
    """What bagit.txt says; ``version``/``encoding`` are None when missing or unusable."""

    version: str | None
    encoding: str | None
    codec: str = "utf-8"
    """The Python codec that decodes the other tag files."""

    @property
    def version_info(self) -> tuple[int, int]:
        """The version as a tuple; a missing or unusable version reads as 1.0 (the strictest rules)."""
        match = _VERSION.fullmatch(self.version or "")
        return (int(match.group(1)), int(match.group(2))) if match else NEWEST_VERSION


def parse_bagit_txt(data: bytes, findings: FindingList) -> BagDeclaration:
    """Parse bagit.txt; problems go to ``findings`` (BAG002-BAG009, BAG011)."""
    for bom in _BOMS:
        if data.startswith(bom):
            codes.note(findings, codes.BAGIT_TXT_BOM, "bagit.txt starts with a byte-order mark", BAGIT_TXT)
            data = data[len(bom) :]
            break
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        codes.note(findings, codes.TAG_FILE_UNDECODABLE, f"bagit.txt is not UTF-8 ({e.reason})", BAGIT_TXT)
        text = data.decode("utf-8", "replace")
    labels: list[str] = []
    values: dict[str, str] = {}
    loose: list[int] = []
    for number, line in enumerate(_split_lines(text), start=1):
        if not line.strip():
            continue
        label, sep, value = line.partition(":")
        if not sep or not label.strip():
            codes.note(
                findings, codes.BAGIT_TXT_MALFORMED, f"line {number} is not `Label: value`", BAGIT_TXT, line=number
            )
            continue
        if _EXACT_DECLARATION_LINE.fullmatch(line) is None:
            loose.append(number)
        label = label.strip()
        labels.append(label)
        values.setdefault(label, value.strip())
    if labels and labels != ["BagIt-Version", "Tag-File-Character-Encoding"]:
        codes.note(
            findings,
            codes.BAGIT_TXT_LAYOUT,
            "bagit.txt should hold exactly BagIt-Version then Tag-File-Character-Encoding",
            BAGIT_TXT,
            labels=labels,
        )
    version = values.get("BagIt-Version")
    if version is None:
        codes.note(findings, codes.VERSION_MISSING, "bagit.txt has no BagIt-Version", BAGIT_TXT)
    else:
        match = _VERSION.fullmatch(version)
        if not match or not OLDEST_VERSION <= (int(match.group(1)), int(match.group(2))) <= NEWEST_VERSION:
            codes.note(
                findings,
                codes.VERSION_UNSUPPORTED,
                f"BagIt-Version {version!r} is not a version 0.93 to 1.0",
                BAGIT_TXT,
                version=version,
            )
            version = None
    _note_loose_lines(loose, version, findings)
    encoding = values.get("Tag-File-Character-Encoding")
    codec = "utf-8"
    if encoding is None:
        codes.note(findings, codes.ENCODING_MISSING, "bagit.txt has no Tag-File-Character-Encoding", BAGIT_TXT)
    else:
        try:
            codec = codecs.lookup(encoding).name
        except LookupError:
            codes.note(
                findings, codes.ENCODING_UNKNOWN, f"unknown encoding {encoding!r}", BAGIT_TXT, encoding=encoding
            )
            encoding = None
        else:
            if codec != "utf-8":
                codes.note(
                    findings,
                    codes.ENCODING_NOT_UTF8,
                    f"tag files are declared {encoding!r}, not UTF-8",
                    BAGIT_TXT,
                    encoding=encoding,
                )
    return BagDeclaration(version=version, encoding=encoding, codec=codec)


def _note_loose_lines(numbers: list[int], version: str | None, findings: FindingList) -> None:
    """Lines not in the exact `Label: value` form: an error from BagIt 1.0 on, a warning before.

    RFC 8493 section 2.1.1 fixes both lines character for character (one
    colon, one space, no other whitespace).  The 0.93-0.97 drafts show the
    same form but were written by tools that were not always exact, so
    their bags are still read, with a warning.  A missing or unusable
    version is judged by the 1.0 rule.
    """
    match = _VERSION.fullmatch(version or "")
    strict = match is None or (int(match.group(1)), int(match.group(2))) >= NEWEST_VERSION
    for number in numbers:
        codes.note(
            findings,
            codes.BAGIT_TXT_LINE_FORM if strict else codes.BAGIT_TXT_LINE_FORM_OLD,
            f"line {number} is not exactly `Label: value` (one colon, then one space, no other whitespace)",
            BAGIT_TXT,
            line=number,
        )


def format_bagit_txt() -> bytes:
    return f"BagIt-Version: {WRITE_VERSION}\nTag-File-Character-Encoding: UTF-8\n".encode()


# --- decoding helpers -------------------------------------------------------------


def _split_lines(text: str) -> list[str]:
    """Split on LF, CR and CRLF only (str.splitlines also breaks on U+2028 and friends)."""
    lines = _LINE_BREAK.split(text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def decode_tag_file(data: bytes, codec: str, name: str, findings: FindingList) -> list[str]:
    """The lines of a tag file; undecodable lines are reported (BAG011) and decoded with U+FFFD."""
    if data.startswith(codecs.BOM_UTF8) and codec == "utf-8":
        codes.note(findings, codes.TAG_FILE_BOM, f"{name} starts with a byte-order mark", name)
        data = data[len(codecs.BOM_UTF8) :]
    with contextlib.suppress(UnicodeDecodeError):
        return _split_lines(data.decode(codec))
    # some lines do not decode: find and report each, keep the rest readable
    lines = _split_lines(data.decode(codec, "surrogateescape"))
    out = []
    for number, line in enumerate(lines, start=1):
        try:
            line.encode(codec)
        except UnicodeEncodeError:
            codes.note(
                findings,
                codes.TAG_FILE_UNDECODABLE,
                f"line {number} of {name} is not valid {codec}",
                name,
                line=number,
            )
            line = line.encode(codec, "surrogateescape").decode(codec, "replace")
        out.append(line)
    return out


# --- bag-info.txt ----------------------------------------------------------------------


@dataclass
class BagInfo:
    """The metadata of bag-info.txt, in file order; reserved labels compare case-insensitively."""

    items: list[tuple[str, str]] = field(default_factory=list)

    def values(self, label: str) -> list[str]:
        want = label.lower()
        return [v for k, v in self.items if k.lower() == want]

    def get(self, label: str, default: str | None = None) -> str | None:
        found = self.values(label)
        return found[0] if found else default

    def __contains__(self, label: object) -> bool:
        return isinstance(label, str) and bool(self.values(label))

    def as_dict(self) -> dict[str, str | list[str]]:
        """Label -> value, or -> list of values for repeated labels (as bagit-python gives them)."""
        out: dict[str, str | list[str]] = {}
        for label, value in self.items:
            if label not in out:
                out[label] = value
            elif isinstance(out[label], list):
                out[label].append(value)  # type: ignore[union-attr]
            else:
                out[label] = [out[label], value]  # type: ignore[list-item]
        return out


def parse_bag_info(lines: Iterable[str], findings: FindingList, name: str = BAG_INFO_TXT) -> BagInfo:
    """Parse bag-info.txt lines; continuation lines (leading space or tab) are joined with one space."""
    info = BagInfo()
    raw = list(lines)
    for number, line in enumerate(raw, start=1):
        if not line.strip():
            if number < len(raw):
                codes.note(findings, codes.BAG_INFO_BLANK_LINE, f"line {number} of {name} is blank", name, line=number)
            continue
        forbidden = xml_forbidden(line)
        if forbidden:
            codes.note(
                findings,
                codes.BAG_INFO_NOT_XML_TEXT,
                f"line {number} of {name} has character(s) XML 1.0 cannot carry: {', '.join(forbidden[:5])}",
                name,
                line=number,
                characters=forbidden,
            )
        if line[0] in " \t":
            if not info.items:
                codes.note(
                    findings,
                    codes.BAG_INFO_MALFORMED,
                    f"line {number} of {name} continues a tag but no tag came before",
                    name,
                    line=number,
                )
                continue
            label, value = info.items[-1]
            info.items[-1] = (label, f"{value.rstrip()} {line.strip()}".strip())
            continue
        label, sep, value = line.partition(":")
        if not sep or not label.strip():
            codes.note(
                findings,
                codes.BAG_INFO_MALFORMED,
                f"line {number} of {name} is not `Label: value`: {shown(line)[:80]!r}",
                name,
                line=number,
            )
            continue
        if label != label.strip() or (value and value[0] not in " \t"):
            codes.note(
                findings,
                codes.BAG_INFO_LABEL_FORMAT,
                f"line {number} of {name}: the label must not have surrounding whitespace "
                "and the colon must be followed by a space",
                name,
                line=number,
            )
        info.items.append((label.strip(), value.strip()))
    seen: set[str] = set()
    for label, _ in info.items:
        key = label.lower()
        if key in RESERVED_NOT_REPEATABLE and key in seen:
            codes.note(
                findings,
                codes.BAG_INFO_REPEATED,
                f"{label} is repeated in {name} (RFC 8493: SHOULD NOT be repeated)",
                name,
                label=label,
            )
        seen.add(key)
    return info


def check_bag_info_item(label: str, value: str) -> str | None:
    """Why ``label: value`` cannot be written to bag-info.txt, or None.

    Raises InvalidText (E113) when the label or value holds a character
    XML 1.0 cannot carry: bag-info ends up in PREMIS exports, and is refused
    here, where it enters, rather than when an export breaks.
    """
    check_xml_text(label, "bag-info label")
    check_xml_text(value, f"bag-info {label}")
    if not label or label != label.strip():
        return "a label must be non-empty without surrounding whitespace"
    if ":" in label or any(c in label for c in "\r\n"):
        return "a label must not contain ':' or line breaks"
    if any(ord(c) < 0x20 and c != "\t" for c in label + value):
        return "labels and values must not contain line breaks or control characters"
    return None


def format_bag_info(items: Iterable[tuple[str, str]]) -> bytes:
    """bag-info.txt bytes; call :func:`check_bag_info_item` on each item first."""
    return "".join(f"{label}: {value}\n" for label, value in items).encode("utf-8")


def parse_oxum(value: str) -> tuple[int, int] | None:
    """(octets, files) of a Payload-Oxum value, or None when malformed."""
    match = _OXUM.fullmatch(value.strip())
    return (int(match.group(1)), int(match.group(2))) if match else None


# --- fetch.txt ---------------------------------------------------------------------------


class FetchEntry(NamedTuple):
    url: str
    length: int | None
    path: str


def parse_fetch(
    lines: Iterable[str], findings: FindingList, version_info: tuple[int, int] = NEWEST_VERSION
) -> list[FetchEntry]:
    entries: list[FetchEntry] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        parts = line.split(None, 2)
        if len(parts) != 3 or not (parts[1] == "-" or parts[1].isdigit()):
            codes.note(
                findings, codes.FETCH_MALFORMED, f"line {number} is not `url length path`", FETCH_TXT, line=number
            )
            continue
        url, length, raw = parts
        path = decode_manifest_path(raw) if version_info >= (1, 0) else raw
        reason = unsafe_reason(path)
        if reason is None and not canonical_path(path).startswith("data/"):
            reason = "not under data/"
        if reason is not None:
            codes.note(
                findings,
                codes.FETCH_PATH_UNSAFE,
                f"line {number}: {reason} {shown(path)!r}",
                FETCH_TXT,
                line=number,
                entry=shown(path),
            )
            continue
        entries.append(FetchEntry(url, None if length == "-" else int(length), canonical_path(path)))
    return entries


# --- whole bags ---------------------------------------------------------------------------


@dataclass
class BagMetadata:
    """Everything the tag files of one bag say, and every problem found reading them."""

    declaration: BagDeclaration | None
    bag_info: BagInfo
    manifests: dict[str, Manifest]
    """Payload manifests by algorithm."""
    tag_manifests: dict[str, Manifest]
    fetch: list[FetchEntry] | None
    """None when the bag has no fetch.txt."""
    findings: FindingList
    tag_file_names: tuple[str, ...] = ()
    """Top-level tag file names the metadata was read from."""

    @property
    def version(self) -> str | None:
        return self.declaration.version if self.declaration else None

    @property
    def payload_algorithms(self) -> tuple[str, ...]:
        return tuple(a for a, m in self.manifests.items() if m.supported)

    def payload_entries(self) -> Iterator[tuple[str, dict[str, str]]]:
        """(path, {algorithm: hex digest}) for every path in any payload manifest, in first-seen order."""
        seen: dict[str, dict[str, str]] = {}
        for algorithm, manifest in self.manifests.items():
            for path, digest in manifest.entries.items():
                seen.setdefault(path, {})[algorithm] = digest
        yield from seen.items()


def parse_bag_metadata(reader: Callable[[str], bytes | None], names: Iterable[str]) -> BagMetadata:
    """Parse the tag files of a bag.

    ``reader(name)`` returns the bytes of a top-level tag file, None when it
    does not exist, or raises OSError (reported as BAG013); ``names`` are the
    top-level file names (manifests are found among them).
    """
    findings = FindingList()
    names = sorted(set(names))

    def read(name: str) -> bytes | None:
        try:
            return reader(name)
        except OSError as e:
            codes.note(findings, codes.BAG_UNREADABLE, f"{name} cannot be read: {e.strerror or e}", name)
            return None

    raw_bagit = read(BAGIT_TXT)
    if raw_bagit is None:
        codes.note(findings, codes.BAGIT_TXT_MISSING, "bagit.txt is missing", BAGIT_TXT)
        declaration = None
        version_info, codec = NEWEST_VERSION, "utf-8"
    else:
        declaration = parse_bagit_txt(raw_bagit, findings)
        version_info, codec = declaration.version_info, declaration.codec
    info_name = PACKAGE_INFO_TXT if version_info < (0, 96) and PACKAGE_INFO_TXT in names else BAG_INFO_TXT
    raw_info = read(info_name)
    bag_info = (
        parse_bag_info(decode_tag_file(raw_info, codec, info_name, findings), findings, info_name)
        if raw_info is not None
        else BagInfo()
    )
    manifests: dict[str, Manifest] = {}
    tag_manifests: dict[str, Manifest] = {}
    for name in names:
        kind = manifest_kind(name)
        if kind is None:
            continue
        data = read(name)
        if data is None:
            continue
        manifest = parse_manifest(decode_tag_file(data, codec, name, findings), name, findings, version_info)
        (tag_manifests if kind[0] == TAG else manifests)[kind[1]] = manifest
        if not manifest.supported:
            codes.note(
                findings,
                codes.UNSUPPORTED_ALGORITHM,
                f"{name}: algorithm {kind[1]!r} is not verified (verified: {', '.join(BAGIT_ALGORITHMS)})",
                name,
                algorithm=kind[1],
            )
    if not any(m.supported for m in manifests.values()):
        codes.note(
            findings,
            codes.NO_PAYLOAD_MANIFEST,
            "no payload manifest (manifest-<algorithm>.txt) with a supported algorithm",
            None,
        )
    raw_fetch = read(FETCH_TXT)
    fetch = None
    if raw_fetch is not None:
        fetch = parse_fetch(decode_tag_file(raw_fetch, codec, FETCH_TXT, findings), findings, version_info)
        codes.note(
            findings,
            codes.FETCH_PRESENT,
            f"fetch.txt lists {len(fetch)} remote file(s): the bag is complete only once they are fetched",
            FETCH_TXT,
            entries=len(fetch),
        )
    payload_algos = {a for a, m in manifests.items() if m.supported}
    tag_algos = {a for a, m in tag_manifests.items() if m.supported}
    if tag_algos and payload_algos and tag_algos != payload_algos:
        codes.note(
            findings,
            codes.TAG_ALGORITHMS_DIFFER,
            f"tag manifests use {sorted(tag_algos)}, payload manifests {sorted(payload_algos)}",
            None,
        )
    return BagMetadata(declaration, bag_info, manifests, tag_manifests, fetch, findings, tuple(names))


def read_bag_metadata(path: str | os.PathLike[str]) -> BagMetadata:
    """Parse the tag files of the bag in local directory ``path`` (payload files are not read).

    Only regular files are read, never through a symbolic link.
    """
    root = os.fspath(path)
    try:
        with os.scandir(root) as it:
            regular = {e.name for e in it if e.is_file(follow_symlinks=False)}
    except FileNotFoundError:
        regular = set()
    return parse_bag_metadata(lambda name: read_local_tag_file(root, name, regular), regular)


def read_local_tag_file(root: str, name: str, regular: set[str]) -> bytes | None:
    """Bytes of top-level file ``name`` if it is one of the ``regular`` files, read without following links."""
    if name not in regular:
        return None
    fd = os.open(os.path.join(root, name), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with open(fd, "rb") as f:
        return f.read()


def read_bag_metadata_from_adapter(adapter: StorageAdapter, prefix: str = "") -> BagMetadata:
    """Parse the tag files of the bag stored under ``prefix`` on ``adapter``.

    Only tag files are read, and only keys starting with ``manifest-`` and
    ``tagmanifest-`` are listed (never the payload).  Raises the adapter's
    StorageError when the storage fails (a missing bagit.txt is a finding).
    """
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    names: set[str] = {BAGIT_TXT, BAG_INFO_TXT, PACKAGE_INFO_TXT, FETCH_TXT}
    for start in ("manifest-", "tagmanifest-"):
        for info in adapter.list(prefix + start):
            rest = info.key[len(prefix) :]
            if "/" not in rest:
                names.add(rest)

    def read(name: str) -> bytes | None:
        try:
            return b"".join(adapter.read(prefix + name))
        except ObjectNotFound:
            return None

    return parse_bag_metadata(read, names)
