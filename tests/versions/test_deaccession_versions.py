"""Deaccession of versions: refused while a kept version references their bytes; otherwise bytes leave the nodes."""

from __future__ import annotations

import json

import bagit
import pytest
from sqlalchemy import select

from preservation.catalog.models import Event, Package
from preservation.deaccession import deaccession
from preservation.errors import InvalidRequest, InvalidText, VersionInUse
from preservation.ingest import ingest
from preservation.restore import restore

from ..fixtures import node_root, replicas_by_node
from .helpers import FIRST, node_files, second, write_delivery

NODES = ("uni-pku", "cas-nsl", "inst-istic")


@pytest.fixture
def three(repo, tmp_path):
    third = second(FIRST)
    third["g.txt"] = b"golf\n"
    ids = []
    for n, files in enumerate((FIRST, second(FIRST), third), start=1):
        ids.append(ingest(repo, write_delivery(tmp_path / f"v{n}", files), "journals",
                          version_of=ids[-1] if ids else None)["package_id"])
    return ids


def _snapshot(repo, ids):
    with repo.catalog.session() as s:
        states = {pid: s.get(Package, pid).state for pid in ids}
        events = len(s.scalars(select(Event)).all())
    held = {(node, pid): node_files(node_root(repo, node), pid) for node in NODES for pid in ids}
    return states, events, held


@pytest.mark.parametrize("numbers", [[1], [1, 2], [2]])
def test_removing_bytes_a_kept_version_references_is_refused_and_nothing_changes(repo, three, numbers):
    before = _snapshot(repo, three)
    with pytest.raises(VersionInUse) as e:
        deaccession(repo, three[0], versions=numbers, reason="publisher withdrew the export")
    assert e.value.code == "E504" and "are kept and reference" in str(e.value)
    assert e.value.params["kept_versions"] == ([3] if numbers == [1, 2] else [2, 3] if numbers == [1] else [3])
    assert _snapshot(repo, three) == before


def test_a_version_nothing_references_is_withdrawn_and_its_stored_bytes_leave_every_node(repo, three, tmp_path):
    out = deaccession(repo, three[0], versions=[3], reason="sent by mistake", agent="staff")
    assert out["versions_removed"] == [3] and out["versions_kept"] == [1, 2]
    for node in NODES:
        assert node_files(node_root(repo, node), three[2]) == {}
        assert node_files(node_root(repo, node), three[0])  # version 1's bytes stay: version 2 needs them
    assert {r.state for r in replicas_by_node(repo, three[2]).values()} == {"missing"}
    with repo.catalog.session() as s:
        assert s.get(Package, three[2]).state == "deaccessioned"
        event = s.scalars(select(Event).where(Event.package_id == three[2], Event.event_type == "deaccession")).one()
        assert event.detail["versions_removed"] == [3] and event.detail["reason"] == "sent by mistake"
        assert event.agent == "staff"
    restore(repo, three[0], tmp_path / "restored-v2", version=2)
    bagit.Bag(str(tmp_path / "restored-v2")).validate()
    # the next version follows the newest one kept, under the next number
    fourth = ingest(repo, write_delivery(tmp_path / "v4", FIRST), "journals", version_of=three[0])
    assert fourth["version"]["number"] == 4 and fourth["version"]["previous_id"] == three[1]


def test_every_version_together_may_go(repo, three):
    out = deaccession(repo, three[0], versions=[1, 2, 3], reason="licence ended, content to be destroyed")
    assert out["versions_removed"] == [1, 2, 3] and out["versions_kept"] == []
    for node in NODES:
        for pid in three:
            assert node_files(node_root(repo, node), pid) == {}
    again = deaccession(repo, three[0], versions=[1, 2, 3], reason="again, after a crash")  # finishes, idempotent
    assert sum(again["files_deleted"].values()) == 0


@pytest.mark.parametrize("reason, error", [("", InvalidRequest), ("  ", InvalidRequest), ("bad\x00byte", InvalidText),
                                           ("x" * 2001, InvalidRequest)])
def test_a_bad_reason_is_refused_before_anything_changes(repo, three, reason, error):
    before = _snapshot(repo, three)
    with pytest.raises(error):
        deaccession(repo, three[0], versions=[3], reason=reason)
    assert _snapshot(repo, three) == before


def test_the_cli_confirms_refuses_and_withdraws(repo, run_cli, three):
    home = repo.settings.home
    run_cli("deaccession", three[0], "--version", "3", "--reason", "mistake", exit_code=2, home=home)  # no --yes
    refused = run_cli("deaccession", three[0], "--version", "1", "--reason", "mistake", "--yes", "--json",
                      exit_code=26, home=home)
    assert json.loads(refused.stderr)["error"]["code"] == "E504"
    out = run_cli("deaccession", three[0], "--version", "3", "--reason", "mistake", "--yes", "--json",
                  home=home).json()
    assert out["versions_removed"] == [3]
    listed = run_cli("version", "list", three[1], "--json", home=home).json()
    assert [(v["number"], v["state"]) for v in listed["versions"]] == [(1, "preserved"), (2, "preserved"),
                                                                     (3, "deaccessioned")]
    changed = run_cli("version", "changes", three[0], "--version", "2", "--json", home=home).json()
    assert changed["renamed"] == [{"from": "data/sub/d.txt", "to": "data/moved/d.txt"}]
    text = run_cli("version", "changes", three[0], "--version", "2", home=home).output
    assert "renamed  data/sub/d.txt -> data/moved/d.txt" in text and "1 added" in text
