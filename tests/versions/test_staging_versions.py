"""A new version's staging bag: its unchanged files are hashed, not copied; what it stores is there to copy."""

from __future__ import annotations

import os
from pathlib import Path

import bagit

from preservation.bagit.pipeline import CHUNK_SIZE
from preservation.catalog.models import Package, Replica
from preservation.formats.analyser import FormatAnalyser
from preservation.ingest import ingest
from preservation.replication import replicate_replica
from preservation.restore import restore

from .helpers import FIRST, second, write_delivery

BIG = 3 * CHUNK_SIZE + 11  # streamed in chunks, not read whole


def _staged_payload(repo, package_id: str) -> set[str]:
    with repo.catalog.session() as s:
        staged = Path(s.get(Package, package_id).staging_path)
    return {p.relative_to(staged).as_posix() for p in (staged / "data").rglob("*") if p.is_file()}


def _copy_every_replica(repo, package_id: str) -> None:
    with repo.catalog.session() as s:
        replica_ids = [r.id for r in s.query(Replica).filter_by(package_id=package_id)]
    for rid in replica_ids:
        assert replicate_replica(repo, rid)["state"] == "verified"


def test_a_new_version_stages_only_the_files_it_may_store_and_restores_whole(repo, tmp_path):
    first = {**FIRST, "big/same.bin": os.urandom(BIG), "big/edited.bin": os.urandom(BIG)}
    v1 = ingest(repo, write_delivery(tmp_path / "v1", first), "journals", analysers=[])
    assert v1["state"] == "preserved"
    later = second(first)
    later["big/edited.bin"] = os.urandom(BIG)  # the same size, other bytes: copied in a second read
    v2 = ingest(repo, write_delivery(tmp_path / "v2", later), "journals", version_of=v1["package_id"],
                analysers=[], replicate=False)
    assert v2["version"]["unchanged"] == 3 and v2["version"]["changed"] == 2
    # unchanged: data-a.txt, 期刊/e.pdf, big/same.bin; the renamed file's new path is staged, never stored
    assert _staged_payload(repo, v2["package_id"]) == {"data/b.txt", "data/f.txt", "data/moved/d.txt",
                                                       "data/big/edited.bin"}
    _copy_every_replica(repo, v2["package_id"])  # the workers' way: one copy at a time from the staging bag
    out = restore(repo, v1["package_id"], tmp_path / "restored", version=2)
    assert out["files"] == len(later) + 6
    for rel, data in later.items():
        assert (tmp_path / "restored" / "data" / rel).read_bytes() == data
    bagit.Bag(str(tmp_path / "restored")).validate()


def test_a_version_whose_analysers_read_staged_files_the_version_before_has_no_record_of_stages_every_file(
        repo, tmp_path):
    v1 = ingest(repo, write_delivery(tmp_path / "v1", FIRST), "journals", analysers=[])  # no format records
    analyser = FormatAnalyser(repo.policy.formats)
    assert analyser.reads_staged_payload  # the default policy validates files, in staging
    v2 = ingest(repo, write_delivery(tmp_path / "v2", second(FIRST)), "journals", version_of=v1["package_id"],
                analysers=[analyser], replicate=False)
    assert _staged_payload(repo, v2["package_id"]) == {f"data/{rel}" for rel in second(FIRST)}
