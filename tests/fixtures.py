"""Shared fixtures: a repository with three nodes, an in-process CLI, PostgreSQL catalogs."""

from __future__ import annotations

import gc
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, select, text

from devtools.demo import make_sample_delivery
from preservation import collector
from preservation.catalog.models import Replica
from preservation.cli.main import cli
from preservation.collection import add_collection
from preservation.home import init_home
from preservation.ingest import ingest
from preservation.nodes import add_node
from preservation.repository import Repository

from .services import POSTGRES_URL, postgres_unusable

NODES = [("uni-pku", "university", "beijing"), ("cas-nsl", "cas", "beijing"), ("inst-istic", "institute", "wuhan")]


@dataclass
class CLIResult:
    exit_code: int
    output: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.output)


@pytest.fixture
def run_cli(tmp_path):
    """run_cli(*args, exit_code=0, home=None): run `preserve` in-process and check its exit code."""
    default_home = tmp_path / "home"

    def run(*args: str, exit_code: int | None = 0, home: Path | None = None) -> CLIResult:
        runner = CliRunner()
        result = runner.invoke(cli, ["--home", str(home or default_home), *map(str, args)], catch_exceptions=False)
        out = CLIResult(result.exit_code, result.stdout, result.stderr)
        if exit_code is not None:
            assert result.exit_code == exit_code, f"exit {result.exit_code}, wanted {exit_code}\n{result.output}"
        return out

    run.home = default_home
    return run


def _postgres_url() -> tuple[str, str]:
    """A fresh schema in the test database, as a URL whose connections use it."""
    try:
        engine = create_engine(POSTGRES_URL)
        schema = f"t_{uuid.uuid4().hex[:12]}"
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        engine.dispose()
    except Exception as e:  # noqa: BLE001 - any failure means the server is not usable
        postgres_unusable(e)
    return f"{POSTGRES_URL}?options=-csearch_path%3D{schema}", schema


def _drop_schema(schema: str) -> None:
    engine = create_engine(POSTGRES_URL)
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_url(request, tmp_path):
    """Each catalog test runs on SQLite and on PostgreSQL (a schema of its own)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.sqlite'}"
        return
    url, schema = _postgres_url()
    try:
        yield url
    finally:
        _drop_schema(schema)


@pytest.fixture
def catalog(catalog_url):
    """A migrated catalog on each back end of ``catalog_url``, disposed of after the test."""
    from preservation.catalog.db import Catalog

    cat = Catalog(catalog_url)
    cat.upgrade()
    try:
        yield cat
    finally:
        cat.dispose()


def make_repo(home: Path, catalog_url: str | None = None, nodes=NODES, policy: Path | None = None) -> Repository:
    home.mkdir(parents=True, exist_ok=True)
    lines = []
    if catalog_url:
        lines.append(f"catalog_url: '{catalog_url}'")
    if policy:
        lines.append(f"policy: '{policy}'")
    (home / "preserve.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    init_home(home)
    repo = Repository.open(home)
    for name, org_type, region in nodes:
        add_node(repo, name, org_type, region, (home / "nodes" / name).as_uri())
    add_collection(repo, "journals", "中文期刊 Journals", publisher="Publisher Ltd", licence="LIC-1")
    return repo


@pytest.fixture
def repo(tmp_path):
    """A repository on SQLite with three filesystem nodes and one collection."""
    r = make_repo(tmp_path / "home")
    try:
        yield r
    finally:
        r.close()


@pytest.fixture
def sample_delivery(tmp_path) -> Path:
    return make_sample_delivery(tmp_path / "delivery", megabytes=1)


@pytest.fixture
def preserved(repo, sample_delivery) -> str:
    """The id of the sample delivery, ingested and preserved on the three nodes."""
    result = ingest(repo, sample_delivery, "journals")
    assert result["state"] == "preserved"
    return result["package_id"]


def replicas_by_node(repo: Repository, package_id: str) -> dict[str, Replica]:
    """The package's replicas by node name, as they are in the catalog now."""
    with repo.catalog.session() as s:
        return {r.node.name: r for r in s.scalars(select(Replica).where(Replica.package_id == package_id))}


def node_root(repo: Repository, node_name: str) -> Path:
    return Path(repo.settings.home) / "nodes" / node_name


@pytest.fixture
def collector_running():
    """The garbage collector on, and no pause of :mod:`preservation.collector` left over by another test."""
    assert collector._pauses == 0
    gc.enable()
    yield
    gc.enable()
