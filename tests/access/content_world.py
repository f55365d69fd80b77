"""A package a reader browses: Chinese folder names, a folder of 250 files (three pages), files of every kind
a browser may or may not show, and names that test the search (case, Greek, SQL wildcards, markup).

Ingested once per test session into a copy of the access world's template (``world.py``), in the open
collection (every library reads it), and copied for each test.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from devtools.articles import pdf_bytes
from preservation.ingest import ingest
from preservation.repository import Repository

from .world import build_template, copy_world

ISSUE = "期刊/物理学报/2019/第07期"
PDF = f"{ISSUE}/文章-001.pdf"
BULK = 250
SVG = (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
       b'<script>alert(document.cookie)</script></svg>\n')
HTML = b"<!DOCTYPE html>\n<html><body><script>fetch('/api/v1/me')</script></body></html>\n"


def _image(kind: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (30, 120, 200)).save(out, format=kind)
    return out.getvalue()


# payload path (under data/) → bytes
def content_files() -> dict[str, bytes]:
    files = {
        PDF: pdf_bytes("Acta Phys. Sin. 68 (7)", 20_000, seed=7),
        f"{ISSUE}/图1.png": _image("PNG"),
        f"{ISSUE}/photo.JPG": _image("JPEG"),
        f"{ISSUE}/anim.gif": _image("GIF"),
        f"{ISSUE}/pic.webp": _image("WEBP"),
        f"{ISSUE}/说明.txt": "《物理学报》第68卷第7期 目录\n".encode() * 40,
        f"{ISSUE}/目录-GB18030.txt": "《物理学报》第68卷第7期 目录\n".encode("gb18030") * 40,
        "hostile/page.html": HTML,
        "hostile/drawing.svg": SVG,
        "hostile/report.pdf": HTML,  # a name that says PDF, bytes that are HTML
        "hostile/notes.txt": HTML,  # a name that says text, bytes that are HTML
        "hostile/data.xml": b'<?xml version="1.0"?>\n<root><x>1</x></root>\n',
        "names/Ärger.txt": b"a\n",
        "names/ärger-2.txt": b"b\n",
        "names/ΣΊΣΥΦΟΣ.txt": b"c\n",
        "names/50%_off.txt": b"d\n",
        "names/a_b.txt": b"e\n",
        "names/abc.txt": b"f\n",
        "names/<img src=x onerror=alert(1)>.txt": b"g\n",
        "特殊 & #1+2 50%/文件?.txt": b"h\n",  # a folder whose name a URL must encode
    }
    for n in range(BULK):
        files[f"bulk/file-{n:03d}.dat"] = bytes([n % 256]) * (n + 1)
    return files


def write_delivery(root: Path) -> Path:
    for rel, data in content_files().items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def build_content_template(home: Path, work: Path) -> tuple[dict[str, str], dict[str, str]]:
    packages, tokens = build_template(home, work)
    repo = Repository.open(home)
    try:
        result = ingest(repo, write_delivery(work / "content"), "open-d", name="reading-room-2019")
        assert result["state"] == "preserved", result
        packages["content"] = result["package_id"]
    finally:
        repo.close()
    return packages, tokens


@pytest.fixture(scope="session")
def content_template(tmp_path_factory):
    base = tmp_path_factory.mktemp("content-template")
    packages, tokens = build_content_template(base / "home", base / "deliveries")
    return base / "home", packages, tokens


@pytest.fixture
def content(content_template, tmp_path):
    """The access world with the package ``content_files`` in it: ``content.packages["content"]``."""
    template, packages, tokens = content_template
    world = copy_world(template, packages, tokens, tmp_path / "home")
    try:
        yield world
    finally:
        world.repo.close()
