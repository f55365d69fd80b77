"""KBART: publishers' title lists and libraries' files in (all or nothing, every bad input coded), holdings out."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from preservation import kbart
from preservation.access.accounts import add_library
from preservation.catalog.library_models import ExpectedCoverage, Title, TitleEntitlement, TitleIdentifier
from preservation.collection import add_collection
from preservation.coverage import export
from preservation.errors import ImportRejected
from preservation.kbart import import_library_file, import_title_list
from preservation.titles import show_title

from ..fixtures import make_repo
from .helpers import APS, CPB, KBART_HEADER, add_items, add_package, kbart_row, kbart_text

BOOK = dict(publication_title="量子力学导论", print_identifier="978-7-04-011234-?", publication_type="monograph",
            publisher_name="高等教育出版社", date_monograph_published_print="2003-09", first_author="曾谨言",
            monograph_edition="2", title_id="qm-2003")


def isbn13(body12: str) -> str:
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body12))
    return body12 + str((10 - total % 10) % 10)


BOOK["print_identifier"] = isbn13("978704011234")

PUBLISHER_ROWS = [
    kbart_row(**APS, date_first_issue_online="2015-01", num_first_vol_online="64", num_first_issue_online="1",
              date_last_issue_online="2017-12", num_last_vol_online="66", num_last_issue_online="24",
              notes="中文全文", access_type="P"),
    kbart_row(**APS, date_first_issue_online="2019", num_first_vol_online="68", embargo_info="P1Y"),
    kbart_row(**CPB, date_first_issue_online="2008-01-01", num_first_vol_online="17"),
    kbart_row(**BOOK),
]


def write(tmp_path: Path, text: str | bytes, name: str = "list.tsv") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def counts(repo) -> tuple[int, int, int]:
    with repo.catalog.session() as s:
        return (s.query(Title).count(), s.query(TitleIdentifier).count(), s.query(ExpectedCoverage).count())


def holdings(repo, collection_key: str) -> list[dict]:
    """A collection's titles as comparable data: everything but ids, collection and line numbers."""
    with repo.catalog.session() as s:
        titles = s.scalars(select(Title).join(Title.collection).where(Title.collection.has(key=collection_key))
                           .order_by(Title.title)).all()
        out = []
        for t in titles:
            out.append({"kind": t.kind, "title": t.title, "publisher": t.publisher, "kbart": t.kbart,
                        "title_transliterated": t.title_transliterated, "title_english": t.title_english,
                        "identifiers": sorted((i.scheme, i.value) for i in t.identifiers),
                        "coverage": sorted((c.first_date, c.first_volume, c.first_issue, c.last_date, c.last_volume,
                                            c.last_issue, c.embargo_info, c.coverage_depth) for c in t.coverage)})
        return out


@pytest.fixture
def any_repo(tmp_path, catalog_url):
    """A repository on SQLite and on PostgreSQL."""
    repo = make_repo(tmp_path / "home", catalog_url)
    try:
        yield repo
    finally:
        repo.close()


@pytest.mark.parametrize("newline, bom", [("\n", False), ("\r\n", True)])
def test_a_publisher_list_becomes_titles_and_expected_coverage(any_repo, tmp_path, newline, bom) -> None:
    text = kbart_text(PUBLISHER_ROWS, newline=newline)
    path = write(tmp_path, (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    result = import_title_list(any_repo, path, "journals")
    assert result["rows"] == 4 and result["titles_added"] == 3 and result["coverage_rows"] == 4
    assert result["warnings"] == []
    assert counts(any_repo) == (3, 7, 4)  # ISSN+id, ISSN+ISSN+id, ISBN+id
    shown = show_title(any_repo, "1000-3290")
    assert shown["title"] == "物理学报" and shown["kind"] == "journal" and shown["publisher"] == "中国物理学会"
    assert shown["identifiers"] == {"issn_print": ["1000-3290"], "publisher": ["wlxb"]}
    assert [(e["first_date"], e["last_volume"], e["embargo_info"], e["line"]) for e in shown["expected"]] == [
        ("2015-01", "66", "", 2), ("2019", "", "P1Y", 3)]
    assert shown["kbart"]["notes"] == "中文全文" and shown["kbart"]["access_type"] == "P"
    book = show_title(any_repo, BOOK["print_identifier"])
    assert book["kind"] == "book" and book["kbart"]["date_monograph_published_print"] == "2003-09"


def test_reimporting_a_list_updates_titles_and_replaces_their_coverage(any_repo, tmp_path) -> None:
    import_title_list(any_repo, write(tmp_path, kbart_text(PUBLISHER_ROWS)), "journals")
    changed = [kbart_row(**{**APS, "publication_title": "物理学报 (Wuli Xuebao)"}, online_identifier="1000-3290",
                         date_first_issue_online="2010")]
    result = import_title_list(any_repo, write(tmp_path, kbart_text(changed), "again.tsv"), "journals")
    assert result["titles_added"] == 0 and result["titles_updated"] == 1 and result["identifiers_added"] == 1
    shown = show_title(any_repo, "wlxb")
    assert shown["title"] == "物理学报 (Wuli Xuebao)" and [e["first_date"] for e in shown["expected"]] == ["2010"]
    assert counts(any_repo) == (3, 8, 3)  # the other titles are left as they were


BAD_ROWS = [
    ("control character", dict(APS, publication_title="物理\x01学报"), "K004", "publication_title"),
    ("U+FFFE", dict(APS, notes="\ufffe"), "K004", "notes"),
    ("C1 control", dict(APS, publisher_name="中国\x85物理学会"), "K004", "publisher_name"),
    ("lone CR", dict(APS, notes="a\rb"), "K004", "notes"),
    ("unknown publication_type", dict(APS, publication_type="journal"), "K006", "publication_type"),
    ("empty publication_type", dict(APS, publication_type=""), "K005", "publication_type"),
    ("empty title", dict(APS, publication_title=""), "K005", "publication_title"),
    ("slashed date", dict(APS, date_first_issue_online="2019/01/01"), "K007", "date_first_issue_online"),
    ("month 13", dict(APS, date_first_issue_online="2019-13"), "K007", "date_first_issue_online"),
    ("29 February 2019", dict(APS, date_last_issue_online="2019-02-29"), "K007", "date_last_issue_online"),
    ("year 1499", dict(APS, date_first_issue_online="1499"), "K007", "date_first_issue_online"),
    ("full-width year", dict(APS, date_first_issue_online="２０１９"), "K007", "date_first_issue_online"),
    ("monograph date", dict(BOOK, date_monograph_published_online="03/2003"), "K007",
     "date_monograph_published_online"),
    ("dates reversed", dict(APS, date_first_issue_online="2019", date_last_issue_online="2018-12"), "K008",
     "date_last_issue_online"),
    ("volumes reversed", dict(APS, num_first_vol_online="68", num_last_vol_online="64"), "K008",
     "num_last_vol_online"),
    ("ISSN check digit", dict(APS, print_identifier="1000-3291"), "K009", "print_identifier"),
    ("ISBN for a serial", dict(APS, print_identifier=BOOK["print_identifier"]), "K009", "print_identifier"),
    ("ISSN for a monograph", dict(BOOK, online_identifier="1000-3290"), "K009", "online_identifier"),
    ("bad CN number", dict(APS), "K009", "preserve_cn"),
    ("title too long", dict(APS, publication_title="物" * 1001), "K010", "publication_title"),
    ("volume too long", dict(APS, num_first_vol_online="6" * 33), "K010", "num_first_vol_online"),
    ("embargo", dict(APS, embargo_info="2 years"), "K011", "embargo_info"),
    ("coverage depth", dict(APS, coverage_depth="everything"), "K011", "coverage_depth"),
    ("access type", dict(APS, access_type="X"), "K011", "access_type"),
    ("title url", dict(APS, title_url="javascript:alert(1)"), "K011", "title_url"),
    ("no identifier", dict(APS, print_identifier="", title_id=""), "K015", None),
]


@pytest.mark.parametrize("name, fields, code, column", BAD_ROWS, ids=[b[0] for b in BAD_ROWS])
def test_a_bad_row_refuses_the_whole_file_with_its_line_and_field(repo, tmp_path, name, fields, code, column) -> None:
    header = KBART_HEADER
    rows = [kbart_row(**CPB), kbart_row(**BOOK) if fields is BOOK else kbart_row(**fields)]
    bad = rows[1]
    if name == "bad CN number":
        header = [*KBART_HEADER, "preserve_cn"]
        rows = [r + [""] for r in rows]
        rows[1][-1] = "CN 11-1958/04"
    elif fields.get("publication_type") == "monograph":
        rows[1] = kbart_row(**fields)
    else:
        rows[1] = bad
    path = write(tmp_path, kbart_text(rows, header=header))
    with pytest.raises(ImportRejected) as caught:
        import_title_list(repo, path, "journals")
    assert caught.value.code == "E803"
    errors = [f for f in caught.value.findings if f.is_error]
    assert [f.code for f in errors] == [code], [str(f) for f in errors]
    assert errors[0].params["line"] == 3
    assert errors[0].params.get("field") == column
    assert counts(repo) == (0, 0, 0)


@pytest.mark.parametrize("change, message", [
    (lambda h: h[:-1], "column 25"),  # a column missing
    (lambda h: [h[1], h[0], *h[2:]], "column 1"),  # two swapped
    (lambda h: ["Publication_Title", *h[1:]], "column 1"),
    (lambda h: [*h, "notes2", "notes2"], "distinct"),
    (lambda h: [*h, "publication_title"], "standard column"),  # a second column of the same name
])
def test_a_header_that_is_not_kbart_is_refused(repo, tmp_path, change, message) -> None:
    header = change(list(KBART_HEADER))
    path = write(tmp_path, "\t".join(header) + "\n" + "\t".join(kbart_row(**APS)) + "\n")
    with pytest.raises(ImportRejected) as caught:
        import_title_list(repo, path, "journals")
    assert [f.code for f in caught.value.findings] == ["K002"] and message in caught.value.findings[0].message


def test_a_wrong_field_count_is_refused(repo, tmp_path) -> None:
    text = kbart_text([kbart_row(**APS)]) + "\t".join(kbart_row(**CPB)[:-1]) + "\n"
    with pytest.raises(ImportRejected) as caught:
        import_title_list(repo, write(tmp_path, text), "journals")
    assert [(f.code, f.params["line"]) for f in caught.value.findings] == [("K003", 3)]
    assert counts(repo) == (0, 0, 0)


@pytest.mark.parametrize("content, what", [
    (b"", "empty"),
    ("\t".join(KBART_HEADER).encode() + b"\n", "no rows"),
    ("\t".join(KBART_HEADER).encode() + b"\n" + "\t".join(kbart_row(**APS)).encode("gb18030") + b"\n", "UTF-8"),
])
def test_unreadable_files_are_refused(repo, tmp_path, content, what) -> None:
    with pytest.raises(ImportRejected) as caught:
        import_title_list(repo, write(tmp_path, content), "journals")
    assert [f.code for f in caught.value.findings] == ["K001"] and what in caught.value.findings[0].message


@pytest.mark.parametrize("limit, value, what", [("MAX_LINE_BYTES", 300, "longer than"),
                                                ("MAX_ROWS", 1, "more than 1 rows"),
                                                ("MAX_FILE_BYTES", 600, "larger than")])
def test_limits(repo, tmp_path, monkeypatch, limit, value, what) -> None:
    monkeypatch.setattr(kbart, limit, value)
    path = write(tmp_path, kbart_text([kbart_row(**APS), kbart_row(**CPB)]))
    with pytest.raises(ImportRejected) as caught:
        import_title_list(repo, path, "journals")
    assert "K001" in [f.code for f in caught.value.findings] and what in str(caught.value.findings)
    assert counts(repo) == (0, 0, 0)


def test_a_missing_file_is_a_finding_not_a_crash(repo, tmp_path) -> None:
    with pytest.raises(ImportRejected) as caught:
        import_title_list(repo, tmp_path / "nothing.tsv", "journals")
    assert [f.code for f in caught.value.findings] == ["K001"]


@pytest.fixture
def small_batches(monkeypatch) -> None:
    """Batches of two identifiers and coverage rows, where they are checked (SQLite) and behind (PostgreSQL)."""
    monkeypatch.setattr(kbart, "BATCH", 2)
    monkeypatch.setattr(kbart, "BATCH_BEHIND", 2)


def test_all_or_nothing_across_written_batches(any_repo, tmp_path, small_batches) -> None:
    """Batches already written in the transaction (on PostgreSQL, behind the checking) are rolled back when a
    later line is bad."""
    rows = [kbart_row(**dict(APS, title_id=f"t{n}", print_identifier="", publication_title=f"期刊 {n}"))
            for n in range(10)]
    rows.append(kbart_row(**dict(APS, date_first_issue_online="2019-02-30")))
    with pytest.raises(ImportRejected) as caught:
        import_title_list(any_repo, write(tmp_path, kbart_text(rows)), "journals")
    assert [(f.code, f.params["line"]) for f in caught.value.findings] == [("K007", 12)]
    assert counts(any_repo) == (0, 0, 0)


def test_many_errors_stop_checking(repo, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(kbart, "MAX_ERRORS", 3)
    rows = [kbart_row(**dict(APS, print_identifier="1000-3291")) for _ in range(10)]
    with pytest.raises(ImportRejected) as caught:
        import_title_list(repo, write(tmp_path, kbart_text(rows)), "journals")
    assert len(caught.value.findings) == 3 and "checking stopped" in str(caught.value)


def test_identifiers_of_two_titles_are_refused(repo, tmp_path) -> None:
    import_title_list(repo, write(tmp_path, kbart_text(PUBLISHER_ROWS)), "journals")
    mixed = kbart_row(**dict(APS, title_id="cpb"))  # 物理学报's ISSN, Chinese Physics B's title id
    with pytest.raises(ImportRejected) as caught:
        import_title_list(repo, write(tmp_path, kbart_text([mixed]), "mixed.tsv"), "journals")
    assert [f.code for f in caught.value.findings] == ["K012"]
    # within one file too: the title of line 2 and the title of line 3, joined by line 4
    rows = [kbart_row(**dict(APS, title_id="")), kbart_row(**dict(CPB, online_identifier="")),
            kbart_row(**dict(APS, title_id="cpb"))]
    with pytest.raises(ImportRejected) as caught:
        import_title_list(repo, write(tmp_path, kbart_text(rows), "mixed2.tsv"), "journals")
    assert [f.code for f in caught.value.findings] == ["K012"]


def test_two_titles_of_batches_already_written_are_named_by_their_lines(any_repo, tmp_path, small_batches) -> None:
    """A row joining two titles the file made in earlier, written batches is K012 naming their lines (no crash)."""
    rows = [kbart_row(**dict(APS, title_id="")), kbart_row(**dict(CPB, online_identifier="")),
            *(kbart_row(**dict(APS, title_id=f"t{n}", print_identifier="", publication_title=f"期刊 {n}"))
              for n in range(4)),
            kbart_row(**dict(APS, title_id="cpb"))]
    with pytest.raises(ImportRejected) as caught:
        import_title_list(any_repo, write(tmp_path, kbart_text(rows)), "journals")
    assert [(f.code, f.params["line"]) for f in caught.value.findings] == [("K012", 8)]
    assert "the title of line 2 and the title of line 3" in caught.value.findings[0].message
    assert counts(any_repo) == (0, 0, 0)


def _fail_coverage_of_line(repo, line: int) -> None:
    """The database refuses the coverage row of ``line`` (a trigger), as a full disk would refuse a write."""
    with repo.catalog.session() as s:
        run = s.connection().exec_driver_sql
        if repo.catalog.dialect == "sqlite":
            run(f"CREATE TRIGGER fail_line AFTER INSERT ON expected_coverage WHEN new.line_no = {line} "
                "BEGIN SELECT RAISE(ABORT, 'disk full'); END")
        else:
            run(f"CREATE FUNCTION fail_line() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"IF NEW.line_no = {line} THEN RAISE EXCEPTION 'disk full'; END IF; RETURN NEW; END $$")
            run("CREATE TRIGGER fail_line BEFORE INSERT ON expected_coverage FOR EACH ROW EXECUTE FUNCTION fail_line()")


def test_a_failed_write_of_a_batch_keeps_nothing(any_repo, tmp_path, small_batches) -> None:
    """The write of a later batch fails (on PostgreSQL, on the thread that writes behind the checking): its error
    reaches the caller and the transaction rolls back, the batches written before it too."""
    _fail_coverage_of_line(any_repo, 7)
    rows = [kbart_row(**dict(APS, title_id=f"t{n}", print_identifier="", publication_title=f"期刊 {n}"))
            for n in range(10)]
    with pytest.raises((DBAPIError, psycopg.Error), match="disk full"):
        import_title_list(any_repo, write(tmp_path, kbart_text(rows)), "journals")
    assert counts(any_repo) == (0, 0, 0)


def test_on_postgresql_a_batch_is_written_while_the_next_is_checked(any_repo, tmp_path, monkeypatch,
                                                                   small_batches) -> None:
    """PostgreSQL: the writes run on a thread of their own, behind the checking; SQLite: on the caller's thread."""
    # one row a batch (small_batches): a title id and a coverage range
    caller, checked, writers, later = threading.get_ident(), [0], set(), []
    check_row, insert = kbart._check_row, kbart._insert

    def checking(reader, line, text):
        checked.append(line)
        return check_row(reader, line, text)

    def writing(conn, table, columns, rows, real):
        writers.add(threading.get_ident())
        if threading.get_ident() != caller and not later:  # the first write waits for a later line to be checked
            deadline = time.monotonic() + 10
            while max(checked) <= 2 and time.monotonic() < deadline:
                time.sleep(0.005)
            later.append(max(checked))
        insert(conn, table, columns, rows, real)

    monkeypatch.setattr(kbart, "_check_row", checking)
    monkeypatch.setattr(kbart, "_insert", writing)
    rows = [kbart_row(**dict(APS, title_id=f"t{n}", print_identifier="", publication_title=f"期刊 {n}"))
            for n in range(6)]
    result = import_title_list(any_repo, write(tmp_path, kbart_text(rows)), "journals")
    assert result["titles_added"] == 6 and counts(any_repo) == (6, 6, 6)
    if any_repo.catalog.dialect == "postgresql":
        assert caller not in writers and len(writers) == 1 and later[0] > 2
    else:
        assert writers == {caller} and later == []


def test_repeated_rows_and_unknown_extra_columns_are_warnings(repo, tmp_path) -> None:
    header = [*KBART_HEADER, "package_name", "preserve_verification"]
    rows = [kbart_row(**APS) + ["物理学报全库", "verified"], kbart_row(**APS) + ["物理学报全库", "verified"]]
    result = import_title_list(repo, write(tmp_path, kbart_text(rows, header=header)), "journals")
    assert [w["code"] for w in result["warnings"]] == ["K016", "K013"]
    assert result["coverage_rows"] == 1
    assert show_title(repo, "wlxb")["kbart"]["extra"] == {"package_name": "物理学报全库"}


def test_case_of_coded_values_is_normalised(repo, tmp_path) -> None:
    row = kbart_row(**dict(APS, publication_type="Serial", coverage_depth="FullText", access_type="p"))
    import_title_list(repo, write(tmp_path, kbart_text([row])), "journals")
    shown = show_title(repo, "wlxb")
    assert shown["kbart"]["publication_type"] == "serial" and shown["kbart"]["access_type"] == "P"
    assert shown["expected"][0]["coverage_depth"] == "fulltext"


# --- a library's own file ----------------------------------------------------------------


def test_a_library_file_becomes_title_entitlements_and_replaces_the_last_one(any_repo, tmp_path) -> None:
    import_title_list(any_repo, write(tmp_path, kbart_text(PUBLISHER_ROWS)), "journals")
    add_library(any_repo, "PKU", "北京大学图书馆")
    unknown = dict(APS, print_identifier="0031-9007", title_id="prl", publication_title="Physical Review Letters")
    rows = [kbart_row(**dict(APS, title_id=""), date_first_issue_online="2015", date_last_issue_online="2018"),
            kbart_row(**dict(CPB, title_id=""), date_first_issue_online="2010", num_first_vol_online="19"),
            kbart_row(**unknown)]
    result = import_library_file(any_repo, write(tmp_path, kbart_text(rows), "pku.tsv"), "PKU", created_by="test")
    assert (result["added"], result["removed"], result["skipped_rows"]) == (2, 0, 1)
    assert [w["code"] for w in result["warnings"]] == ["K014"]
    with any_repo.catalog.session() as s:
        ents = {(e.title.title, e.first_date, e.last_date, e.first_volume) for e in s.scalars(select(TitleEntitlement))}
    assert ents == {("物理学报", "2015", "2018", ""), ("Chinese Physics B", "2010", "", "19")}
    # the library's next file replaces the last one
    result = import_library_file(any_repo, write(tmp_path, kbart_text(rows[:1]), "pku2.tsv"), "PKU")
    assert (result["added"], result["removed"], result["unchanged"]) == (0, 1, 1)


def test_a_bad_library_file_changes_nothing(repo, tmp_path) -> None:
    import_title_list(repo, write(tmp_path, kbart_text(PUBLISHER_ROWS)), "journals")
    add_library(repo, "PKU", "北京大学图书馆")
    import_library_file(repo, write(tmp_path, kbart_text([kbart_row(**APS)]), "pku.tsv"), "PKU")
    bad = [kbart_row(**CPB), kbart_row(**dict(APS, date_first_issue_online="2019-1"))]
    with pytest.raises(ImportRejected) as caught:
        import_library_file(repo, write(tmp_path, kbart_text(bad), "bad.tsv"), "PKU")
    assert [(f.code, f.params["line"]) for f in caught.value.findings] == [("K007", 3)]
    with repo.catalog.session() as s:
        assert [e.title.title for e in s.scalars(select(TitleEntitlement))] == ["物理学报"]


# --- export and round trips ----------------------------------------------------------------


def parse_export(text: str) -> list[dict[str, str]]:
    lines = text.split("\n")
    assert lines[-1] == "" and all(line.count("\t") == len(kbart.HEADER) - 1 for line in lines[:-1])
    header = lines[0].split("\t")
    assert tuple(header[:25]) == tuple(KBART_HEADER) and header[25:] == list(kbart.EXTRA_WRITTEN)
    return [dict(zip(header, line.split("\t"))) for line in lines[1:-1]]


def test_round_trip_of_a_publisher_list(any_repo, tmp_path) -> None:
    import_title_list(any_repo, write(tmp_path, kbart_text(PUBLISHER_ROWS)), "journals")
    out = io.StringIO()
    assert export(any_repo, out, collection_key="journals", expected=True)["rows"] == 4
    exported = write(tmp_path, out.getvalue(), "exported.tsv")
    add_collection(any_repo, "journals2", "第二库")
    result = import_title_list(any_repo, exported, "journals2")
    assert result["warnings"] == []
    assert holdings(any_repo, "journals2") == holdings(any_repo, "journals")
    again = io.StringIO()
    export(any_repo, again, collection_key="journals2", expected=True)
    assert again.getvalue() == out.getvalue()


def test_round_trip_of_preserved_holdings(repo, tmp_path) -> None:
    import_title_list(repo, write(tmp_path, kbart_text(PUBLISHER_ROWS)), "journals")
    aps_id = show_title(repo, "wlxb")["id"]
    package = add_package(repo)
    add_items(repo, package, aps_id, [(2015, "64", "1"), (2015, "64", "2"), (2016, "65", "1"), (2019, "68", "3")])
    out = io.StringIO()
    export(repo, out, collection_key="journals")
    rows = parse_export(out.getvalue())
    aps_rows = [r for r in rows if r["title_id"] == "wlxb"]
    assert [(r["date_first_issue_online"], r["num_first_vol_online"], r["num_first_issue_online"],
             r["date_last_issue_online"], r["num_last_vol_online"], r["num_last_issue_online"]) for r in aps_rows] == [
        ("2015-01-01", "64", "1", "2016-01-01", "65", "1"), ("2019-03-01", "68", "3", "2019-03-01", "68", "3")]
    assert {r["preserve_verification"] for r in aps_rows} == {"verified"}
    assert [r["preserve_cn"] for r in aps_rows] == ["", ""] and aps_rows[0]["publication_title"] == "物理学报"
    # nothing preserved of the other titles: no rows for them
    assert {r["title_id"] for r in rows} == {"wlxb"}
    add_collection(repo, "mirror", "镜像")
    import_title_list(repo, write(tmp_path, out.getvalue(), "preserved.tsv"), "mirror")
    again = io.StringIO()
    export(repo, again, collection_key="mirror", expected=True)
    mirrored = parse_export(again.getvalue())
    strip = lambda rs: [{k: v for k, v in r.items() if not k.startswith("preserve_verif")
                         and k != "preserve_last_verified"} for r in rs]  # noqa: E731
    assert strip(mirrored) == strip(rows)


def test_export_writes_tabs_and_newlines_from_metadata_as_spaces(repo) -> None:
    assert kbart.tsv_field("物理\t学报\r\n第68卷") == "物理 学报 第68卷"
