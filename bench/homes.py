"""A repository home for benchmarks: catalog, staging and three filesystem nodes.

Everything lives under one directory (on the disk that holds the corpora),
mirroring the test suite's ``repo`` fixture without depending on pytest.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from preservation.collection import add_collection
from preservation.home import init_home
from preservation.nodes import add_node
from preservation.repository import Repository

COLLECTION = "journals"
NODES = [("uni-pku", "university", "beijing"), ("cas-nsl", "cas", "beijing"), ("inst-istic", "institute", "wuhan")]


def fresh_repo(home: Path, catalog_url: str | None = None) -> Repository:
    """A new home at ``home`` (anything there before is removed), opened."""
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    config = f"catalog_url: '{catalog_url}'\n" if catalog_url else ""
    (home / "preserve.yaml").write_text(config, encoding="utf-8")
    init_home(home)
    repo = Repository.open(home)
    for name, org_type, region in NODES:
        add_node(repo, name, org_type, region, (home / "nodes" / name).as_uri())
    add_collection(repo, COLLECTION, "Benchmark journals", publisher="Bench Publisher", licence="BENCH-1")
    return repo
