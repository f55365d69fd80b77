"""The stored tree: written with each event, equal to a rebuild from the events, proofs from stored hashes only."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from preservation import merkle
from preservation.catalog.evidence_models import MerkleNode, MissingNode, compute, fetch, rebuild
from preservation.catalog.models import Event
from preservation.events import FIXITY_CHECK, SUCCESS, record_event


def _nodes(s) -> dict:
    return {(lv, ix): h for lv, ix, h in s.execute(select(MerkleNode.level, MerkleNode.index, MerkleNode.hash))}


def test_appends_store_every_complete_subtree_and_match_a_rebuild(catalog):
    for i in range(37):
        with catalog.session() as s:
            record_event(s, FIXITY_CHECK, SUCCESS, package_id="p-1", detail={"i": i})
    with catalog.session() as s:
        stored = _nodes(s)
        # 37 leaves: 18 + 9 + 4 + 2 + 1 perfect subtrees above the leaves
        assert len(stored) == 34
        assert rebuild(s) == 37
        assert _nodes(s) == stored
        hashes = [bytes.fromhex(h) for h in s.scalars(select(Event.hash).order_by(Event.seq))]
        leaves = {(0, i): merkle.leaf_hash(h) for i, h in enumerate(hashes)}
        every = {**leaves, **stored}
        for n in range(1, 38):
            assert compute(s, lambda lk: merkle.root_hash(n, lk)) == merkle.root_hash(n, lambda lv, ix: every[(lv, ix)])
        proof = compute(s, lambda lk: merkle.inclusion_proof(20, 37, lk))
        root = compute(s, lambda lk: merkle.root_hash(37, lk))
        assert merkle.verify_inclusion(20, 37, merkle.leaf_hash(hashes[20]), proof, root)


def test_an_event_that_rolls_back_leaves_no_tree_rows(catalog):
    with catalog.session() as s:
        record_event(s, FIXITY_CHECK, SUCCESS)
    with pytest.raises(RuntimeError):
        with catalog.session() as s:
            record_event(s, FIXITY_CHECK, SUCCESS)
            raise RuntimeError("rolled back")
    with catalog.session() as s:
        assert s.scalar(select(func.count()).select_from(MerkleNode)) == 0
        record_event(s, FIXITY_CHECK, SUCCESS)
    with catalog.session() as s:
        assert list(_nodes(s)) == [(1, 0)]


def test_a_missing_stored_hash_is_an_error_not_a_wrong_proof(catalog):
    for _ in range(8):
        with catalog.session() as s:
            record_event(s, FIXITY_CHECK, SUCCESS)
    with catalog.session() as s:
        s.execute(MerkleNode.__table__.delete().where(MerkleNode.level == 3))
        with pytest.raises(MissingNode):
            compute(s, lambda lk: merkle.root_hash(8, lk))
        with pytest.raises(MissingNode):
            fetch(s, {(0, 99)})


def test_migration_0012_builds_the_tree_of_the_events_already_held(catalog, catalog_url):
    from alembic import command

    from preservation.catalog import db

    for i in range(45):
        with catalog.session() as s:
            record_event(s, FIXITY_CHECK, SUCCESS, detail={"i": i})
    with catalog.session() as s:
        built = _nodes(s)
    config = db._alembic_config(catalog_url)
    command.downgrade(config, "0011")
    command.upgrade(config, "head")
    with catalog.session() as s:
        assert _nodes(s) == built and len(built) == 22 + 11 + 5 + 2 + 1
