"""Read a local bag's tag files and tree, and match manifests against what is on disk.

A :class:`BagInspection` is the completeness half of validation (RFC 8493
section 3): every manifest entry resolved to a file, every file accounted
for, every problem a coded finding.  The other half, checking digests, feeds
it the digests of files as they are read (:meth:`BagInspection.verify`), so
the validator and the bag copier share one set of rules.

Manifest paths are matched exactly first; a path that only matches after NFC
normalisation (a bag moved through macOS, say) or only in its literal,
undecoded reading (tools that do not percent-encode ``%``) still matches,
with a warning.  Symbolic links, devices and unsafe manifest paths are never
opened.
"""

from __future__ import annotations

import hashlib
import os
from typing import Iterator

from preservation import codes
from preservation.findings import FindingList

from .directory import walk_path
from .manifests import TAG, Manifest, manifest_kind
from .names import find_collisions, is_valid_utf8_text, nfc, shown
from .tagfiles import FETCH_TXT, PAYLOAD_DIR, BagMetadata, parse_bag_metadata, parse_oxum, read_local_tag_file

_MAX_WALK_DEPTH = 4096


class BagInspection:
    """The tag files, the tree and the manifest matching of one local bag."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self.findings = FindingList()
        self.payload: dict[str, int] = {}
        """Size of each regular file under data/, in walk order."""
        self.tag_files: dict[str, int] = {}
        """Size of every other regular file, in walk order."""
        self._directories: set[str] = set()
        self._not_regular: set[str] = set()
        self._aliases: dict[str, dict[str, str]] = {}
        """Manifest name -> {file on disk: path as the manifest writes it}, for inexact matches only."""
        self._listed_payload: dict[str, int] = {}
        self._listed_by_supported: set[str] = set()
        self._payload_in_tag_manifests: set[str] = set()
        self.tag_digests: dict[str, str] = {}
        """sha256 of each tag file as it was parsed: a copy of the bag must hold these very files."""
        self._folded: dict[str, list[str]] | None = None
        """Listed payload files by case-folded NFC name, built only when an entry is missing."""
        self._walk()
        self.metadata: BagMetadata = self._read_tag_files()
        self.findings.extend(self.metadata.findings)
        self._match()

    # --- reading -------------------------------------------------------------

    def _read_tag_files(self) -> BagMetadata:
        top = {p for p in self.tag_files if "/" not in p}

        def read(name: str) -> bytes | None:
            data = read_local_tag_file(self.root, name, top)
            if data is not None:
                self.tag_digests[name] = hashlib.sha256(data).hexdigest()
            return data

        return parse_bag_metadata(read, top)

    def _walk(self) -> None:
        findings = self.findings

        def on_listing(parent: str, names: list[str]) -> None:
            for collision in find_collisions(names):
                path = f"{parent}/{collision.second}" if parent else collision.second
                code = codes.NAMES_COLLIDE_NFC if collision.kind == "nfc" else codes.NAMES_COLLIDE_CASE
                how = "NFC normalisation" if collision.kind == "nfc" else "case folding"
                codes.note(
                    findings,
                    code,
                    f"{shown(collision.second)!r} and {shown(collision.first)!r} are one name after {how}",
                    shown(path),
                    other=shown(collision.first),
                )

        def on_error(parent: str, error: OSError) -> None:
            codes.note(
                findings,
                codes.BAG_UNREADABLE,
                f"cannot list {shown(parent) or 'the bag'}: {error.strerror or error}",
                shown(parent) or None,
            )

        saw_data = False
        for node in walk_path(os.fsencode(self.root), _MAX_WALK_DEPTH, on_listing, on_error):
            entry, path = node.entry, node.path
            if path == PAYLOAD_DIR and entry.is_dir(follow_symlinks=False):
                saw_data = True
            if not is_valid_utf8_text(node.name):
                codes.note(
                    findings, codes.NAME_NOT_UTF8, "the name is not valid UTF-8: no manifest can list it", shown(path)
                )
                self._not_regular.add(path)
                continue
            if entry.is_dir(follow_symlinks=False):
                self._directories.add(path)
            elif entry.is_file(follow_symlinks=False):
                try:
                    size = entry.stat(follow_symlinks=False).st_size
                except OSError:
                    size = 0
                (self.payload if path.startswith("data/") else self.tag_files)[path] = size
            else:
                what = "a symbolic link" if entry.is_symlink() else "a device, FIFO or socket"
                codes.note(findings, codes.NOT_A_REGULAR_FILE, f"{what}: never opened", shown(path))
                self._not_regular.add(path)
        if not saw_data:
            codes.note(findings, codes.PAYLOAD_DIR_MISSING, "the bag has no data/ directory", PAYLOAD_DIR)

    # --- matching ----------------------------------------------------------------

    def _resolve(self, manifest: Manifest, path: str, candidates: dict[str, int], nfc_index: dict[str, str]) -> str | None:
        if path in candidates:
            return path
        alternate = manifest.alternates.get(path)
        if alternate is not None and alternate in candidates:
            codes.note(
                self.findings,
                codes.PATH_NOT_PERCENT_ENCODED,
                f"{shown(alternate)!r} matched only literally: the manifest did not percent-encode `%`",
                manifest.name,
                entry=shown(alternate),
            )
            return alternate
        if not nfc_index:
            nfc_index.update((nfc(p), p) for p in candidates)
        found = nfc_index.get(nfc(path))
        if found is not None:
            codes.note(
                self.findings,
                codes.NAME_NORMALISATION_MATCH,
                f"listed as {shown(path)!r}, found only after NFC normalisation",
                shown(found),
                listed=shown(path),
            )
        return found

    def _match(self) -> None:
        metadata = self.metadata
        payload_nfc: dict[str, str] = {}
        missing: dict[str, list[str]] = {}
        for manifest in metadata.manifests.values():
            aliases: dict[str, str] = {}
            for path in manifest.entries:
                found = self._resolve(manifest, path, self.payload, payload_nfc)
                if found is None:
                    if path not in self._not_regular:
                        missing.setdefault(path, []).append(manifest.name)
                    continue
                if found != path:
                    aliases[found] = path
                self._listed_payload[found] = self._listed_payload.get(found, 0) + 1
                if manifest.supported:
                    self._listed_by_supported.add(found)
            if aliases:
                self._aliases[manifest.name] = aliases
        for path, names in missing.items():
            if path in self._directories:
                codes.note(self.findings, codes.PAYLOAD_IS_DIRECTORY, "the manifest entry is a directory", shown(path))
            elif (twin := self._case_twin(path)) is not None:
                codes.note(
                    self.findings,
                    codes.CASE_ONLY_DUPLICATE,
                    f"listed, but absent; {shown(twin)!r} differs from it only by case, is listed with the same "
                    "digest and is present (a bag made on a case-insensitive file system)",
                    shown(path),
                    present=shown(twin),
                )
            else:
                codes.note(
                    self.findings,
                    codes.PAYLOAD_MISSING,
                    f"listed in {', '.join(names)} but not in the bag",
                    shown(path),
                    manifests=names,
                )
        every = len(metadata.manifests)
        strict_listing = metadata.declaration is None or metadata.declaration.version_info >= (1, 0)
        for path in self.payload:
            count = self._listed_payload.get(path, 0)
            if count == 0:
                codes.note(self.findings, codes.PAYLOAD_UNEXPECTED, "the file is in no payload manifest", path)
            elif count < every and strict_listing:
                absent = [m.name for m in metadata.manifests.values() if not self._is_listed(m, path)]
                codes.note(
                    self.findings,
                    codes.PAYLOAD_NOT_IN_EVERY_MANIFEST,
                    f"the file is not listed in {', '.join(absent)} (BagIt 1.0 wants every manifest to list it)",
                    path,
                    manifests=absent,
                )
        self._match_fetch()
        self._match_tag_manifests()

    def _case_twin(self, absent: str) -> str | None:
        """The present payload file that ``absent`` names but for case, listed with the same digest by every
        manifest that lists ``absent``; None when there is no such file (``absent`` is then truly missing)."""
        if self._folded is None:
            self._folded = {}
            for present in self._listed_payload:
                self._folded.setdefault(nfc(present).casefold(), []).append(present)
        manifests = [m for m in self.metadata.manifests.values() if absent in m.entries]
        for present in self._folded.get(nfc(absent).casefold(), ()):
            if all(m.entries.get(self._aliases.get(m.name, {}).get(present, present)) == m.entries[absent]
                   for m in manifests):
                return present
        return None

    def _match_fetch(self) -> None:
        for entry in self.metadata.fetch or ():
            absent = [m.name for m in self.metadata.manifests.values() if entry.path not in m.entries]
            if absent:
                codes.note(
                    self.findings,
                    codes.FETCH_NOT_IN_MANIFEST,
                    f"fetch.txt lists it but {', '.join(absent)} do(es) not",
                    shown(entry.path),
                    manifests=absent,
                )

    def _match_tag_manifests(self) -> None:
        everything: dict[str, int] = {**self.tag_files, **self.payload}
        every_nfc: dict[str, str] = {}
        tag_manifests = self.metadata.tag_manifests
        for manifest in tag_manifests.values():
            aliases: dict[str, str] = {}
            for path in manifest.entries:
                kind = manifest_kind(path)
                if path.startswith("data/") or (kind is not None and kind[0] == TAG):
                    codes.note(
                        self.findings,
                        codes.TAG_MANIFEST_ODD_ENTRY,
                        f"{manifest.name} lists {shown(path)!r}, which is not a tag file it should list",
                        shown(path),
                        manifest=manifest.name,
                    )
                found = self._resolve(manifest, path, everything, every_nfc)
                if found is not None and found in self.payload:
                    self._payload_in_tag_manifests.add(found)
                if found is None:
                    if path not in self._not_regular:
                        codes.note(
                            self.findings,
                            codes.TAG_FILE_MISSING,
                            f"listed in {manifest.name} but not in the bag",
                            shown(path),
                            manifest=manifest.name,
                        )
                    continue
                if found != path:
                    aliases[found] = path
                if manifest.supported:
                    self._listed_by_supported.add(found)
            if aliases:
                self._aliases[manifest.name] = aliases
        if not tag_manifests:
            return
        for path in self.tag_files:
            kind = manifest_kind(path)
            if kind is not None and kind[0] == TAG:
                continue
            absent = [m.name for m in tag_manifests.values() if not self._is_listed(m, path)]
            if absent:
                codes.note(
                    self.findings,
                    codes.TAG_FILE_UNLISTED,
                    f"the tag file is not listed in {', '.join(absent)}",
                    path,
                    manifests=absent,
                )

    def _is_listed(self, manifest: Manifest, path: str) -> bool:
        listed = self._aliases.get(manifest.name, {}).get(path, path)
        return listed in manifest.entries

    # --- digests and sizes -----------------------------------------------------------

    @property
    def algorithms(self) -> tuple[str, ...]:
        """Every supported algorithm of any payload or tag manifest, payload ones first."""
        out: list[str] = []
        for manifest in (*self.metadata.manifests.values(), *self.metadata.tag_manifests.values()):
            if manifest.supported and manifest.algorithm not in out:
                out.append(manifest.algorithm)
        return tuple(out)

    def files_to_verify(self) -> Iterator[tuple[str, int]]:
        """(path, size) of files listed in a manifest with a supported algorithm: payload first, in walk order."""
        listed = self._listed_by_supported
        for files in (self.payload, self.tag_files):
            for path, size in files.items():
                if path in listed:
                    yield path, size

    def verify(self, path: str, digests: dict[str, str]) -> None:
        """Compare the digests of ``path`` (as read) with every manifest that lists it."""
        metadata = self.metadata
        if path.startswith("data/"):
            self._compare(path, digests, metadata.manifests, codes.PAYLOAD_CHANGED)
            if path in self._payload_in_tag_manifests:
                self._compare(path, digests, metadata.tag_manifests, codes.TAG_FILE_CHANGED)
        else:
            self._compare(path, digests, metadata.tag_manifests, codes.TAG_FILE_CHANGED)

    def _compare(self, path: str, digests: dict[str, str], manifests: dict[str, Manifest], code: str) -> None:
        aliases = self._aliases
        for algorithm, manifest in manifests.items():
            actual = digests.get(algorithm)
            if actual is None:
                continue
            listed = aliases[manifest.name].get(path, path) if manifest.name in aliases else path
            expected = manifest.entries.get(listed)
            if expected is not None and expected != actual:
                codes.note(
                    self.findings,
                    code,
                    f"{algorithm} is {actual}, {manifest.name} says {expected}",
                    path,
                    algorithm=algorithm,
                    expected=expected,
                    actual=actual,
                )

    @property
    def payload_octets(self) -> int:
        return sum(self.payload.values())

    def check_oxum(self, octets: int | None = None, count: int | None = None) -> None:
        """Compare every Payload-Oxum of bag-info.txt with the payload (by default: as found on disk)."""
        octets = self.payload_octets if octets is None else octets
        count = len(self.payload) if count is None else count
        for value in self.metadata.bag_info.values("Payload-Oxum"):
            parsed = parse_oxum(value)
            if parsed is None:
                codes.note(
                    self.findings,
                    codes.OXUM_MALFORMED,
                    f"Payload-Oxum {value!r} is not `octets.count`",
                    "bag-info.txt",
                    value=value,
                )
            elif parsed != (octets, count):
                codes.note(
                    self.findings,
                    codes.OXUM_MISMATCH,
                    f"Payload-Oxum says {parsed[1]} files and {parsed[0]} bytes, "
                    f"the payload has {count} files and {octets} bytes",
                    "bag-info.txt",
                    expected=value,
                    actual=f"{octets}.{count}",
                )

    @property
    def has_fetch(self) -> bool:
        return FETCH_TXT in self.tag_files or self.metadata.fetch is not None
