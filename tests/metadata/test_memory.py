"""Extraction's memory does not grow with the delivery: elements are discarded as read, records spill to disk."""

from __future__ import annotations

import tracemalloc

from devtools.articles import jats_article
from preservation import identifiers as ids
from preservation.findings import FindingList
from preservation.metadata import onix as onix_module
from preservation.metadata import parsing
from preservation.metadata.analyser import MetadataAnalyser

from .samples import AUTHORS, onix, onix_product

CHUNK = 64 * 1024


def _feed(analyser: MetadataAnalyser, path: str, data: bytes) -> None:
    observer = analyser.observer(path, len(data))
    view = memoryview(data)  # no copy: only what extraction allocates is measured
    for start in range(0, len(data), CHUNK):
        observer.feed(view[start:start + CHUNK])
    observer.close(len(data))


def _peak(run) -> int:
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _jats_files(n: int):
    article = jats_article("10.7498/aps.68.20190001", "二维材料中的激子", AUTHORS, volume=68, issue=1, year=2019,
                           pdf="a.pdf", body_bytes=30_000)
    for i in range(n):
        yield f"data/期刊/{i:05d}.xml", article.replace(b"20190001", b"%08d" % i)


def test_memory_per_article_does_not_grow():
    def extract(n: int):
        def run():
            analyser = MetadataAnalyser(spool_memory=64 * 1024, in_process=True)  # tracemalloc sees this process
            for path, data in _jats_files(n):
                _feed(analyser, path, data)
            assert analyser._spool.count == n
            findings = FindingList()
            analyser.finish("", findings)
            assert list(findings) == []
        return run

    small, large = _peak(extract(100)), _peak(extract(1000))
    # ten times the articles: the records went to disk, only the file being read is in memory
    assert large - small < 256 * 1024, (small, large)


def _onix_message(n: int) -> bytes:
    isbns = (f"978703{i:06d}" + ids.isbn13_check_digit(f"978703{i:06d}") for i in range(n))
    return onix(*(onix_product(f"ref-{i}", isbn, f"书 {i}") for i, isbn in enumerate(isbns))).encode()


def test_a_huge_onix_message_is_read_one_product_at_a_time_by_the_parsing_child(monkeypatch):
    """The production path: the child sends records as it reads them, the parent writes them to the spool
    (which spills): neither holds the message's records (600,000 products once cost the child its 1 GiB).
    The parent holds at most the frames queued for the child (QUEUE_BYTES, made small here)."""
    monkeypatch.setattr(parsing, "QUEUE_BYTES", 1024 * 1024)

    def extract(data: bytes, n: int) -> tuple[int, int]:
        analyser = MetadataAnalyser(spool_memory=64 * 1024)
        tracemalloc.start()
        try:
            _feed(analyser, "data/onix.xml", data)
            findings = FindingList()
            analyser.finish("", findings)  # every answer read
            parent = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert analyser._spool.count == n and list(findings) == []
        return analyser.parser.peak_rss, parent

    small_data, large_data = _onix_message(5_000), _onix_message(50_000)  # 5 and 53 MB, built before measuring
    (child_small, parent_small), (child_large, parent_large) = extract(small_data, 5_000), extract(large_data, 50_000)
    del small_data, large_data
    # ten times the products (48 MB more records' JSON): a few batches in flight, never the file's records
    assert child_large - child_small < 16 * 1024 * 1024, (child_small, child_large)
    assert parent_large - parent_small < parsing.QUEUE_BYTES + 1024 * 1024, (parent_small, parent_large)


def test_a_huge_onix_message_is_read_one_product_at_a_time(monkeypatch):
    widest = [0]
    end = onix_module.OnixReader.end

    def spy(self, element):
        parent = element.getparent()
        widest[0] = max(widest[0], len(parent) if parent is not None else 0)
        return end(self, element)

    monkeypatch.setattr(onix_module.OnixReader, "end", spy)

    def extract(data: bytes, n: int):
        def run():
            analyser = MetadataAnalyser(spool_memory=64 * 1024, in_process=True)  # tracemalloc sees this process
            _feed(analyser, "data/onix.xml", data)
            assert analyser._spool.count == n
        return run

    small_data, large_data = _onix_message(500), _onix_message(5000)  # built before measuring
    small, large = _peak(extract(small_data, 500)), _peak(extract(large_data, 5000))
    assert large - small < 256 * 1024, (small, large)
    # the tree holds the products parsed from one chunk ahead of the one being read, never the message
    product = len(onix_product("ref-0", "9787030000000", "书 0").encode())
    assert 2 < widest[0] <= CHUNK // product + 3  # and the header, and one cut by the chunk
