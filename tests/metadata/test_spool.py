"""The spool of a delivery's records: what goes in comes back, in order and whole, from memory or from disk."""

from __future__ import annotations

import json

from preservation.metadata import records
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
