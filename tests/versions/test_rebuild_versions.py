"""A catalog rebuilt from the nodes binds the versions again: their lineage, numbers and references."""

from __future__ import annotations

import bagit
from sqlalchemy import select

from preservation.catalog.models import Package, PackageFile
from preservation.catalog.version_models import PackageVersion, VersionFile
from preservation.home import init_home
from preservation.ingest import ingest
from preservation.nodes import add_node
from preservation.rebuild import rebuild_from_nodes
from preservation.repository import Repository
from preservation.restore import restore

from ..fixtures import NODES, node_root
from .helpers import FIRST, second, write_delivery


def _versions(repo):
    with repo.catalog.session() as s:
        rows = {(v.package_id, v.lineage_id, v.number, v.previous_id) for v in s.scalars(select(PackageVersion))}
        refs = set(s.execute(select(VersionFile.package_id, VersionFile.path, PackageFile.package_id, PackageFile.path)
                             .join(PackageFile, PackageFile.id == VersionFile.file_id)).all())
        packages = {p.id: (p.payload_files, p.payload_bytes, p.payload_oxum) for p in s.scalars(select(Package))}
    return rows, refs, packages


def test_rebuild_binds_every_version_again(repo, tmp_path):
    third = second(FIRST)
    third["g.txt"] = b"golf\n"
    ids = []
    for n, files in enumerate((FIRST, second(FIRST), third), start=1):
        ids.append(ingest(repo, write_delivery(tmp_path / f"v{n}", files), "journals",
                          version_of=ids[-1] if ids else None)["package_id"])
    before = _versions(repo)
    home = repo.settings.home
    repo.close()
    (home / "catalog.sqlite").unlink()
    for extra in ("catalog.sqlite-wal", "catalog.sqlite-shm"):
        (home / extra).unlink(missing_ok=True)
    init_home(home)
    fresh = Repository.open(home)
    try:
        for name, org_type, region in NODES:
            add_node(fresh, name, org_type, region, node_root(fresh, name).as_uri())
        report = rebuild_from_nodes(fresh)
        assert report.ok, report.to_dict()
        assert report.audited_ok == 9
        assert _versions(fresh) == before
        restore(fresh, ids[0], tmp_path / "restored", version=3)
        assert (tmp_path / "restored" / "data/g.txt").read_bytes() == b"golf\n"
        bagit.Bag(str(tmp_path / "restored")).validate()
    finally:
        fresh.close()
