"""Registering a delivery's items: the garbage collector paused while each batch is read and its rows made,
never while a statement runs (it may wait on another transaction's lock, and the pause holds for every thread)."""

from __future__ import annotations

import contextlib
import gc

import pytest
from sqlalchemy import func, select

from preservation import collector
from preservation.catalog.library_models import Item
from preservation.findings import FindingList
from preservation.ingest import ingest
from preservation.metadata import items
from preservation.metadata.items import BATCH, register_items
from preservation.metadata.records import ItemRecord

from .samples import write


pytestmark = pytest.mark.usefixtures("collector_running")


def _record(i: int) -> ItemRecord:
    return ItemRecord(kind="article", source_format="jats", metadata_path=f"data/期刊/{i}.xml",
                      doi=f"10.7498/aps.68.{i}", item_title=f"标题 {i}", authors=[f"作者{i}"], year=2019,
                      identifiers=[("issn_print", "1000-3290")], files=[(f"data/期刊/{i}.xml", "metadata", True)])


def _register(repo, tmp_path, records) -> None:
    write(tmp_path / "d", "a.txt", "a\n")
    package_id = ingest(repo, tmp_path / "d", "journals", analysers=[])["package_id"]
    with repo.catalog.session() as s:
        register_items(s, package_id, records, FindingList())


def test_each_batch_is_read_and_made_with_the_collector_paused_and_written_with_it_running(repo, tmp_path,
                                                                                         monkeypatch):
    events: list[str] = []
    depth = [0]
    real_pause = collector.paused

    @contextlib.contextmanager
    def recorded():
        depth[0] += 1
        events.append(f"pause {depth[0]}")
        try:
            with real_pause():
                yield
        finally:
            depth[0] -= 1
            events.append("resume")

    monkeypatch.setattr(items.collector, "paused", recorded)
    read: list[bool] = []

    def records():
        for i in range(2 * BATCH + 5):
            read.append(gc.isenabled())  # as a batch is read from the spool
            yield _record(i)

    real_insert = items._insert_items

    def insert(*args, **kwargs):
        events.append(f"insert, collector {'on' if gc.isenabled() else 'off'}")
        return real_insert(*args, **kwargs)

    monkeypatch.setattr(items, "_insert_items", insert)
    _register(repo, tmp_path, records())
    assert len(read) == 2 * BATCH + 5 and not any(read)
    # per batch: read (paused), rows made (paused), the rows inserted with the collector running; never nested
    per_batch = ["pause 1", "resume", "pause 1", "resume", "insert, collector on"]
    assert events == per_batch * 3 + ["pause 1", "resume"]  # (and the read that finds no more records)
    assert gc.isenabled()
    with repo.catalog.session() as s:
        assert s.scalar(select(func.count()).select_from(Item)) == 2 * BATCH + 5


def test_registering_items_that_fails_gives_the_collector_back(repo, tmp_path, monkeypatch):
    def broken(*_args, **_kwargs):
        raise OSError("the disk is full")

    monkeypatch.setattr(items, "_insert_items", broken)
    with pytest.raises(OSError, match="disk is full"):
        _register(repo, tmp_path, [_record(1)])
    assert gc.isenabled() and collector._pauses == 0


def test_a_record_that_fails_while_its_rows_are_made_gives_the_collector_back(repo, tmp_path, monkeypatch):
    def broken(*_args, **_kwargs):
        assert not gc.isenabled()  # the rows are made with the collector paused
        raise ValueError("a record the claims cannot read")

    monkeypatch.setattr(items.Claims, "files_of", broken)
    with pytest.raises(ValueError, match="cannot read"):
        _register(repo, tmp_path, [_record(1)])
    assert gc.isenabled() and collector._pauses == 0
