"""ONIX 3 books and Dublin Core records at ingest."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from preservation import identifiers as ids
from preservation.catalog.library_models import Item
from preservation.ingest import ingest

from .samples import oai_dc, onix, onix_product, write

ISBN = "9787030123459"
ISBN_B = "9787115123459"


def _items(repo, package_id: str) -> list[Item]:
    with repo.catalog.session() as s:
        items = s.scalars(select(Item).where(Item.package_id == package_id).order_by(Item.id)).all()
        for item in items:
            _ = item.files, item.title and item.title.identifiers
        return items


def _md(result) -> list[str]:
    return sorted(w["code"] for w in result.get("warnings", []) if w["code"].startswith("MD"))


@pytest.mark.parametrize("namespace", [True, False])
def test_onix_products_become_books(repo, tmp_path, namespace):
    root = tmp_path / "delivery"
    write(root, "books/onix.xml", onix(onix_product("ref-1", ISBN, "量子力学"),
                                       onix_product("ref-2", ISBN_B, "固体物理", form="ED", date="202104"),
                                       namespace=namespace))
    write(root, f"books/{ISBN}.pdf", b"%PDF-1.4 book")
    write(root, f"books/{ISBN_B}.epub", b"PK epub")
    result = ingest(repo, root, "journals")
    assert result["state"] == "preserved" and _md(result) == []
    first, second = _items(repo, result["package_id"])
    assert (first.kind, first.isbn, first.item_title, first.authors, first.language) == (
        "book", ISBN, "量子力学: 理论与实验", "钱, 学森", "chi")
    assert (first.year, first.published, first.source_format) == (2020, "2020-03-15", "onix")
    assert [(f.path, f.role) for f in first.files] == [("data/books/onix.xml", "metadata"),
                                                      (f"data/books/{ISBN}.pdf", "fulltext")]
    assert (first.title.kind, first.title.title, first.title.publisher) == ("book", "量子力学: 理论与实验", "科学出版社")
    assert [(i.scheme, i.value) for i in first.title.identifiers] == [("isbn_print", ISBN)]
    assert [(i.scheme, i.value) for i in second.title.identifiers] == [("isbn_online", ISBN_B)]  # ProductForm ED
    assert second.published == "2021-04" and second.files[1].path == f"data/books/{ISBN_B}.epub"


def test_onix_isbn10_and_bad_check_digit(repo, tmp_path):
    root = tmp_path / "delivery"
    isbn10 = onix_product("ref-10", "0306406152", "书一").replace("<ProductIDType>15<", "<ProductIDType>02<")
    write(root, "onix.xml", onix(isbn10, onix_product("ref-bad", "9787030123450", "书二"),
                                 onix_product("ref-empty", ISBN_B, "").replace("<Subtitle>理论与实验</Subtitle>", "")))
    result = ingest(repo, root, "journals")
    assert result["state"] == "preserved" and _md(result) == ["MD008", "MD014"]
    warnings = {w["code"]: w for w in result["warnings"]}
    assert warnings["MD014"]["params"]["record"] == "ref-empty"
    one, two = _items(repo, result["package_id"])
    assert one.isbn == "9780306406157" and two.isbn == "" and two.item_title == "书二: 理论与实验"


def test_a_huge_onix_message_is_read_product_by_product(repo, tmp_path):
    root = tmp_path / "delivery"
    isbns = [f"978703{n:06d}" + ids.isbn13_check_digit(f"978703{n:06d}") for n in range(300)]
    write(root, "onix.xml", onix(*(onix_product(f"ref-{n}", isbn, f"书 {n}") for n, isbn in enumerate(isbns))))
    result = ingest(repo, root, "journals")
    assert _md(result) == []
    assert result["content"]["metadata"] == {"items": 300, "item_files": 300, "titles_created": 300,
                                             "sources": {"onix": 300}}
    assert [i.isbn for i in _items(repo, result["package_id"])] == isbns


def test_dublin_core_article_with_journal(repo, tmp_path):
    root = tmp_path / "delivery"
    write(root, "dc/rec.xml", oai_dc(
        "<dc:title>等离子体中的湍流输运</dc:title>", "<dc:creator>赵, 一</dc:creator>", "<dc:creator>陈, 二</dc:creator>",
        "<dc:date>2018-11-02T00:00:00Z</dc:date>", "<dc:identifier>https://doi.org/10.7498/APS.67.20181234</dc:identifier>",
        "<dc:identifier>ISSN 1000-3290</dc:identifier>", "<dc:identifier>CN 11-1958/O4</dc:identifier>",
        "<dc:language>zh</dc:language>", "<dc:source>物理学报</dc:source>", "<dc:type>Text</dc:type>",
        "<dc:publisher>中国物理学会</dc:publisher>"))
    write(root, "dc/rec.pdf", b"%PDF-1.4")
    result = ingest(repo, root, "journals")
    assert _md(result) == []
    [item] = _items(repo, result["package_id"])
    assert (item.kind, item.doi, item.item_title, item.authors, item.year, item.published, item.language) == (
        "article", "10.7498/aps.67.20181234", "等离子体中的湍流输运", "赵, 一; 陈, 二", 2018, "2018-11-02", "zh")
    assert [(f.path, f.role) for f in item.files] == [("data/dc/rec.xml", "metadata"), ("data/dc/rec.pdf", "fulltext")]
    assert (item.title.kind, item.title.title) == ("journal", "物理学报")
    assert sorted((i.scheme, i.value) for i in item.title.identifiers) == [("cn", "11-1958/O4"),
                                                                          ("issn_print", "1000-3290")]


def test_dublin_core_records_in_a_wrapper(repo, tmp_path):
    """Simple DC, several records in one file: each is an item, none claims the PDF beside the file."""
    root = tmp_path / "delivery"
    records = "".join(f'<record><dc:title>书 {n}</dc:title><dc:type>book</dc:type>'
                      f"<dc:identifier>urn:isbn:{isbn}</dc:identifier><dc:date>20x9</dc:date></record>"
                      for n, isbn in ((1, ISBN), (2, ISBN_B)))
    write(root, "records.xml", f'<records xmlns:dc="http://purl.org/dc/elements/1.1/">{records}</records>')
    write(root, "records.pdf", b"%PDF-1.4")
    result = ingest(repo, root, "journals")
    assert _md(result) == ["MD006", "MD006"]  # the dates
    one, two = _items(repo, result["package_id"])
    assert (one.kind, one.isbn, one.item_title, one.year) == ("book", ISBN, "书 1", None)
    assert [f.role for f in one.files] == ["metadata"] and two.title.title == "书 2"
    assert [(i.scheme, i.value) for i in two.title.identifiers] == [("isbn_print", ISBN_B)]


def test_dublin_core_without_title_or_doi(repo, tmp_path):
    root = tmp_path / "delivery"
    write(root, "rec.xml", oai_dc("<dc:creator>无名</dc:creator>", "<dc:identifier>ISSN 1000-3291</dc:identifier>"))
    result = ingest(repo, root, "journals")
    assert _md(result) == ["MD007", "MD014"] and _items(repo, result["package_id"]) == []
