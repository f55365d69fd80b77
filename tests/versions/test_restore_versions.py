"""Restore of every version: a complete bag, byte-identical to what was made at ingest, valid for bagit-python."""

from __future__ import annotations

import json

import bagit
import pytest

from preservation.errors import NotFound
from preservation.ingest import ingest
from preservation.restore import restore

from ..fixtures import node_root
from .helpers import FIRST, node_files, second, write_delivery

TAGS = ("bagit.txt", "bag-info.txt", "manifest-sha256.txt", "manifest-sha512.txt", "tagmanifest-sha256.txt",
        "tagmanifest-sha512.txt")


@pytest.fixture
def three_versions(repo, tmp_path):
    states = [FIRST, second(FIRST)]
    third = dict(states[1])
    third["f.txt"] = b"foxtrot, corrected\n"
    third["new/g.txt"] = b"golf\n"
    states.append(third)
    ids = []
    for n, files in enumerate(states, start=1):
        out = ingest(repo, write_delivery(tmp_path / f"v{n}", files), "journals",
                     version_of=ids[-1] if ids else None)
        assert out["state"] == "preserved"
        ids.append(out["package_id"])
    return ids, states


def _tree(root) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_every_version_restores_byte_identical_and_valid(repo, three_versions, tmp_path):
    ids, states = three_versions
    for n, (package_id, files) in enumerate(zip(ids, states), start=1):
        dest = tmp_path / f"restored-{n}"
        out = restore(repo, ids[0], dest, version=n)
        assert out["package_id"] == package_id
        restored = _tree(dest)
        assert {p[len("data/"):]: b for p, b in restored.items() if p.startswith("data/")} == files
        assert "fetch.txt" not in restored
        on_node = node_files(node_root(repo, "cas-nsl"), package_id)
        for tag in TAGS:  # the tag files made at ingest, as every node holds them
            assert restored[tag] == on_node[tag], tag
        assert set(restored) == set(TAGS) | {f"data/{p}" for p in files}
        bagit.Bag(str(dest)).validate()


def test_a_version_restores_by_its_own_id_and_without_a_version_the_package_is_version_one(repo, three_versions,
                                                                                            tmp_path):
    ids, states = three_versions
    restore(repo, ids[2], tmp_path / "by-id")
    assert _tree(tmp_path / "by-id")["data/new/g.txt"] == b"golf\n"
    restore(repo, ids[0], tmp_path / "first")
    assert {p for p in _tree(tmp_path / "first") if p.startswith("data/")} == {f"data/{p}" for p in FIRST}
    bagit.Bag(str(tmp_path / "first")).validate()


def test_a_version_that_does_not_exist_is_not_found_and_nothing_is_written(repo, three_versions, tmp_path):
    ids, _ = three_versions
    with pytest.raises(NotFound) as e:
        restore(repo, ids[0], tmp_path / "nope", version=4)
    assert "1 to 3" in str(e.value)
    assert not (tmp_path / "nope").exists()


def test_restore_of_a_version_from_the_cli(repo, run_cli, three_versions, tmp_path):
    ids, states = three_versions
    home = repo.settings.home
    out = run_cli("restore", ids[0], str(tmp_path / "restored-v2"), "--version", "2", "--json", home=home).json()
    assert out["version"] == 2 and out["files"] == len(states[1]) + len(TAGS)
    bagit.Bag(str(tmp_path / "restored-v2")).validate()
    for bad in ("0", "-1", "two", "2.0"):
        run_cli("restore", ids[0], str(tmp_path / f"bad{bad}"), "--version", bad, exit_code=2, home=home)
    missing = run_cli("restore", ids[0], str(tmp_path / "v9"), "--version", "9", "--json", exit_code=5, home=home)
    assert json.loads(missing.stderr)["error"]["code"] == "E110"


def test_a_version_is_read_a_stored_version_at_a_time_in_the_order_its_files_lie_there(repo, three_versions,
                                                                                      tmp_path, monkeypatch):
    import preservation.restore as restoring
    from preservation.sources import CopySource

    ids, _ = three_versions
    read: list[tuple[str, str]] = []
    real_stream = CopySource.stream

    def stream(self, path):
        read.append((self.prefix.strip("/"), path))
        return real_stream(self, path)

    monkeypatch.setattr(CopySource, "stream", stream)
    monkeypatch.setattr(restoring, "bounded_map", lambda fn, items, workers=2: map(fn, items))  # in order
    restore(repo, ids[0], tmp_path / "restored", version=3)
    places = [(prefix.rsplit("/", 1)[-1], path) for prefix, path in read]
    assert {p for p, _ in places} == set(ids)  # version 3 holds files stored by each of the three
    assert places == sorted(places)  # each stored version's files together, in their order there
    # by path the reads would hop: data-a.txt (version 1), f.txt (version 3), moved/d.txt (version 1) ...
    by_path = sorted(places, key=lambda place: place[1])
    assert [p for p, _ in by_path] != sorted(p for p, _ in by_path)
