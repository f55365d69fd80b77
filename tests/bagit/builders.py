"""Builders for the bagit tests: trees, bags, archives, and ways to damage a bag.

Damage helpers that touch tag files can "reseal" the bag (recompute its tag
manifests and Payload-Oxum) so that a test sees only the problem it is about.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tarfile
import zipfile
from pathlib import Path
from typing import Mapping

from preservation.bagit import create_bag, open_delivery

PAYLOAD = {
    "a.txt": b"alpha\n",
    "sub/b.txt": b"bravo bravo\n",
    "深/层/中文.txt": "你好".encode(),
    "empty": b"",
}
INFO = {
    "External-Identifier": "pkg-0001",
    "Bag-Group-Identifier": "springer-journals",
    "Source-Organization": "Springer Nature",
    "Bagging-Date": "2024-05-01",
}


def make_tree(root: Path, files: Mapping[str | bytes, bytes]) -> Path:
    """Write ``files`` (relative path -> bytes; bytes paths for names that are not UTF-8) under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    base = os.fsencode(root)
    for rel, data in files.items():
        path = os.path.join(base, rel if isinstance(rel, bytes) else os.fsencode(rel))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    return root


def make_bag(tmp: Path, files: Mapping[str | bytes, bytes] = PAYLOAD, name: str = "bag", strict: bool = True) -> Path:
    source = make_tree(tmp / f"{name}-src", files)
    dest = tmp / name
    create_bag(open_delivery(source, strict=strict), dest, INFO, fsync=False)
    return dest


# --- editing bags ---------------------------------------------------------------------


def digest(algorithm: str, data: bytes) -> str:
    return hashlib.new(algorithm, data).hexdigest()


def manifests(bag: Path, prefix: str = "manifest-") -> dict[str, Path]:
    return {p.name[len(prefix) : -4]: p for p in sorted(bag.glob(f"{prefix}*.txt"))}


def reseal(bag: Path) -> None:
    """Recompute every tag manifest over the top-level tag files (tag manifests excluded)."""
    tag_files = sorted(p for p in bag.iterdir() if p.is_file() and not p.name.startswith("tagmanifest-"))
    for algorithm, manifest in manifests(bag, "tagmanifest-").items():
        manifest.write_text("".join(f"{digest(algorithm, p.read_bytes())}  {p.name}\n" for p in tag_files))


def set_oxum(bag: Path, value: str | None = None) -> None:
    """Rewrite Payload-Oxum (by default: to match data/ as it is now)."""
    if value is None:
        files = [p for p in (bag / "data").rglob("*") if p.is_file() and not p.is_symlink()]
        value = f"{sum(p.stat().st_size for p in files)}.{len(files)}"
    info = bag / "bag-info.txt"
    info.write_text(re.sub(r"(?m)^Payload-Oxum: .*$", f"Payload-Oxum: {value}", info.read_text()))


def add_payload(bag: Path, rel: str, data: bytes, listed_as: str | None = None) -> None:
    """Add data/<rel> and list it (as ``listed_as``, default rel) in every payload manifest."""
    path = bag / "data" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    entry = "data/" + (listed_as if listed_as is not None else rel)
    for algorithm, manifest in manifests(bag).items():
        with manifest.open("a", encoding="utf-8") as f:
            f.write(f"{digest(algorithm, data)}  {entry}\n")
    set_oxum(bag)
    reseal(bag)


def edit_text(bag: Path, name: str, old: str, new: str, seal: bool = True) -> None:
    path = bag / name
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    if seal:
        reseal(bag)


def append_line(bag: Path, name: str, line: str, seal: bool = True) -> None:
    with (bag / name).open("a", encoding="utf-8") as f:
        f.write(line + "\n")
    if seal:
        reseal(bag)


# --- archives ----------------------------------------------------------------------------


def tar_of(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]], mode: str = "w") -> Path:
    with tarfile.open(path, mode) as tar:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                tar.addfile(member)
            else:
                name, data = member
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


def tar_member(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


def zip_of(path: Path, members: list[tuple[str | zipfile.ZipInfo, bytes]], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return path


def zip_symlink(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (0o120777 << 16)
    return info, target.encode()
