"""RecordTable: compact per-file records."""

from __future__ import annotations

import hashlib

import pytest

from preservation.bagit.records import FileRecord, RecordTable


def raw(data: bytes) -> bytes:
    return hashlib.sha256(data).digest() + hashlib.sha512(data).digest()


def test_records_come_back_as_they_went_in() -> None:
    table = RecordTable(("sha256", "sha512"))
    table.append("data/b", 2, raw(b"bb"))
    table.append("data/a", 1, raw(b"a"))
    assert len(table) == 2 and table.total_bytes == 3
    assert table[1] == FileRecord("data/a", 1, {"sha256": hashlib.sha256(b"a").hexdigest(),
                                               "sha512": hashlib.sha512(b"a").hexdigest()})
    assert [r.path for r in table] == ["data/b", "data/a"]
    assert table.order_by_path() == [1, 0]
    assert table.hexdigest_at(0, "sha512") == hashlib.sha512(b"bb").hexdigest()
    assert table.to_list()[0]["digests"]["sha256"] == hashlib.sha256(b"bb").hexdigest()


def test_wrong_digest_width_is_refused() -> None:
    with pytest.raises(ValueError):
        RecordTable(("sha256",)).append("data/x", 0, b"short")
