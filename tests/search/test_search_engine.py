"""The search engine on SQLite (FTS5 trigram) and PostgreSQL (pg_trgm): words, Chinese, identifiers, author, year."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, update

from preservation import search
from preservation.catalog.library_models import Item
from preservation.catalog.models import Package
from preservation.errors import InvalidIdentifier, InvalidRequest, InvalidText

from .catalog_data import ITEMS, populate


@pytest.fixture
def data(catalog):
    return populate(catalog)


def run(catalog, q=None, **options):
    with catalog.session() as s:
        return search.search_in(s, search.make_query(q, **options), None)


def item_titles(result) -> list[str]:
    return [h["title"] for h in result["items"]["hits"]]


def title_names(result) -> list[str]:
    return [h["title"] for h in result["titles"]["hits"]]


def test_chinese_words_of_three_characters_and_more(catalog, data):
    result = run(catalog, "物理学")
    assert item_titles(result) == ["中国物理学报的历史"]
    assert title_names(result) == ["物理学报"]
    assert run(catalog, "动力学")["items"]["total"] == 1


def test_two_character_chinese_words_anywhere_in_a_title(catalog, data):
    # 物理 at the start of a word, inside it, and as the last two characters of the title
    assert sorted(item_titles(run(catalog, "物理"))) == sorted(["中国物理学报的历史", "高能物理"])
    assert title_names(run(catalog, "学报")) == ["物理学报"]
    assert item_titles(run(catalog, "历史")) == ["中国物理学报的历史"]  # the last two characters
    assert run(catalog, "化物")["items"]["hits"] == []


def test_two_characters_with_punctuation_even_at_the_end(catalog, data):
    """``c+`` is no unicode61 token: the trigrams that begin with it (the last two characters too) find it."""
    assert item_titles(run(catalog, "c+")) == ["Templates in C+"]
    assert item_titles(run(catalog, "C+ templates")) == ["Templates in C+"]
    assert run(catalog, "+x")["items"]["hits"] == []


def test_every_word_must_occur(catalog, data):
    assert item_titles(run(catalog, "物理 历史")) == ["中国物理学报的历史"]
    assert item_titles(run(catalog, "物理\u3000高能")) == ["高能物理"]  # a full-width space splits too
    assert run(catalog, "物理 quantum")["items"]["hits"] == []


def test_english_words_ignore_case_and_match_inside_words(catalog, data):
    assert item_titles(run(catalog, "PHYSICS fluids")) == ["Physics of Fluids at low temperature"]
    assert item_titles(run(catalog, "comput")) == ["Quantum computing (a review)"]
    assert title_names(run(catalog, "acta physica")) == ["物理学报"]  # the English title
    assert title_names(run(catalog, "xuebao")) == ["物理学报"]  # the transliteration


def test_one_character_words_are_ignored_and_alone_refused(catalog, data):
    assert item_titles(run(catalog, "a 物理学")) == ["中国物理学报的历史"]
    with pytest.raises(InvalidRequest):
        search.make_query("物 a")


def test_author(catalog, data):
    assert sorted(item_titles(run(catalog, author="张伟"))) == sorted(["中国物理学报的历史", "化学反应动力学"])
    assert item_titles(run(catalog, "物理", author="张伟")) == ["中国物理学报的历史"]
    assert sorted(item_titles(run(catalog, author="smith"))) == sorted(
        ["Physics of Fluids at low temperature", "Quantum computing (a review)"])
    assert item_titles(run(catalog, author="Li")) == ["Physics of Fluids at low temperature"]
    assert run(catalog, author="张伟")["titles"]["hits"] == []  # titles have no authors


def test_year_narrows(catalog, data):
    assert item_titles(run(catalog, author="张伟", year=2019)) != []
    assert sorted(item_titles(run(catalog, "物理", year=2018))) == ["高能物理"]
    assert run(catalog, "物理", year="2017")["items"]["hits"] == []


def test_exact_identifiers(catalog, data):
    hit = run(catalog, doi="https://doi.org/10.7498/APS.68.20190001")["items"]["hits"]
    assert [h["doi"] for h in hit] == ["10.7498/aps.68.20190001"]
    assert title_names(run(catalog, issn="10003290")) == ["物理学报"]
    assert title_names(run(catalog, cn="CN 11-1958/O4")) == ["物理学报"]
    assert title_names(run(catalog, isbn="0-306-40615-2")) == ["化学手册"]  # ISBN-10 read as its ISBN-13
    with_year = run(catalog, issn="1000-3290", year=2019)
    assert sorted(item_titles(with_year)) == sorted(["中国物理学报的历史", "化学反应动力学",
                                                     "Quantum computing (a review)"])
    # typed in the query box, a valid identifier is an exact lookup
    assert [h["doi"] for h in run(catalog, "10.7498/aps.67.20180002")["items"]["hits"]] == ["10.7498/aps.67.20180002"]
    assert title_names(run(catalog, "ISSN 1070-6631")) == ["Physics of Fluids"]


@pytest.mark.parametrize("typed", ['"quoted"', '50%', 'growth_in', '* NEAR', 'NEAR', 'AND', '^caret',
                                   '{item_title}:', 'back\\slash', '(a', 'NEAR(rates growth)', '"" rates', '""',
                                   "rates OR quantum", 'item_title:rates', "rates -quantum", "rat*"])
def test_query_syntax_is_only_text_to_find(catalog, data, typed):
    """FTS5 operators and LIKE wildcards find themselves, never act: hits are exactly the titles holding each word."""
    words = [w.lower() for w in typed.split() if len(w) >= 2]
    expected = sorted(t for t, *_ in ITEMS if all(w in t.lower() for w in words))
    assert sorted(item_titles(run(catalog, typed))) == expected, typed


def test_like_wildcards_are_not_wildcards(catalog, data):
    assert item_titles(run(catalog, "50%")) == [item_titles(run(catalog, "growth_in"))[0]]
    assert run(catalog, "o_50")["items"]["hits"] == []


def test_triggers_keep_the_index_in_step(catalog, data):
    with catalog.session() as s:
        s.execute(update(Item).where(Item.doi == "10.7498/aps.67.20180002").values(item_title="粒子加速器"))
    assert item_titles(run(catalog, "高能物理")) == []
    assert item_titles(run(catalog, "加速器")) == ["粒子加速器"]
    with catalog.session() as s:
        s.execute(delete(Item).where(Item.doi == "10.1063/qc.2019.2"))
    assert run(catalog, "quantum")["items"]["hits"] == []
    with catalog.session() as s:  # a package's items go with it (ON DELETE CASCADE fires the triggers)
        s.execute(delete(Package).where(Package.id == data.package_id))
    assert run(catalog, "物理")["items"]["hits"] == []


def test_items_of_deaccessioned_packages_are_not_found(catalog, data):
    with catalog.session() as s:
        s.execute(update(Package).where(Package.id == data.package_id).values(state="deaccessioned"))
    assert run(catalog, "物理")["items"]["hits"] == []
    assert run(catalog, doi="10.7498/aps.68.20190001")["items"]["hits"] == []


def test_pages_and_capped_totals(catalog, data, monkeypatch):
    everything = run(catalog, "rates")
    assert everything["items"]["total"] == 2 and everything["items"]["total_exact"]
    first = run(catalog, "rates", limit=1)
    second = run(catalog, "rates", limit="1", offset="1")
    assert len(first["items"]["hits"]) == 1 and len(second["items"]["hits"]) == 1
    assert first["items"]["hits"][0]["id"] > second["items"]["hits"][0]["id"]  # newest first
    monkeypatch.setattr(search, "COUNT_CAP", 1)
    capped = run(catalog, "rates", limit=1)
    assert capped["items"]["total"] == 1 and capped["items"]["total_exact"] is False


@pytest.mark.parametrize("kwargs, error", [
    ({}, InvalidRequest),
    ({"q": "   "}, InvalidRequest),
    ({"q": "x" * 201}, InvalidText),
    ({"q": "物理\x00"}, InvalidText),
    ({"q": "物理\x1b[31m"}, InvalidText),
    ({"q": "物理\ue000"}, InvalidRequest),
    ({"author": "a\x07b"}, InvalidText),
    ({"q": " ".join(["ab"] * 9)}, InvalidRequest),
    ({"issn": "1000-3291"}, InvalidIdentifier),  # wrong check digit
    ({"isbn": "978-0-306-40615-8"}, InvalidIdentifier),
    ({"cn": "CN 99-1958/O4"}, InvalidIdentifier),
    ({"doi": "not a doi"}, InvalidIdentifier),
    ({"issn": "1000-3290", "doi": "10.7498/x"}, InvalidRequest),
    ({"q": "物理", "issn": "1000-3290"}, InvalidRequest),  # words are not looked for beside an identifier
    ({"author": "张伟", "doi": "10.7498/aps.68.20190001"}, InvalidRequest),
    ({"q": "物理", "year": 999}, InvalidRequest),
    ({"q": "物理", "year": "20 19"}, InvalidRequest),
    ({"q": "物理", "year": True}, InvalidRequest),
    ({"q": "物理", "limit": 0}, InvalidRequest),
    ({"q": "物理", "limit": 101}, InvalidRequest),
    ({"q": "物理", "limit": "+5"}, InvalidRequest),
    ({"q": "物理", "offset": -1}, InvalidRequest),
    ({"q": "物理", "offset": "1e3"}, InvalidRequest),
    ({"q": "物理", "offset": "１０"}, InvalidRequest),  # full-width digits
    ({"q": "物理", "offset": 10_001}, InvalidRequest),
    ({"q": "物理", "offset": "9" * 30}, InvalidRequest),
])
def test_bad_queries_are_refused(kwargs, error):
    with pytest.raises(error):
        search.make_query(**kwargs)
