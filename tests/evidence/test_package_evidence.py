"""Per-package evidence on the nodes (issue 20.5): each copy's record is signed by the coordinator, and a node
checks what it holds against it without the catalog; `catalog rebuild --from-nodes` refuses a forged record."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from preservation.catalog.models import Package, Replica
from preservation.checkpoints import make_checkpoint, public_keys
from preservation.collection import add_collection
from preservation.events import HASHED_FIELDS, event_hash
from preservation.home import init_home
from preservation.ingest import ingest
from preservation.layout import PackageLayout
from preservation.node_records import (
    EvidenceSigner,
    canonical,
    evidence_signer,
    flush_events,
    sign_evidence,
    write_package_record,
)
from preservation.nodes import add_node
from preservation.package_evidence import check_record
from preservation.rebuild import rebuild_from_nodes
from preservation.repository import Repository
from preservation.signing_keys import key_id, raw_public
from storage_adapters import open_local

from ..fixtures import NODES, node_root


def _record_path(repo, node, package_id):
    return node_root(repo, node) / PackageLayout(package_id).record_key


@contextlib.contextmanager
def _rebuilt(home):
    """The catalog lost: a new one at ``home`` with the same nodes, rebuilt from them (no audit); the
    repository that wrote the old one must be closed."""
    for name in ("catalog.sqlite", "catalog.sqlite-wal", "catalog.sqlite-shm"):
        (home / name).unlink(missing_ok=True)
    init_home(home)
    with Repository.open(home) as fresh:
        for name, org_type, region in NODES:
            add_node(fresh, name, org_type, region, node_root(fresh, name).as_uri())
        yield fresh, rebuild_from_nodes(fresh, audit=False)


def _check(repo, node, package_id, keys=None):
    adapter = open_local(node_root(repo, node), create=False)
    return check_record(adapter, package_id, keys if keys is not None else public_keys(repo.settings), node=node)


def _pub_files(repo):
    return sorted(repo.settings.checkpoints.key.parent.glob("*.pub"))


def _forge(repo, node, package_id, change, signer):
    """Change the record's evidence body on ``node`` and sign it again with ``signer``."""
    path = _record_path(repo, node, package_id)
    record = json.loads(path.read_text("utf-8"))
    body = record["evidence"]["body"]
    change(body)
    record["evidence"] = sign_evidence(signer, body)
    path.write_text(json.dumps(record, ensure_ascii=False), "utf-8")
    return record


def _other_key(name):
    key = Ed25519PrivateKey.generate()
    return EvidenceSigner(name, key_id(name, raw_public(key.public_key())), key)


def test_each_copy_carries_evidence_signed_by_the_coordinator_that_the_node_checks_alone(repo, preserved, run_cli):
    for name, _, _ in NODES:
        check = _check(repo, name, preserved)
        assert check.ok and check.signed, check.to_dict()
        body = json.loads(_record_path(repo, name, preserved).read_text("utf-8"))["evidence"]["body"]
        assert {"bagit.txt", "bag-info.txt", "manifest-sha512.txt", "tagmanifest-sha512.txt"} <= set(body["tag_files"])
        assert 0 < check.signed_events <= len(check.events) and body["events"]["count"] == check.signed_events
    keys = [a for f in _pub_files(repo) for a in ("--coordinator-key", f)]
    out = run_cli("node", "verify-package", "--storage", node_root(repo, "cas-nsl").as_uri(), *keys, "--json",
                  home=repo.settings.home).json()
    assert out["count"] == 1 and out["ok"] is True and out["packages"][0]["package_id"] == preserved


def test_a_forged_record_resigned_with_another_key_is_refused(repo, preserved, run_cli, tmp_path):
    manifest = node_root(repo, "uni-pku") / preserved / "manifest-sha512.txt"
    manifest.write_bytes(manifest.read_bytes() + b"0" * 128 + b"  data/extra.pdf\n")  # a forged manifest
    forged_digest = hashlib.sha256(manifest.read_bytes()).hexdigest()
    signer = public_keys(repo.settings)  # the real key's id, to pretend to be it
    real_kid = next(iter(signer))

    def new_manifest(body):
        body["tag_files"]["manifest-sha512.txt"] = forged_digest

    _forge(repo, "uni-pku", preserved, new_manifest, _other_key(repo.settings.checkpoints.origin))
    check = _check(repo, "uni-pku", preserved)
    assert [f.code for f in check.findings] == ["R006"] and check.record is None
    assert "not a key of this coordinator" in check.findings.errors[0].message

    # the same forgery claiming the real key's id: its signature does not verify
    record = json.loads(_record_path(repo, "uni-pku", preserved).read_text("utf-8"))
    record["evidence"]["key_id"] = real_kid
    _record_path(repo, "uni-pku", preserved).write_text(json.dumps(record), "utf-8")
    check = _check(repo, "uni-pku", preserved)
    assert [f.code for f in check.findings] == ["R006"] and "does not verify" in check.findings.errors[0].message

    keys = [a for f in _pub_files(repo) for a in ("--coordinator-key", f)]
    out = run_cli("node", "verify-package", "--storage", node_root(repo, "uni-pku").as_uri(), *keys, preserved,
                  "--json", exit_code=1, home=repo.settings.home).json()
    assert out["ok"] is False and [f["code"] for f in out["packages"][0]["findings"]] == ["R006"]

    home = repo.settings.home
    repo.close()
    with _rebuilt(home) as (fresh, report):
        assert [(f.code, f.path.split(":")[0]) for f in report.findings] == [("R006", "uni-pku")]
        assert report.packages == [preserved] and report.events_restored > 0  # from the two trusted nodes


def test_a_file_changed_under_a_good_signature_is_found(repo, preserved):
    bag_info = node_root(repo, "inst-istic") / preserved / "bag-info.txt"
    bag_info.write_bytes(bag_info.read_bytes().replace(b"Publisher Ltd", b"Publisher Lte"))
    check = _check(repo, "inst-istic", preserved)
    assert [(f.code, f.path) for f in check.findings] == [("R009", f"inst-istic:{preserved}/bag-info.txt")]
    assert check.record is not None  # the record itself is genuine; the copy is what differs


def test_evidence_written_after_a_checkpoint_proves_the_package_events_are_under_it(repo, preserved):
    with repo.catalog.session() as s:
        made = make_checkpoint(s, repo.settings)
        replica = s.scalars(select(Replica).where(Replica.package_id == preserved)).first()
        node = replica.node.name
    adapter = open_local(node_root(repo, node), create=False)
    write_package_record(repo, adapter, preserved)  # what a repair or a new copy writes
    cp = json.loads(_record_path(repo, node, preserved).read_text("utf-8"))["evidence"]["body"]["checkpoint"]
    assert cp["size"] == made["size"] and cp["inclusion"]["seq"] <= made["size"]
    assert _check(repo, node, preserved).ok

    def wrong_proof(body):
        proof = body["checkpoint"]["inclusion"]["proof"]
        proof[0] = base64.b64encode(bytes(32)).decode()

    _forge(repo, node, preserved, wrong_proof, evidence_signer(repo.settings))  # signed by the real key, even
    check = _check(repo, node, preserved)
    assert [f.code for f in check.findings] == ["R009"]
    assert "not under the checkpoint" in check.findings.errors[0].message


def test_a_record_without_a_trusted_key_is_not_trusted(repo, preserved):
    check = _check(repo, "cas-nsl", preserved, keys={})
    assert [f.code for f in check.findings] == ["R006"] and check.record is None
    path = _record_path(repo, "cas-nsl", preserved)
    for hostile, message in ((b"[1, 2]", "not a JSON object"), (b"{not json", "not JSON")):
        path.write_bytes(hostile)
        check = _check(repo, "cas-nsl", preserved)
        assert [f.code for f in check.findings] == ["R006"] and message in check.findings.errors[0].message
        assert check.record is None


def test_the_signature_covers_the_canonical_body(repo, preserved):
    record = json.loads(_record_path(repo, "cas-nsl", preserved).read_text("utf-8"))
    name, key = public_keys(repo.settings)[record["evidence"]["key_id"]]
    key.verify(base64.b64decode(record["evidence"]["signature"]), canonical(record["evidence"]["body"]))
    assert name == repo.settings.checkpoints.origin


def test_bad_input_to_verify_package_is_a_coded_error_and_changes_nothing(repo, preserved, run_cli, tmp_path):
    bad_key = tmp_path / "bad.pub"
    bad_key.write_text("not a key\n", "utf-8")
    storage = node_root(repo, "cas-nsl").as_uri()
    out = run_cli("node", "verify-package", "--storage", storage, "--coordinator-key", bad_key, preserved, "--json",
                  exit_code=None, home=repo.settings.home)
    assert out.exit_code not in (0, 1) and json.loads(out.stderr or out.stdout)["error"]["code"]
    keys = [a for f in _pub_files(repo) for a in ("--coordinator-key", f)]
    out = run_cli("node", "verify-package", "--storage", storage, *keys, "../../etc", "--json", exit_code=None,
                  home=repo.settings.home)
    assert out.exit_code not in (0, 1) and json.loads(out.stderr or out.stdout)["error"]["code"]
    out = run_cli("node", "verify-package", "--storage", storage, *keys, "no-such-package", "--json", exit_code=1,
                  home=repo.settings.home).json()
    assert [f["code"] for f in out["packages"][0]["findings"]] == ["R004"]


def test_hostile_lines_in_an_events_file_make_that_file_unused(repo, preserved):
    path = node_root(repo, "uni-pku") / PackageLayout(preserved).events_key
    good = path.read_bytes()
    first = json.loads(good.splitlines()[0])
    cases = {
        b"not json\n": "is not JSON",
        (json.dumps({**first, "package_id": "another"}) + "\n").encode(): "does not match its hash",
        (json.dumps({**first, "extra": 1}) + "\n").encode(): "does not match its hash",
        good.splitlines(keepends=True)[0]: "out of order",  # an old line again, after the newest
    }
    for tail, message in cases.items():
        path.write_bytes(good + tail)
        check = _check(repo, "uni-pku", preserved)
        assert [f.code for f in check.findings] == ["R007"] and message in check.findings.errors[0].message, tail
        assert check.events == [] and check.record is not None  # the record stays usable, the events do not
    path.write_bytes(good)
    assert _check(repo, "uni-pku", preserved).ok


def test_a_copy_job_after_a_checkpoint_signs_its_record_again_under_it_once(repo, preserved):
    before = {name: _record_path(repo, name, preserved).read_bytes() for name, _, _ in NODES}
    assert all(json.loads(b)["evidence"]["body"]["checkpoint"] is None for b in before.values())  # none yet
    with repo.catalog.session() as s:
        made = make_checkpoint(s, repo.settings)
        replica = s.scalars(select(Replica).where(Replica.package_id == preserved)).first()
        replica_id, node = replica.id, replica.node.name
    assert flush_events(repo, preserved, replica_id) == [node]  # what the worker does after a job on that copy
    upgraded = _record_path(repo, node, preserved).read_bytes()
    cp = json.loads(upgraded)["evidence"]["body"]["checkpoint"]
    assert cp["size"] == made["size"] and cp["inclusion"]["seq"] <= made["size"]
    assert _check(repo, node, preserved).ok
    for other in {name for name, _, _ in NODES} - {node}:  # their own jobs will do the same
        assert _record_path(repo, other, preserved).read_bytes() == before[other]
    flush_events(repo, preserved, replica_id)
    assert _record_path(repo, node, preserved).read_bytes() == upgraded  # signed once, not at every job


def test_a_home_without_a_key_writes_unsigned_records_that_a_rebuild_uses_with_a_warning(tmp_path, sample_delivery):
    home = tmp_path / "keyless"
    home.mkdir()
    (home / "preserve.yaml").write_text("checkpoints:\n  every_events: 10000\n", "utf-8")  # no key: nothing signs
    init_home(home)
    with Repository.open(home) as repo:
        for name, org_type, region in NODES:
            add_node(repo, name, org_type, region, node_root(repo, name).as_uri())
        add_collection(repo, "journals", "Journals", publisher="P", licence="L")
        package_id = ingest(repo, sample_delivery, "journals")["package_id"]
        record = json.loads(_record_path(repo, "uni-pku", package_id).read_text("utf-8"))
        assert "evidence" not in record
        check = _check(repo, "uni-pku", package_id, keys={})
        assert [(f.code, f.severity) for f in check.findings] == [("R010", "warning")]
        assert check.record is not None and check.events and check.signed_events == 0
        count = len(check.events)
    # an unsigned record is outside text: fields of the wrong type are left out, the bag says instead
    hostile = {**record, "name": ["x"], "collection": "journals", "policy": 7, "version": "v2"}
    for name, _, _ in NODES:
        _record_path(repo, name, package_id).write_text(json.dumps(hostile), "utf-8")
    with _rebuilt(home) as (fresh, report):
        assert report.ok and {f.code for f in report.findings} == {"R010"}
        assert report.events_restored == count
        with fresh.catalog.session() as s:
            package = s.get(Package, package_id)
            assert package.collection.key == "journals" and isinstance(package.name, str)


def _strip_evidence(repo, node, package_id, **collection):
    path = _record_path(repo, node, package_id)
    record = json.loads(path.read_text("utf-8"))
    del record["evidence"]
    record["collection"].update(collection)
    path.write_text(json.dumps(record), "utf-8")


def test_a_stripped_signature_is_untrusted_when_the_coordinator_has_keys(repo, preserved, run_cli):
    bag_info = node_root(repo, "cas-nsl") / preserved / "bag-info.txt"
    bag_info.write_bytes(bag_info.read_bytes().replace(b"Publisher Ltd", b"Publisher Lte"))  # tampered, too
    _strip_evidence(repo, "cas-nsl", preserved)
    check = _check(repo, "cas-nsl", preserved)
    assert [f.code for f in check.findings] == ["R006"] and check.record is None
    assert "not signed" in check.findings.errors[0].message
    keys = [a for f in _pub_files(repo) for a in ("--coordinator-key", f)]
    storage = node_root(repo, "cas-nsl").as_uri()
    out = run_cli("node", "verify-package", "--storage", storage, *keys, preserved, "--json", exit_code=1,
                  home=repo.settings.home).json()
    assert out["ok"] is False and [f["code"] for f in out["packages"][0]["findings"]] == ["R006"]
    out = run_cli("node", "verify-package", "--storage", storage, *keys, "--allow-unsigned", preserved, "--json",
                  exit_code=None, home=repo.settings.home).json()
    assert [(f["code"], f["severity"]) for f in out["packages"][0]["findings"]] == [("R010", "warning")]


def test_a_stripped_record_cannot_open_a_dark_collection_in_a_rebuild(repo, preserved):
    with repo.catalog.session() as s:
        assert s.get(Package, preserved).collection.access_mode == "dark"
    for name in ("cas-nsl", "inst-istic"):  # the first nodes read; uni-pku keeps its signed record
        _strip_evidence(repo, name, preserved, access_mode="open")
    home = repo.settings.home
    repo.close()
    with _rebuilt(home) as (fresh, report):
        assert not report.ok
        assert sorted((f.code, f.path.split(":")[0]) for f in report.findings) == [("R006", "cas-nsl"),
                                                                                    ("R006", "inst-istic")]
        with fresh.catalog.session() as s:
            assert s.get(Package, preserved).collection.access_mode == "dark"


def test_an_unsigned_record_never_names_who_may_read_a_collection(tmp_path, sample_delivery):
    home = tmp_path / "keyless"
    home.mkdir()
    (home / "preserve.yaml").write_text("checkpoints:\n  every_events: 10000\n", "utf-8")
    init_home(home)
    with Repository.open(home) as repo:
        for name, org_type, region in NODES:
            add_node(repo, name, org_type, region, node_root(repo, name).as_uri())
        add_collection(repo, "journals", "Journals", publisher="P", licence="L")
        package_id = ingest(repo, sample_delivery, "journals")["package_id"]
        for name, _, _ in NODES:
            path = _record_path(repo, name, package_id)
            record = json.loads(path.read_text("utf-8"))
            record["collection"]["access_mode"] = "open"
            path.write_text(json.dumps(record), "utf-8")
    with _rebuilt(home) as (fresh, report):
        assert {f.code for f in report.findings} == {"R010"}
        with fresh.catalog.session() as s:
            package = s.get(Package, package_id)
            assert package.collection.key == "journals" and package.collection.access_mode == "dark"


def _next_line(good, change):
    """A line after the file's last, linked to it and hashed by the rule, with ``change`` made to its fields."""
    last = json.loads(good.splitlines()[-1])
    ev = {**last, "seq": last["seq"] + 1, "event_id": "0" * 8 + last["event_id"][8:], "prev_hash": last["hash"]}
    change(ev)
    ev["hash"] = event_hash({k: ev[k] for k in HASHED_FIELDS}, ev["prev_hash"])
    return (json.dumps(ev, ensure_ascii=False) + "\n").encode()


BAD_FIELDS = {
    "occurred_at not a date": lambda ev: ev.update(occurred_at="not a date"),
    "occurred_at not a string": lambda ev: ev.update(occurred_at=20261206),
    "seq a bool": lambda ev: ev.update(seq=True),
    "seq a string": lambda ev: ev.update(seq=str(ev["seq"])),
    "detail a string": lambda ev: ev.update(detail="x"),
    "detail a list": lambda ev: ev.update(detail=[1]),
    "agent too long": lambda ev: ev.update(agent="a" * 201),
    "event type too long": lambda ev: ev.update(event_type="t" * 65),
    "outcome empty": lambda ev: ev.update(outcome=""),
    "event id too long": lambda ev: ev.update(event_id="e" * 37),
    "node name not a string": lambda ev: ev.update(node_name=5),
    "policy too long": lambda ev: ev.update(policy="p" * 101),
    "replica id a string": lambda ev: ev.update(replica_id="1"),
    "job id negative": lambda ev: ev.update(job_id=-1),
    "prev_hash not a sha256": lambda ev: ev.update(prev_hash="zz"),
}


@pytest.mark.parametrize("change", BAD_FIELDS.values(), ids=BAD_FIELDS.keys())
def test_an_event_line_with_a_good_hash_and_a_bad_field_makes_the_file_unused(repo, preserved, change):
    path = node_root(repo, "uni-pku") / PackageLayout(preserved).events_key
    good = path.read_bytes()
    path.write_bytes(good + _next_line(good, change))
    check = _check(repo, "uni-pku", preserved)
    assert [f.code for f in check.findings] == ["R007"], check.to_dict()
    assert "cannot be restored" in check.findings.errors[0].message
    assert check.events == [] and check.record is not None
