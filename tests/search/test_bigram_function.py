"""PostgreSQL's bigram function: the PL/pgSQL definition of migration 0021 gives the arrays migration 0007's SQL
function gave (the GIN indexes built with the old one stay valid), on Chinese, English, mixed and edge values."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import text

from preservation.catalog.db import Catalog
from preservation.catalog.search_tables import BIGRAM_FUNCTION, bigram_function_sql

from ..fixtures import _drop_schema, _postgres_url

OLD = "search_bigrams_0007"

EDGES = [
    None, "", "a", "物", "ab", "AB", "物理", " ", "  ", "a ", " a", "a b", "ab cd", "  ab  ", "a  b",
    "物理学报", "中国物理学报的历史", "Acta Physica Sinica", "ACTA acta AcTa", "Physics of Fluids at low temperature",
    "物理 Physics 物理", "C++ / C#", "Templates in C+", "高能物理\u3000Physics", "tab\there", "line\nend", "a\u00a0b",
    "İstanbul", "STRASSE ẞ", "ΟΔΟΣ ΣΑΣ", "e\u0301te\u0301", "😀😀😀 ok", "ab" * 40, "物理" * 50,
    "x" * 63 + "Y", "x" * 64 + "Y", "Z" + "y" * 64, "Ab " * 30,
    "; ".join(f"Surname{n}, Given{n % 7}" for n in range(600)),
    "".join(chr(0x4E00 + (n * 7919) % 20000) for n in range(3000)),
]


def _random_values(count: int) -> list[str]:
    rng = random.Random(21)
    alphabet = list("abcXYZ  物理学报中国科学") + ["\u3000", "İ", "ß", "Σ", "-", "+", "é"]
    return ["".join(rng.choice(alphabet) for _ in range(rng.choice([0, 1, 2, 3, 5, 8, 13, 40, 63, 64, 65, 90, 300])))
            for _ in range(count)]


@pytest.fixture
def catalog():
    url, schema = _postgres_url()
    cat = Catalog(url)
    try:
        cat.upgrade()
        with cat.session() as s:
            s.execute(text(bigram_function_sql(OLD, migration="0007")))
        yield cat
    finally:
        cat.dispose()
        _drop_schema(schema)


def _compare(catalog, values: list[str | None]) -> list[tuple]:
    """Per value: (value, old array sorted, new array sorted, new array's length, its distinct length)."""
    with catalog.session() as s:
        new = f"{BIGRAM_FUNCTION}(v)"
        return s.execute(text(
            f"SELECT v, ARRAY(SELECT unnest({OLD}(v)) ORDER BY 1), ARRAY(SELECT unnest({new}) ORDER BY 1), "
            f"cardinality({new}), (SELECT count(DISTINCT p) FROM unnest({new}) p) "
            "FROM unnest(CAST(:values AS text[])) WITH ORDINALITY AS x(v, n) ORDER BY n"), {"values": values}).all()


def test_the_catalog_has_the_plpgsql_function(catalog):
    with catalog.session() as s:
        language = s.execute(text("SELECT l.lanname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang "
                                  "WHERE p.proname = :name AND p.pronamespace = current_schema()::regnamespace"),
                             {"name": BIGRAM_FUNCTION}).scalar_one()
    assert language == "plpgsql"


@pytest.mark.parametrize("values", [EDGES, _random_values(3000)], ids=["edges", "random"])
def test_the_new_function_gives_the_old_arrays(catalog, values):
    rows = _compare(catalog, values)
    assert len(rows) == len(values)
    for value, old, new, length, distinct in rows:
        assert new == old, f"{value!r}: {new} != {old}"
        assert length == distinct == len(old)  # no run twice


def test_what_the_arrays_hold(catalog):
    by_value = {row[0]: row[2] for row in _compare(catalog, ["", "Ab Ab", "物理学", "C+ x", "x" * 64 + "Y"])}
    assert by_value[""] == [] and by_value["Ab Ab"] == ["ab"] and by_value["物理学"] == ["物理", "理学"]
    assert by_value["C+ x"] == ["c+"] and by_value["x" * 64 + "Y"] == ["xx", "xy"]
    with catalog.session() as s:
        assert s.execute(text(f"SELECT {BIGRAM_FUNCTION}(NULL)")).scalar_one() == []
