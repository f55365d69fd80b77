"""The invariant checks themselves: each one must fire on the breakage it exists to catch.

The crash tests pass when these checks find nothing, so every check is shown
here to find something when the breakage is really there.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select, text

from preservation.catalog.models import Event, PackageFile, Replica, utcnow
from preservation.ingest import ingest
from storage_adapters.filesystem import TEMP_DIR

from ..corruption import add_file, delete, flip_bit
from ..fixtures import node_root
from .invariants import Damage, check_catalog_against_nodes, check_settled
from .work import make_corpus


@pytest.fixture
def preserved(repo, tmp_path) -> str:
    package_id = ingest(repo, make_corpus(tmp_path / "delivery", 8, seed=5), "journals")["package_id"]
    assert check_catalog_against_nodes(repo) == [] and check_settled(repo, staging=repo.staging_dir) == []
    return package_id


def _payload_path(repo, package_id: str) -> str:
    with repo.catalog.session() as s:
        return s.scalars(select(PackageFile.path).where(PackageFile.package_id == package_id,
                                                        PackageFile.is_tag.is_(False))).first()


def _set_replica_state(repo, package_id: str, node: str, state: str) -> None:
    with repo.catalog.session() as s:
        for r in s.scalars(select(Replica).where(Replica.package_id == package_id)):
            if r.node.name == node:
                r.state = state


def _lose_a_verified_file(repo, package_id):
    delete(node_root(repo, "cas-nsl") / package_id / _payload_path(repo, package_id))


def _half_written_file(repo, package_id):
    target = node_root(repo, "uni-pku") / package_id / _payload_path(repo, package_id)
    target.write_bytes(target.read_bytes()[:5])
    _set_replica_state(repo, package_id, "uni-pku", "copying")


def _orphan_object(repo, package_id):
    add_file(node_root(repo, "inst-istic") / str(uuid.uuid4()) / "data" / "orphan.bin")


def _stray_record(repo, package_id):
    add_file(node_root(repo, "inst-istic") / ".preserve" / "packages" / f"{uuid.uuid4()}.json", b"{}")


def _torn_record(repo, package_id):
    record = node_root(repo, "cas-nsl") / ".preserve" / "packages" / f"{package_id}.json"
    record.write_bytes(record.read_bytes()[:10])


def _preserved_without_verified_copies(repo, package_id):
    _set_replica_state(repo, package_id, "cas-nsl", "pending")


def _corrupt_without_repair_job(repo, package_id):
    _set_replica_state(repo, package_id, "uni-pku", "corrupt")


def _registered_without_copies(repo, package_id):
    with repo.catalog.session() as s:
        s.execute(text("DELETE FROM replicas WHERE package_id = :p"), {"p": package_id})


def _rewritten_history(repo, package_id):
    with repo.catalog.session() as s:
        s.execute(text("UPDATE events SET outcome = 'failure' WHERE seq = 2"))
        assert s.get(Event, 2) is not None


BREAKAGES = {
    "verified copy lost a file": (_lose_a_verified_file, "is verified but"),
    "half-written file visible": (_half_written_file, "half-written"),
    "orphaned object": (_orphan_object, "orphan"),
    "record of no package": (_stray_record, "of no catalogued package"),
    "torn package record": (_torn_record, "not complete JSON"),
    "preserved without its copies": (_preserved_without_verified_copies, "is preserved but lacks"),
    "copy waiting for no job": (_corrupt_without_repair_job, "no repair job"),
    "history rewritten": (_rewritten_history, "event chain broken"),
    "half-registered package": (_registered_without_copies, "half-registered"),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_each_invariant_check_fires(repo, preserved, breakage):
    damage, wanted = BREAKAGES[breakage]
    damage(repo, preserved)
    found = check_catalog_against_nodes(repo)
    assert any(wanted in v for v in found), found


def test_known_rot_is_excused_only_until_an_audit_has_seen_it(repo, preserved):
    path = _payload_path(repo, preserved)
    flip_bit(node_root(repo, "inst-istic") / preserved / path)
    damage = Damage(since=utcnow(), changed={("inst-istic", preserved, path)})
    assert check_catalog_against_nodes(repo, damage) == []
    assert any("is verified but" in v for v in check_catalog_against_nodes(repo))
    with repo.catalog.session() as s:
        for r in s.scalars(select(Replica).where(Replica.package_id == preserved)):
            r.last_audit_at = utcnow()
    assert any("is verified but" in v for v in check_catalog_against_nodes(repo, damage))


def test_settled_check_wants_no_leftovers(repo, preserved):
    add_file(node_root(repo, "uni-pku") / TEMP_DIR / "interrupted.part")
    (repo.staging_dir / "left-behind").mkdir()
    found = check_settled(repo, staging=repo.staging_dir)
    assert any("temporary files" in v for v in found) and any("staging not empty" in v for v in found)
