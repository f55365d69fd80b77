"""Deliveries that change from version to version, and what the nodes hold of them."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

from sqlalchemy import select

from preservation.catalog.models import Package

FIRST = {
    "data-a.txt": b"alpha unchanged\n",
    "b.txt": b"bravo, to be corrected\n",
    "c.txt": b"charlie, to be retracted\n",
    "sub/d.txt": b"delta, to be moved\n",
    "期刊/e.pdf": b"%PDF-1.4 echo\n" * 50,
}


def write_delivery(root: Path, files: dict[str, bytes]) -> Path:
    """A delivery directory holding exactly ``files`` (relative path -> bytes)."""
    if root.exists():
        shutil.rmtree(root)
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def second(first: dict[str, bytes]) -> dict[str, bytes]:
    """Version 2: b changed, c removed, sub/d renamed to moved/d.txt, f added, the rest unchanged."""
    files = dict(first)
    files["b.txt"] = b"bravo, corrected\n"
    del files["c.txt"]
    files["moved/d.txt"] = files.pop("sub/d.txt")
    files["f.txt"] = b"foxtrot, new\n"
    return files


def node_files(node_root: Path, package_id: str) -> dict[str, bytes]:
    """What a filesystem node holds under a package's prefix: bag path -> bytes."""
    base = node_root / package_id
    return {p.relative_to(base).as_posix(): p.read_bytes() for p in sorted(base.rglob("*")) if p.is_file()}


def fetch_into(node_root: Path, package_id: str, dest: Path) -> Path:
    """Copy a version's bag from a node and fetch what its fetch.txt lists, resolving each URL as a file: URL
    relative to the bag's directory on the node (what a third party with the node's files would do)."""
    bag = node_root / package_id
    shutil.copytree(bag, dest)
    for line in (dest / "fetch.txt").read_text(encoding="utf-8").splitlines():
        url, length, path = line.split(" ", 2)
        parsed = urlparse(url)
        assert parsed.scheme == "file" and not parsed.netloc
        source = (bag / unquote(parsed.path)).resolve()
        assert source.is_relative_to(node_root.resolve())
        data = source.read_bytes()
        assert len(data) == int(length)
        target = dest / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return dest


def package_ids(repo) -> set[str]:
    with repo.catalog.session() as s:
        return set(s.scalars(select(Package.id)))
