"""Titles: found by any identifier, never duplicated, shown with what is preserved; title entitlements."""

from __future__ import annotations

import pytest

from preservation.access.accounts import add_library, get_library
from preservation.catalog.access_models import Entitlement
from preservation.catalog.library_models import Item, Title, TitleEntitlement
from preservation.errors import InvalidIdentifier, InvalidRequest, InvalidText, NotFound
from preservation.titles import (
    TitleData,
    add_title,
    date_bounds,
    entitled,
    find_or_create_title,
    get_title,
    list_titles,
    parse_partial_date,
    show_title,
)

from .helpers import add_items, add_package


def aps(**more) -> TitleData:
    data = dict(kind="journal", title="物理学报", title_transliterated="Wuli Xuebao", title_english="Acta Physica Sinica",
                publisher="中国物理学会", identifiers=[("issn_print", "1000-3290"), ("cn", "CN 11-1958/O4"),
                                                     ("doi_prefix", "10.7498")])
    data.update(more)
    return TitleData(**data)


def test_a_title_is_found_by_any_identifier_and_never_duplicated(repo) -> None:
    first = add_title(repo, "journals", aps())
    assert first["created"] and first["identifiers"] == {"issn_print": ["1000-3290"], "cn": ["CN 11-1958/O4"],
                                                         "doi_prefix": ["10.7498"]}
    # found by its CN number alone (typed full-width): updated, and the online ISSN added
    again = add_title(repo, "journals", aps(identifiers=[("cn", "ＣＮ１１－１９５８／Ｏ４"), ("issn_online", "1000-3290")]))
    assert not again["created"] and again["id"] == first["id"]
    assert again["identifiers"]["issn_online"] == ["1000-3290"]
    # an online ISSN finds a title by its print ISSN too
    third = add_title(repo, "journals", aps(identifiers=[("issn_online", "10003290")], title="物理学报 (新)"))
    assert third["id"] == first["id"] and third["title"] == "物理学报 (新)"
    with repo.catalog.session() as s:
        assert s.query(Title).count() == 1
        assert get_title(s, "1000-3290").id == first["id"]
        assert get_title(s, "CN 11-1958/O4").id == first["id"]
        assert get_title(s, str(first["id"])).id == first["id"]
        assert get_title(s, "10003290").id == first["id"]  # 8 digits that are an ISSN are the ISSN
        with pytest.raises(NotFound):
            get_title(s, "1674-1056")
        with pytest.raises(NotFound):
            get_title(s, "999999")


def test_identifiers_of_two_titles_are_refused(repo) -> None:
    add_title(repo, "journals", aps())
    add_title(repo, "journals", TitleData(kind="journal", title="Chinese Physics B",
                                          identifiers=[("issn_print", "1674-1056")]))
    with pytest.raises(InvalidRequest, match="belong to title"):
        add_title(repo, "journals", aps(identifiers=[("issn_print", "1000-3290"), ("issn_online", "1674-1056")]))


def test_a_doi_prefix_alone_does_not_identify_a_title(repo) -> None:
    with pytest.raises(InvalidRequest, match="to be found by"):
        add_title(repo, "journals", aps(identifiers=[("doi_prefix", "10.7498")]))


@pytest.mark.parametrize("change, error", [
    (dict(kind="magazine"), InvalidRequest), (dict(title="  "), InvalidRequest),
    (dict(title="物理\x00学报"), InvalidText), (dict(publisher="x" * 301), InvalidText),
    (dict(identifiers=[("issn_print", "1000-3291")]), InvalidIdentifier),
    (dict(identifiers=[("ismn", "979-0-2600-0043-8")]), InvalidRequest),
])
def test_bad_titles_are_refused_and_nothing_is_saved(repo, change, error) -> None:
    with pytest.raises(error):
        add_title(repo, "journals", aps(**change))
    with repo.catalog.session() as s:
        assert s.query(Title).count() == 0


def test_preserved_coverage_counts_preserved_and_degraded_packages_only(repo) -> None:
    title_id = add_title(repo, "journals", aps())["id"]
    kept = add_package(repo, state="preserved")
    add_items(repo, kept, title_id, [(2018, "67", "1"), (2018, "67", "2"), (2019, "68", "1")])
    degraded = add_package(repo, state="degraded")
    add_items(repo, degraded, title_id, [(2019, "68", "3")])
    for state, issue in (("replicating", "4"), ("damaged", "5"), ("deaccessioned", "6")):
        add_items(repo, add_package(repo, state=state), title_id, [(2019, "68", issue)])
    shown = show_title(repo, "1000-3290")
    preserved = shown["preserved"]
    assert (preserved["first_date"], preserved["first_volume"], preserved["first_issue"]) == ("2018-01-01", "67", "1")
    assert (preserved["last_date"], preserved["last_volume"], preserved["last_issue"]) == ("2019-03-01", "68", "3")
    assert preserved["years"] == [2018, 2019] and preserved["issues"] == 4 and preserved["items"] == 8
    assert preserved["packages"] == 2
    assert {p["id"]: p["counts_as_preserved"] for p in shown["packages"]} == {
        kept: True, degraded: True, **{p["id"]: False for p in shown["packages"] if p["id"] not in (kept, degraded)}}
    assert len(shown["packages"]) == 5
    listed = list_titles(repo, collection_key="journals")
    assert listed["total"] == 1 and listed["titles"][0]["preserved"] == preserved


def test_volumes_sort_as_numbers(repo) -> None:
    title_id = add_title(repo, "journals", aps())["id"]
    add_items(repo, add_package(repo), title_id, [(2019, "9", "12"), (2019, "10", "2"), (2019, "10", "10")])
    preserved = show_title(repo, "1000-3290")["preserved"]
    assert (preserved["first_volume"], preserved["first_issue"]) == ("9", "12")
    assert (preserved["last_volume"], preserved["last_issue"]) == ("10", "10")


@pytest.mark.parametrize("text", ["2019", "2019-02", "2020-02-29", "1500", "2100-12-31"])
def test_partial_dates(text) -> None:
    assert parse_partial_date(text) == text


@pytest.mark.parametrize("text", ["19", "2019-2", "2019-13", "2019-02-29", "2019-00", "1499", "2101", "2019/01",
                                  "２０１９", "2019-01-01T00:00", " 2019"])
def test_bad_partial_dates(text) -> None:
    with pytest.raises(InvalidRequest):
        parse_partial_date(text)


def test_date_bounds() -> None:
    assert [d.isoformat() for d in date_bounds("2020-02")] == ["2020-02-01", "2020-02-29"]


def library(repo) -> int:
    add_library(repo, "PKU", "北京大学图书馆")
    with repo.catalog.session() as s:
        return get_library(s, "PKU").id


def _entitle(repo, library_id, title_id, **bounds) -> None:
    with repo.catalog.session() as s:
        s.add(TitleEntitlement(library_id=library_id, title_id=title_id, **bounds))


def test_entitled_by_title_date_volume_and_issue(repo) -> None:
    library_id = library(repo)
    title_id = add_title(repo, "journals", aps())["id"]
    package = add_package(repo)
    add_items(repo, package, title_id, [(2019, "68", "3"), (2021, "70", "1"), (2016, "65", "1")], per_issue=1)
    _entitle(repo, library_id, title_id, first_date="2017", first_volume="66", last_date="2020-06",
             last_volume="69", last_issue="12")
    with repo.catalog.session() as s:
        items = {i.volume: i for i in s.query(Item)}
        title = s.get(Title, title_id)
        assert entitled(s, library_id, items["68"])  # 2019-03, volume 68
        assert not entitled(s, library_id, items["70"])  # after the range
        assert not entitled(s, library_id, items["65"])  # before it
        assert entitled(s, library_id, title, volume="68", issue="3")
        assert not entitled(s, library_id, title, volume="69", issue="13")  # past the last issue
        assert entitled(s, library_id, title, when="2020-06-30")
        assert not entitled(s, library_id, title, when="2020")  # the whole of 2020 is not covered
        assert entitled(s, library_id, title)  # holds an entitlement to the title
        assert not entitled(s, library_id + 1000, title)
        with pytest.raises(InvalidRequest):
            entitled(s, library_id, title, when="2020-13")


def test_entitled_by_collection_years(repo) -> None:
    library_id = library(repo)
    title_id = add_title(repo, "journals", aps())["id"]
    add_items(repo, add_package(repo), title_id, [(2019, "68", "3"), (2021, "70", "1")], per_issue=1)
    with repo.catalog.session() as s:
        title = s.get(Title, title_id)
        assert not entitled(s, library_id, title)
        s.add(Entitlement(library_id=library_id, collection_id=title.collection_id, from_year=2015, to_year=2020))
        s.flush()
        items = {i.volume: i for i in s.query(Item)}
        assert entitled(s, library_id, items["68"]) and not entitled(s, library_id, items["70"])
        assert entitled(s, library_id, title) and entitled(s, library_id, title, when="2016-05")
        assert not entitled(s, library_id, title, volume="68")  # a volume alone says no year


def test_a_range_with_no_bounds_is_the_whole_title(repo) -> None:
    library_id = library(repo)
    title_id = add_title(repo, "journals", aps())["id"]
    add_items(repo, add_package(repo), title_id, [(1990, "39", "1")], per_issue=1)
    _entitle(repo, library_id, title_id)
    with repo.catalog.session() as s:
        assert entitled(s, library_id, s.query(Item).one())


def test_find_or_create_title_keeps_what_it_finds(repo) -> None:
    kept = add_title(repo, "journals", aps())
    with repo.catalog.session() as s:
        collection_id = s.get(Title, kept["id"]).collection_id
        found = find_or_create_title(s, collection_id, "journal", "Acta Physica Sinica (from JATS)",
                                     [("issn_online", "1000-3290")])
        assert found.id == kept["id"] and found.title == "物理学报"
        new = find_or_create_title(s, collection_id, "journal", "Chinese Physics B", [("issn_print", "16741056")])
        assert new.id != kept["id"] and [(i.scheme, i.value) for i in new.identifiers] == [("issn_print", "1674-1056")]
        with pytest.raises(InvalidIdentifier):
            find_or_create_title(s, collection_id, "journal", "x", [("issn_print", "1674-1057")])
