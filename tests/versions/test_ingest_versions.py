"""Versions at ingest: added, changed, removed and renamed files; only what changed is stored on the nodes."""

from __future__ import annotations

import json
import threading

import bagit
import pytest
from sqlalchemy import func, select

from preservation import versions
from preservation.catalog.models import Package, PackageFile, Replica
from preservation.catalog.version_models import PackageVersion, VersionFile
from preservation.errors import NotFound, VersionRefused
from preservation.ingest import ingest

from ..fixtures import make_repo, node_root
from .helpers import FIRST, fetch_into, node_files, package_ids, second, write_delivery

NODES = ("uni-pku", "cas-nsl", "inst-istic")
TAGS = {"bagit.txt", "bag-info.txt", "manifest-sha256.txt", "manifest-sha512.txt", "tagmanifest-sha256.txt",
        "tagmanifest-sha512.txt"}


@pytest.fixture
def two_versions(repo, tmp_path):
    v1 = ingest(repo, write_delivery(tmp_path / "v1", FIRST), "journals")
    assert v1["state"] == "preserved"
    v2 = ingest(repo, write_delivery(tmp_path / "v2", second(FIRST)), "journals", version_of=v1["package_id"])
    return v1, v2


def test_the_second_version_counts_each_kind_of_change(two_versions):
    _, v2 = two_versions
    assert v2["state"] == "preserved"
    assert {k: v2["version"][k] for k in versions.CHANGE_KINDS} == {
        "added": 1, "changed": 1, "removed": 1, "renamed": 1, "unchanged": 2}
    assert v2["version"]["number"] == 2
    assert v2["files"] == 5  # the complete new state


def test_each_node_stores_only_the_added_and_changed_files_of_a_new_version(repo, two_versions):
    v1, v2 = two_versions
    for node in NODES:
        held = node_files(node_root(repo, node), v2["package_id"])
        assert set(held) == TAGS | {"fetch.txt", "data/b.txt", "data/f.txt"}
        assert held["data/b.txt"] == b"bravo, corrected\n"
        fetch = held["fetch.txt"].decode().splitlines()
        assert sorted(fetch) == sorted([
            f"file:../{v1['package_id']}/data/data-a.txt 16 data/data-a.txt",
            f"file:../{v1['package_id']}/data/sub/d.txt 19 data/moved/d.txt",
            f"file:../{v1['package_id']}/data/%E6%9C%9F%E5%88%8A/e.pdf 700 data/期刊/e.pdf",
        ])
        # the manifests list every payload file of the version, the tag manifests what was bagged
        manifest = held["manifest-sha256.txt"].decode()
        assert all(f"data/{p}" in manifest for p in second(FIRST))
        assert "fetch.txt" not in held["tagmanifest-sha256.txt"].decode()
    with repo.catalog.session() as s:
        stored = set(s.scalars(select(PackageFile.path).where(PackageFile.package_id == v2["package_id"])))
        assert stored == TAGS | {"fetch.txt", "data/b.txt", "data/f.txt"}
        replicas = s.scalars(select(Replica).where(Replica.package_id == v2["package_id"])).all()
        assert {r.state for r in replicas} == {"verified"} and len(replicas) == 3
        stored_bytes = s.scalar(select(func.sum(PackageFile.size)).where(PackageFile.package_id == v2["package_id"]))
        assert all(r.bytes == stored_bytes for r in replicas)  # what the node holds, not what the version is


def test_every_version_on_a_node_is_a_valid_bag_once_fetched(repo, two_versions, tmp_path):
    v1, v2 = two_versions
    for node in NODES:
        bag = bagit.Bag(str(fetch_into(node_root(repo, node), v2["package_id"], tmp_path / f"fetched-{node}")))
        bag.validate()  # fetch.txt's file: URLs included
        assert (tmp_path / f"fetched-{node}" / "data/moved/d.txt").read_bytes() == FIRST["sub/d.txt"]


def test_a_third_version_references_each_file_where_it_was_stored(repo, two_versions, tmp_path):
    v1, v2 = two_versions
    third = second(FIRST)
    third["f.txt"] = b"foxtrot, corrected\n"
    third["c.txt"] = FIRST["c.txt"]  # back again: its bytes are still stored by version 1, but it is a new path
    v3 = ingest(repo, write_delivery(tmp_path / "v3", third), "journals", version_of=v2["package_id"])
    assert v3["version"]["number"] == 3 and v3["version"]["previous_id"] == v2["package_id"]
    assert {k: v3["version"][k] for k in versions.CHANGE_KINDS} == {
        "added": 1, "changed": 1, "removed": 0, "renamed": 0, "unchanged": 4}
    with repo.catalog.session() as s:
        refs = dict(s.execute(select(VersionFile.path, PackageFile.package_id)
                              .join(PackageFile, PackageFile.id == VersionFile.file_id)
                              .where(VersionFile.package_id == v3["package_id"])).all())
    assert refs == {"data/data-a.txt": v1["package_id"], "data/b.txt": v2["package_id"],
                    "data/moved/d.txt": v1["package_id"], "data/期刊/e.pdf": v1["package_id"]}
    with repo.catalog.session() as s:
        numbers = [v.number for v in versions.lineage_versions(s, v2["package_id"])]
    assert numbers == [1, 2, 3]


def test_what_changed_is_listed(repo, two_versions):
    v1, v2 = two_versions
    out = versions.changes(repo.catalog, v2["package_id"])
    assert out["added"] == ["data/f.txt"] and out["changed"] == ["data/b.txt"]
    assert out["removed"] == ["data/c.txt"]
    assert out["renamed"] == [{"from": "data/sub/d.txt", "to": "data/moved/d.txt"}]
    first = versions.changes(repo.catalog, v1["package_id"])
    assert first["number"] == 1 and first["counts"]["added"] == 5


def test_the_state_of_a_version_is_its_whole_payload(repo, two_versions):
    _, v2 = two_versions
    state = list(versions.iter_state(repo.catalog, v2["package_id"], batch=2))
    assert [r.path for r in state] == sorted(f"data/{p}" for p in second(FIRST))


def test_a_version_of_an_unknown_package_is_refused_before_anything_is_staged(repo, tmp_path):
    before = package_ids(repo)
    with pytest.raises(NotFound):
        ingest(repo, write_delivery(tmp_path / "v", FIRST), "journals", version_of="no-such-package")
    assert package_ids(repo) == before
    assert not any(repo.staging_dir.iterdir())


def test_a_version_in_another_collection_is_refused(repo, tmp_path):
    from preservation.collection import add_collection

    add_collection(repo, "books", "Books")
    v1 = ingest(repo, write_delivery(tmp_path / "v1", FIRST), "journals")
    with pytest.raises(VersionRefused) as e:
        ingest(repo, write_delivery(tmp_path / "v2", second(FIRST)), "books", version_of=v1["package_id"])
    assert e.value.code == "E503" and "journals" in str(e.value)


def test_a_version_of_a_package_not_yet_preserved_is_refused_and_leaves_nothing(repo, tmp_path):
    v1 = ingest(repo, write_delivery(tmp_path / "v1", FIRST), "journals", replicate=False)
    before = package_ids(repo)
    with pytest.raises(VersionRefused) as e:
        ingest(repo, write_delivery(tmp_path / "v2", second(FIRST)), "journals", version_of=v1["package_id"])
    assert "replicating" in str(e.value)
    assert package_ids(repo) == before
    with repo.catalog.session() as s:
        assert s.scalar(select(func.count()).select_from(PackageVersion)) == 0


def test_a_race_for_the_same_number_registers_one_version_and_leaves_nothing_of_the_other(repo, tmp_path,
                                                                                          monkeypatch):
    v1 = ingest(repo, write_delivery(tmp_path / "v1", FIRST), "journals")
    real = versions.plan_version

    def meanwhile(catalog, previous, bag):  # another ingest registers version 2 while this one compares
        plan = real(catalog, previous, bag)
        monkeypatch.setattr(versions, "plan_version", real)
        ingest(repo, write_delivery(tmp_path / "other", second(FIRST)), "journals", version_of=v1["package_id"])
        return plan

    monkeypatch.setattr(versions, "plan_version", meanwhile)
    before = package_ids(repo)
    with pytest.raises(VersionRefused):
        ingest(repo, write_delivery(tmp_path / "v2", second(FIRST)), "journals", version_of=v1["package_id"])
    assert len(package_ids(repo) - before) == 1  # the other one
    assert [p.name for p in repo.staging_dir.iterdir()] == []
    with repo.catalog.session() as s:
        assert [v.number for v in versions.lineage_versions(s, v1["package_id"])] == [1, 2]


def test_the_cli_ingests_a_version_and_says_what_changed(repo, run_cli, tmp_path):
    home = repo.settings.home
    first = run_cli("ingest", str(write_delivery(tmp_path / "v1", FIRST)), "--collection", "journals", "--inline",
                    "--json", home=home).json()
    out = run_cli("ingest", str(write_delivery(tmp_path / "v2", second(FIRST))), "--collection", "journals",
                  "--version-of", first["package_id"], "--inline", "--json", home=home).json()
    assert out["ok"] and out["version"]["number"] == 2 and out["version"]["renamed"] == 1
    text = run_cli("ingest", str(write_delivery(tmp_path / "v3", FIRST)), "--collection", "journals",
                   "--version-of", first["package_id"], "--inline", home=home).output
    assert "version 3 of" in text and "1 renamed" in text
    refused = run_cli("ingest", str(tmp_path / "v3"), "--collection", "journals", "--version-of", "nope\x1b[31m",
                      "--json", exit_code=5, home=home)
    assert json.loads(refused.stderr)["error"]["code"] == "E110"
    shown = run_cli("ingest", str(tmp_path / "v3"), "--collection", "journals", "--version-of", "nope\x1b[31m",
                    exit_code=5, home=home).stderr
    assert "E110" in shown and "\x1b" not in shown  # the outside text is escaped on the terminal


def test_two_ingests_racing_for_the_same_number_on_either_catalog_register_one(catalog_url, tmp_path, monkeypatch):
    repo = make_repo(tmp_path / "home", catalog_url)
    try:
        v1 = ingest(repo, write_delivery(tmp_path / "v1", FIRST), "journals")["package_id"]
        real = versions.plan_version
        barrier = threading.Barrier(2, timeout=60)

        def together(catalog, previous, bag):  # both compare with version 1, then both register
            plan = real(catalog, previous, bag)
            barrier.wait()
            return plan

        monkeypatch.setattr(versions, "plan_version", together)
        outcomes: list[object] = []

        def one(n: int) -> None:
            try:
                outcomes.append(ingest(repo, write_delivery(tmp_path / f"race-{n}", second(FIRST)), "journals",
                                       version_of=v1, replicate=False))
            except VersionRefused as e:
                outcomes.append(e)

        threads = [threading.Thread(target=one, args=(n,)) for n in (1, 2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert sorted(type(o).__name__ for o in outcomes) == ["VersionRefused", "dict"]
        with repo.catalog.session() as s:
            assert [v.number for v in versions.lineage_versions(s, v1)] == [1, 2]
        registered = next(o for o in outcomes if isinstance(o, dict))["package_id"]
        assert sorted(p.name for p in repo.staging_dir.iterdir()) == [registered]  # the refused one left nothing
    finally:
        repo.close()
