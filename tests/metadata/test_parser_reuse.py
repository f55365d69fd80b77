"""One pull parser per thread, reset between files: no file's events reach the next one, and no file leaves
cyclic garbage for the collector (an lxml pull parser per file left some 45 objects in cycles)."""

from __future__ import annotations

import gc

from preservation.findings import FindingList
from preservation.metadata.analyser import MetadataAnalyser

from .samples import jats, onix, onix_product, refused_closes

PARAGRAPH = "<p>" + "正文段落。" * 200 + "</p>"


def _read(files: list[tuple[str, bytes]]) -> tuple[list, list[str]]:
    """Read ``files`` one after another on this thread, as a copying thread does (or the parsing process)."""
    analyser = MetadataAnalyser(in_process=True)
    for path, data in files:
        observer = analyser.observer(path, len(data))
        observer.feed(data)
        observer.close(len(data))
    findings = FindingList()
    analyser.finish("", findings)
    return list(analyser._spool), findings.codes()


def _article(doi: str, title: str) -> bytes:
    article = (f'<article-id pub-id-type="doi">{doi}</article-id>'
               f"<title-group><article-title>{title}</article-title></title-group>")
    return jats(article=article, body=PARAGRAPH * 5).encode()


def test_a_file_read_after_one_stopped_at_its_front_matter_gets_only_its_own_elements():
    stopped = _article("10.7498/aps.68.20190001", "第一篇")  # parsing stops after <front>: the rest is scanned
    malformed = b'<?xml version="1.0"?><article><front><article-meta><article-id'
    onix_file = onix(onix_product("R1", "9787030000002", "量子力学")).encode()
    records, codes = _read([("data/a/1.xml", stopped), ("data/a/bad.xml", malformed),
                            ("data/a/2.xml", _article("10.7498/aps.68.20190002", "第二篇")),
                            ("data/b/books.xml", onix_file),
                            ("data/a/3.xml", _article("10.7498/aps.68.20190003", "第三篇"))])
    assert [(r.source_format, r.doi, r.item_title) for r in records] == [
        ("jats", "10.7498/aps.68.20190001", "第一篇"), ("jats", "10.7498/aps.68.20190002", "第二篇"),
        ("onix", "", "量子力学: 理论与实验"), ("jats", "10.7498/aps.68.20190003", "第三篇")]
    assert codes == ["MD001"]  # the malformed file's, and nothing the others left behind


def test_reading_files_leaves_no_cyclic_garbage():
    files = [(f"data/a/{n}.xml", _article(f"10.7498/aps.68.2019{n:04d}", f"文章{n}")) for n in range(1, 41)]
    _read(files[:2])  # this thread's parser exists already
    gc.collect()
    was = gc.isenabled()
    gc.disable()
    try:
        records, _ = _read(files)
        garbage = gc.collect()
    finally:
        if was:
            gc.enable()
    assert len(records) == 40
    assert garbage < 40  # one lxml pull parser per file: some 45 objects in cycles each, 1,800 here


def test_a_document_stopped_after_its_front_matter_is_ended_without_an_error(monkeypatch):
    """The parser is stopped right after ``</front>`` and its document ended with the root's end tag (ending it
    early made lxml build an error for every article); a front end written otherwise is ended as before."""
    refused = refused_closes(monkeypatch)
    usual = _article("10.7498/aps.68.20190001", "第一篇")
    records, codes = _read([("data/a/1.xml", usual), ("data/a/2.xml", usual.replace(b"0001", b"0002"))])
    assert [r.doi for r in records] == ["10.7498/aps.68.20190001", "10.7498/aps.68.20190002"] and codes == []
    assert refused == []
    records, codes = _read([("data/a/3.xml", usual.replace(b"</front>", b"</front >"))])
    assert [r.doi for r in records] == ["10.7498/aps.68.20190001"] and codes == []
    assert len(refused) == 1  # ended early this time
