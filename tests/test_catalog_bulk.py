"""Bulk writes (preservation.catalog.bulk): COPY text made on one thread and sent on another, and the write-behind
thread's order, errors and stop."""

from __future__ import annotations

import threading
import time
from datetime import datetime

import pytest
from sqlalchemy import select

from preservation.catalog.bulk import KeyedCopy, WriteBehind, can_write_behind, insert_rows
from preservation.catalog.library_models import Title
from preservation.catalog.models import Collection


COLUMNS = ("id", "collection_id", "kind", "title", "title_transliterated", "title_english", "publisher", "kbart",
           "created_at", "updated_at")
WHEN = datetime(2026, 12, 6, 14, 15, 16, 123456)
# what COPY text must escape (TAB, line ends, backslash), what looks like its NULL (\N), Chinese, an empty string
VALUES = [("物理学报", "Wuli\tXuebao", "Acta\nPhysica\r\nSinica", "中国物理学会", {"notes": "a\\b", "extra": {"k": "\\N"}}),
          ("\\N", "", "back\\slash", "", {}),
          ("化学学报", "Huaxue Xuebao", "", "科学出版社", {"notes": "中文全文\t全"})]


def _rows(collection_id: int, first_id: int | None) -> list[tuple]:
    return [(first_id + n if first_id else -1 - n, collection_id, "journal", *values[:4], values[4], WHEN, WHEN)
            for n, values in enumerate(VALUES)]


def _titles(session, collection_id: int) -> list[tuple]:
    return [(t.id, t.title, t.title_transliterated, t.title_english, t.publisher, t.kbart, t.created_at)
            for t in session.scalars(select(Title).where(Title.collection_id == collection_id).order_by(Title.id))]


def test_copy_text_made_now_and_sent_later_writes_what_insert_rows_writes(catalog):
    with catalog.session() as s:
        a, b = Collection(key="a", title="A"), Collection(key="b", title="B")
        s.add_all([a, b])
        s.flush()
        conn = s.connection()
        if not can_write_behind(conn):
            assert catalog.dialect == "sqlite"  # SQLite: only insert_rows, written where it is called
            return
        insert_rows(conn, Title.__table__, COLUMNS, _rows(a.id, 1000))
        prepared = KeyedCopy(conn, Title.__table__, COLUMNS, _rows(b.id, None))
        assert len(prepared) == len(VALUES)
        prepared.send(conn, {-1: 2000, -2: 2001, -3: 2002})
        direct, copied = _titles(s, a.id), _titles(s, b.id)
    assert [row[0] for row in copied] == [2000, 2001, 2002]
    assert [row[1:] for row in copied] == [row[1:] for row in direct]
    assert copied[0][1:6] == (*VALUES[0][:4], VALUES[0][4])  # TAB, CR, LF, backslash and \N back as they were
    assert copied[1][1] == "\\N" and copied[0][6] == WHEN


def test_a_key_the_mapping_lacks_is_written_as_it_is(catalog):
    with catalog.session() as s:
        c = Collection(key="c", title="C")
        s.add(c)
        s.flush()
        conn = s.connection()
        if not can_write_behind(conn):
            return
        KeyedCopy(conn, Title.__table__, COLUMNS, _rows(c.id, 3000)).send(conn, {3001: 4001})
        assert [row[0] for row in _titles(s, c.id)] == [3000, 3002, 4001]


def test_write_behind_runs_the_writes_in_order_on_a_thread_of_its_own():
    done, threads = [], set()
    with WriteBehind(depth=1) as behind:
        for n in range(5):
            behind.submit(lambda n=n: (done.append(n), threads.add(threading.get_ident())))
    assert done == [0, 1, 2, 3, 4] and threading.get_ident() not in threads and len(threads) == 1


def test_a_failed_write_is_raised_to_the_caller_and_ends_the_writing():
    done = []

    def fail():
        raise OSError("disk full")

    behind = WriteBehind(depth=1)
    with pytest.raises(OSError, match="disk full"):
        with behind:
            behind.submit(lambda: done.append(1))
            behind.submit(fail)
            behind.submit(lambda: done.append(3))  # queued before the failure was seen, or refused: never run
            behind.submit(lambda: done.append(4))
    assert done == [1]


def test_a_failed_write_is_raised_by_the_next_submit():
    failed = threading.Event()

    def fail():
        failed.set()
        raise OSError("disk full")

    behind = WriteBehind()
    with pytest.raises(OSError, match="disk full"):
        with behind:
            behind.submit(fail)
            assert failed.wait(10)
            for _ in range(1000):  # the error is kept just after fail() raises: a submit then raises it
                behind.submit(lambda: None)
                time.sleep(0.01)
    assert behind._thread is None


def test_when_the_caller_fails_the_write_under_way_ends_and_the_rest_is_skipped():
    started, done = threading.Event(), []
    behind = WriteBehind(depth=2)

    def slow():
        started.set()
        deadline = time.monotonic() + 10
        while not behind._skip and time.monotonic() < deadline:  # until the caller's failure reached the block
            time.sleep(0.001)
        done.append("slow")

    with pytest.raises(ValueError, match="bad row"):
        with behind:
            behind.submit(slow)
            assert started.wait(10)
            behind.submit(lambda: done.append("queued"))
            raise ValueError("bad row")
    assert done == ["slow"] and behind._thread is None
