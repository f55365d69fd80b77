"""The spool of a delivery's records: what goes in comes back, in order and whole, from memory or from disk."""

from __future__ import annotations

import gc
import json

import pytest
from sqlalchemy import func, select

from preservation.catalog.library_models import Item
from preservation.findings import FindingList
from preservation.metadata import items, records
from preservation.metadata.items import BATCH, register_items
from preservation.metadata.claims import sibling_metadata
from preservation.metadata.records import ItemRecord, RecordSpool


def _record(i: int) -> ItemRecord:
    return ItemRecord(kind="article", source_format="jats", metadata_path=f"data/期刊/{i}.xml",
                      doi=f"10.7498/aps.68.{i}", item_title=f"标题 \"{i}\"\t\\\r\u2028\x85 {'长' * (i % 500)}",
                      authors=[f"作者{i}", "Ünïcode, A."], year=1450 + i % 600, identifiers=[("issn_print", "1000-3290")],
                      files=[(f"data/期刊/{i}.xml", "metadata", True), (f"data/期刊/{i}.pdf", "fulltext", False)],
                      where=f"line {i}")


def test_records_come_back_in_order_across_decoded_batches_and_a_spill_to_disk():
    """More records than one decoding takes (several batches of lines) and than the memory holds (a file)."""
    spool = RecordSpool(memory=64 * 1024)
    written = [_record(i) for i in range(3000)]
    for start in range(0, len(written), 7):  # as the answering thread adds them: a few at a time
        spool.add(written[start:start + 7])
    assert spool._file._rolled  # spilled to disk
    size = sum(len(r.to_json()) + 1 for r in written)
    assert size > 3 * records._DECODE_CHARACTERS  # several decodings
    back = list(spool)
    assert back == written and spool.count == len(written)
    assert all(type(f) is tuple for r in back for f in (*r.files, *r.identifiers))
    assert [r.to_json() for r in back] == [json.dumps(json.loads(r.to_json()), ensure_ascii=False,
                                                      separators=(",", ":")) for r in written]
    spool.close()


def test_records_kept_in_memory_come_back_across_decoded_batches_too():
    spool = RecordSpool()
    written = [_record(i) for i in range(1500)]
    spool.add(written)
    assert not spool._file._rolled
    assert sum(len(r.to_json()) + 1 for r in written) > 2 * records._DECODE_CHARACTERS
    assert list(spool) == written
    spool.close()


def test_the_metadata_beside_a_file_is_found_as_splitext_would_find_its_stem():
    assert sibling_metadata("data/a/b.pdf") == "data/a/b.xml"
    assert sibling_metadata("data/a/b.tar.gz") == "data/a/b.tar.xml"
    assert sibling_metadata("data/a.d/readme") == "data/a.d/readme.xml"  # a dot in a folder is no extension
    assert sibling_metadata("data/a/.hidden") == "data/a/.hidden.xml"  # nor a name's leading dots
    assert sibling_metadata("data/a/..b.pdf") == "data/a/..b.xml"
    assert sibling_metadata("data/a/b.") == "data/a/b.xml"


def _registering(repo, tmp_path, records) -> tuple[str, FindingList]:
    from preservation.ingest import ingest

    from .samples import write

    write(tmp_path / "d", "a.txt", "a\n")
    package_id = ingest(repo, tmp_path / "d", "journals", analysers=[])["package_id"]
    findings = FindingList()
    with repo.catalog.session() as s:
        register_items(s, package_id, records, findings)
    return package_id, findings


def test_registering_items_pauses_the_collector_for_each_batch_and_gives_it_back(repo, tmp_path):
    """Decoding the spool and writing a batch's rows make thousands of short-lived objects: no collector pass
    among them (a full one of the ingest's process cost a quarter of the registration), and it runs between."""
    seen: list[bool] = []

    def records():
        for i in range(2 * BATCH + 5):
            seen.append(gc.isenabled())  # as a batch is read
            yield _record(i)

    gc.enable()
    _registering(repo, tmp_path, records())
    assert len(seen) == 2 * BATCH + 5 and not any(seen)
    assert gc.isenabled()
    with repo.catalog.session() as s:
        assert s.scalar(select(func.count()).select_from(Item)) == 2 * BATCH + 5


def test_registering_items_that_fails_gives_the_collector_back(repo, tmp_path, monkeypatch):
    def broken(*_args, **_kwargs):
        assert not gc.isenabled()  # a batch's rows are written with the collector paused
        raise OSError("the disk is full")

    monkeypatch.setattr(items, "_insert_items", broken)
    gc.enable()
    with pytest.raises(OSError, match="disk is full"):
        _registering(repo, tmp_path, [_record(1)])
    assert gc.isenabled()
