"""Bags (directories with bagit.txt) written byte by byte, then broken one way each."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable

from .common import Builder, write_files

BAGIT_TXT = b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"


def _manifest(root: Path, names: list[str], algorithm: str, prefix: str = "") -> bytes:
    lines = []
    for name in names:
        digest = hashlib.new(algorithm, (root / name).read_bytes()).hexdigest()
        shown = (prefix + name).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        lines.append(f"{digest}  {shown}\n")
    return "".join(lines).encode("utf-8")


def retag(bag: Path) -> None:
    """Rewrite the tag manifests so that they match the tag files as they are now."""
    tags = sorted(p.name for p in bag.iterdir() if p.is_file() and not p.name.startswith("tagmanifest-"))
    for algorithm in ("sha256", "sha512"):
        (bag / f"tagmanifest-{algorithm}.txt").write_bytes(_manifest(bag, tags, algorithm))


def make_bag(case: Path, files: dict[str, bytes] | None = None) -> Path:
    """A valid BagIt 1.0 bag (sha256 + sha512, tag manifests), written byte by byte here."""
    files = files or {"article-1.txt": b"first article\n", "img/figure 1.png": b"\x89PNG fake\n"}
    bag = case / "bag"
    write_files(bag / "data", files)
    (bag / "bagit.txt").write_bytes(BAGIT_TXT)
    names = sorted(files)
    for algorithm in ("sha256", "sha512"):
        (bag / f"manifest-{algorithm}.txt").write_bytes(_manifest(bag / "data", names, algorithm, "data/"))
    octets = sum(len(v) for v in files.values())
    (bag / "bag-info.txt").write_bytes(
        f"Source-Organization: Example Press\nPayload-Oxum: {octets}.{len(files)}\n".encode())
    retag(bag)
    return bag


def _edit(path: Path, old: bytes, new: bytes) -> None:
    data = path.read_bytes()
    assert old in data, f"{old!r} not in {path}"
    path.write_bytes(data.replace(old, new, 1))


def broken(change: Callable[[Path, Path], None], *, keep_tags: bool = False) -> Builder:
    def build(case: Path, sentinel: Path) -> Path:
        bag = make_bag(case)
        change(bag, sentinel)
        if not keep_tags:
            retag(bag)
        return bag

    return build


def bom(bag, sentinel):
    (bag / "bagit.txt").write_bytes(b"\xef\xbb\xbf" + BAGIT_TXT)


def version_2(bag, sentinel):
    _edit(bag / "bagit.txt", b"1.0", b"2.0")


def version_garbage(bag, sentinel):
    _edit(bag / "bagit.txt", b"1.0", b"one point oh")


def version_missing(bag, sentinel):
    (bag / "bagit.txt").write_bytes(b"Tag-File-Character-Encoding: UTF-8\n")


def encoding_missing(bag, sentinel):
    (bag / "bagit.txt").write_bytes(b"BagIt-Version: 1.0\n")


def encoding_unknown(bag, sentinel):
    _edit(bag / "bagit.txt", b"UTF-8", b"KLINGON-8")


def undecodable_bag_info(bag, sentinel):
    _edit(bag / "bag-info.txt", b"Example Press", b"Exampl\xe9 Press")


def bag_info_malformed(bag, sentinel):
    _edit(bag / "bag-info.txt", b"Payload-Oxum", b"this line has no label\nPayload-Oxum")


def oxum_malformed(bag, sentinel):
    info = (bag / "bag-info.txt").read_bytes()
    start = info.index(b"Payload-Oxum: ") + len(b"Payload-Oxum: ")
    (bag / "bag-info.txt").write_bytes(info[:start] + b"lots.of.bytes\n")


def oxum_count_wrong(bag, sentinel):
    _edit(bag / "bag-info.txt", b".2\n", b".3\n")


def no_data_directory(bag, sentinel):
    for p in sorted((bag / "data").rglob("*"), reverse=True):
        p.rmdir() if p.is_dir() else p.unlink()
    (bag / "data").rmdir()


def no_payload_manifest(bag, sentinel):
    (bag / "manifest-sha256.txt").unlink()
    (bag / "manifest-sha512.txt").unlink()


def duplicate_manifest_line(bag, sentinel):
    """The first entry again with another digest (a repeat with the same digest is only a warning)."""
    manifest = bag / "manifest-sha256.txt"
    digest, path = manifest.read_bytes().splitlines()[0].split(b" ", 1)
    other = b"0" * len(digest) if digest != b"0" * len(digest) else b"1" * len(digest)
    manifest.write_bytes(manifest.read_bytes() + other + b" " + path + b"\n")


def manifest_absolute_path(bag, sentinel):
    with open(bag / "manifest-sha256.txt", "ab") as f:
        f.write(f"{'0' * 64}  {sentinel}/EVIL-absolute\n".encode())


def manifest_backslash_traversal(bag, sentinel):
    with open(bag / "manifest-sha256.txt", "ab") as f:
        f.write(f"{'0' * 64}  data\\..\\..\\..\\{sentinel.name}\\EVIL\n".encode())


def tag_manifest_traversal(bag, sentinel):
    with open(bag / "tagmanifest-sha256.txt", "ab") as f:
        f.write(f"{'0' * 64}  ../../{sentinel.name}/EVIL\n".encode())


def manifest_line_malformed(bag, sentinel):
    with open(bag / "manifest-sha512.txt", "ab") as f:
        f.write(b"this is not a digest and a path\n")


def payload_missing(bag, sentinel):
    (bag / "data" / "article-1.txt").unlink()


def payload_changed(bag, sentinel):
    (bag / "data" / "article-1.txt").write_bytes(b"first articlE\n")


def payload_unexpected(bag, sentinel):
    (bag / "data" / "stowaway.txt").write_bytes(b"not in any manifest")


def not_in_every_manifest(bag, sentinel):
    lines = (bag / "manifest-sha512.txt").read_bytes().splitlines(keepends=True)
    (bag / "manifest-sha512.txt").write_bytes(b"".join(lines[1:]))


def manifest_names_directory(bag, sentinel):
    with open(bag / "manifest-sha256.txt", "ab") as f:
        f.write(f"{'0' * 64}  data/img\n".encode())


def tag_file_missing(bag, sentinel):
    (bag / "bag-info.txt").unlink()


def tag_file_changed(bag, sentinel):
    _edit(bag / "bag-info.txt", b"Example", b"Altered")


def fetch_txt(bag, sentinel):
    (bag / "fetch.txt").write_bytes(b"https://example.org/a.bin 5 data/a.bin\n")


def symlink_in_payload(bag, sentinel):
    os.symlink(sentinel, bag / "data" / "escape")


def fifo_in_payload(bag, sentinel):
    os.mkfifo(bag / "data" / "pipe")
