"""Bytes come only from a copy that matches the catalog; a bad copy is flagged and repaired, never served."""

from __future__ import annotations

import hashlib
import io
import zipfile
from datetime import timedelta
from urllib.parse import quote

from sqlalchemy import select, update

from preservation.audit import audit_replica
from preservation.catalog.models import Event, Job, Node, Package, Replica, utcnow

from ..corruption import flip_bit, truncate
from ..fixtures import node_root
from .test_api import catalog_file
from .world import PAYLOAD_FILE


def make_first_choice(world, label, node_name) -> int:
    """Make ``node_name``'s copy the most recently verified one; returns its replica id."""
    with world.repo.catalog.session() as s:
        replica = s.execute(select(Replica).join(Node).where(
            Replica.package_id == world.packages[label], Node.name == node_name)).scalar_one()
        replica.verified_at = utcnow() + timedelta(seconds=5)
        return replica.id


def replica_state(world, rid) -> str:
    with world.repo.catalog.session() as s:
        return s.get(Replica, rid).state


def jobs_for(world, rid) -> list[tuple[str, str]]:
    with world.repo.catalog.session() as s:
        return [(j.kind, j.state) for j in s.scalars(select(Job).where(Job.kind.in_(("audit", "repair"))))
                if j.payload.get("replica_id") == rid]


def on_node(world, node, label, path=PAYLOAD_FILE):
    return node_root(world.repo, node) / world.packages[label] / path


def url(world, label):
    return f"/api/v1/packages/{world.packages[label]}/files/{quote(PAYLOAD_FILE)}"


def test_first_choice_copy_serves_when_it_is_good(client, world):
    make_first_choice(world, "open", "inst-istic")
    r = client.get(url(world, "open"), headers=world.auth("alice"))
    assert r.status_code == 200 and r.headers["x-preserve-source"] == "inst-istic"


def test_corrupt_first_choice_is_skipped_flagged_audited_and_repaired(client, world):
    size, sha = catalog_file(world, "open")
    rid = make_first_choice(world, "open", "cas-nsl")
    flip_bit(on_node(world, "cas-nsl", "open"), offset=size // 2)
    r = client.get(url(world, "open"), headers=world.auth("alice"))
    assert r.status_code == 200
    assert hashlib.sha256(r.content).hexdigest() == sha and r.headers["x-preserve-source"] != "cas-nsl"
    assert replica_state(world, rid) == "suspect"
    assert jobs_for(world, rid) == [("audit", "queued")]
    with world.repo.catalog.session() as s:
        ev = s.scalars(select(Event).where(Event.replica_id == rid).order_by(Event.seq.desc())).first()
        assert (ev.event_type, ev.outcome, ev.agent) == ("fixity check", "failure", "user:alice")
        assert ev.detail["path"] == PAYLOAD_FILE and ev.detail["problem"].startswith("sha256 ")
        assert s.get(Package, world.packages["open"]).state == "degraded"  # one required copy is in doubt
    # the queued audit (what a worker runs) confirms the damage and queues the repair
    audit = audit_replica(world.repo, rid)
    assert audit.state == "corrupt" and [f.path for f in audit.fixity.findings] == [PAYLOAD_FILE]
    assert ("repair", "queued") in jobs_for(world, rid)
    # the suspect copy is not tried again
    again = client.get(url(world, "open"), headers={**world.auth("alice"), "Range": "bytes=0-99"})
    assert again.status_code == 206 and again.headers["x-preserve-source"] != "cas-nsl"


def test_a_copy_missing_the_file_is_flagged_too(client, world):
    rid = make_first_choice(world, "open", "uni-pku")
    on_node(world, "uni-pku", "open").unlink()
    r = client.get(url(world, "open"), headers=world.auth("bob"))
    assert r.status_code == 200 and hashlib.sha256(r.content).hexdigest() == catalog_file(world, "open")[1]
    assert replica_state(world, rid) == "suspect"
    with world.repo.catalog.session() as s:
        assert "E302" in s.get(Replica, rid).last_error


def test_no_good_copy_means_no_bytes_at_all(client, world):
    size, _ = catalog_file(world, "open")
    truncate(on_node(world, "uni-pku", "open"), size - 1)
    flip_bit(on_node(world, "cas-nsl", "open"), offset=3)
    flip_bit(on_node(world, "inst-istic", "open"), offset=size - 1)
    r = client.get(url(world, "open"), headers=world.auth("alice"))
    assert r.status_code == 503 and r.json()["error"]["code"] == "E502"
    assert len(r.content) < 2000 and "content-range" not in r.headers
    with world.repo.catalog.session() as s:
        states = {r.state for r in s.scalars(select(Replica).where(Replica.package_id == world.packages["open"]))}
    assert states == {"suspect"}
    # nothing left to serve from: later requests fail the same way, before any byte
    assert client.get(url(world, "open"), headers=world.auth("alice")).status_code == 503


def test_offline_and_draining_nodes_are_not_read(client, world):
    with world.repo.catalog.session() as s:
        s.execute(update(Node).where(Node.name.in_(("uni-pku", "cas-nsl"))).values(status="offline"))
    r = client.get(url(world, "open"), headers=world.auth("alice"))
    assert r.status_code == 200 and r.headers["x-preserve-source"] == "inst-istic"


def test_a_draining_node_serves_when_the_others_are_offline(client, world):
    with world.repo.catalog.session() as s:
        s.execute(update(Node).where(Node.name.in_(("uni-pku", "cas-nsl"))).values(status="offline"))
        s.execute(update(Node).where(Node.name == "inst-istic").values(status="draining"))
    r = client.get(url(world, "open"), headers=world.auth("alice"))
    assert r.status_code == 200 and r.headers["x-preserve-source"] == "inst-istic"
    assert hashlib.sha256(r.content).hexdigest() == catalog_file(world, "open")[1]


def test_zip_survives_a_corrupt_first_choice(client, world):
    rid = make_first_choice(world, "open", "cas-nsl")
    flip_bit(on_node(world, "cas-nsl", "open", "data/articles/a.txt"), offset=0)
    r = client.get(f"/api/v1/packages/{world.packages['open']}/zip", headers=world.auth("alice"))
    assert r.status_code == 200
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        assert zf.testzip() is None
        pid = world.packages["open"]
        data = zf.read(f"{pid}/{PAYLOAD_FILE}")
        assert hashlib.sha256(data).hexdigest() == catalog_file(world, "open")[1]
        text = zf.read(f"{pid}/data/articles/a.txt")
        assert hashlib.sha256(text).hexdigest() == catalog_file(world, "open", "data/articles/a.txt")[1]
    assert replica_state(world, rid) == "suspect"
