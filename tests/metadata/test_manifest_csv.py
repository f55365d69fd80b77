"""items.csv: the manifest of deliveries without XML metadata."""

from __future__ import annotations

from sqlalchemy import select

from preservation.catalog.library_models import Item
from preservation.ingest import ingest

from .samples import write

HEADER = "path,files,doi,title,authors,journal,issn,volume,issue,year,published,language,first_page\n"


def _items(repo, package_id: str) -> list[Item]:
    with repo.catalog.session() as s:
        items = s.scalars(select(Item).where(Item.package_id == package_id).order_by(Item.id)).all()
        for item in items:
            _ = item.files, item.title and item.title.identifiers
        return items


def _md(result) -> list[str]:
    return sorted(w["code"] for w in result.get("warnings", []) if w["code"].startswith("MD"))


def test_rows_become_items(repo, tmp_path):
    root = tmp_path / "delivery"
    write(root, "items.csv", "\ufeff" + HEADER +
          '期刊/a1.pdf,期刊/a1-data.zip;期刊/a1-fig.png,10.7498/aps.68.20190001,"二维材料中的激子, 第一部分",'
          '"张, 三; 李, 四",物理学报,1000-3290,68,1,2019,2019-01-05,zh,1\r\n'
          '期刊/a2.pdf,,doi:10.7498/APS.68.20190002,"多行\n标题",,物理学报,10003290,68,2,,2019-02,,\n')
    for name in ("a1.pdf", "a1-data.zip", "a1-fig.png", "a2.pdf"):
        write(root, f"期刊/{name}", b"x")
    result = ingest(repo, root, "journals")
    assert result["state"] == "preserved" and _md(result) == []
    one, two = _items(repo, result["package_id"])
    assert (one.doi, one.item_title, one.authors, one.year, one.published, one.first_page) == (
        "10.7498/aps.68.20190001", "二维材料中的激子, 第一部分", "张, 三; 李, 四", 2019, "2019-01-05", "1")
    assert [(f.path, f.role) for f in one.files] == [
        ("data/期刊/a1.pdf", "fulltext"), ("data/期刊/a1-data.zip", "supplementary"),
        ("data/期刊/a1-fig.png", "supplementary")]
    assert (two.doi, two.item_title, two.year, two.published) == ("10.7498/aps.68.20190002", "多行 标题", 2019, "2019-02")
    assert one.title_id == two.title_id and one.title.title == "物理学报"
    assert [(i.scheme, i.value) for i in one.title.identifiers] == [("issn_print", "1000-3290")]


def test_bad_rows_are_findings_with_their_lines(repo, tmp_path):
    root = tmp_path / "delivery"
    write(root, "a.pdf", b"x")
    write(root, "items.csv", "path,doi,title,year,shelf\n"
          "a.pdf,10.1234/x,好,2019,A1\n"  # line 2: fine, but `shelf` is unknown (MD016)
          "a.pdf,10.1234/y\n"  # line 3: two fields of five (MD015)
          "a.pdf,,,1999,\n"  # line 4: no title, no DOI (MD014)
          "../../etc/passwd,10.1234/z,外,2019,\n"  # line 5: outside the delivery (MD013), then no file (MD015)
          "missing.pdf,10.1234/w,缺,0219,\n"  # line 6: a named file that is absent (MD012), a bad year (MD006)
          "a.pdf,,控制\x01字符,2019,\n")  # line 7: what XML cannot carry (MD004) -> no title -> MD014
    result = ingest(repo, root, "journals")
    assert result["state"] == "preserved"
    assert _md(result) == ["MD004", "MD006", "MD012", "MD013", "MD014", "MD014", "MD015", "MD015", "MD016"]
    lines = sorted(w["params"].get("line", 0) for w in result["warnings"] if w["code"] in ("MD015", "MD014"))
    assert lines == [3, 4, 5, 7]
    assert sorted(i.doi for i in _items(repo, result["package_id"])) == ["10.1234/w", "10.1234/x"]


def test_a_manifest_that_is_not_utf8_or_has_no_path_column(repo, tmp_path):
    root = tmp_path / "one"
    write(root, "items.csv", "path,title\na.pdf,".encode() + "好".encode("gb18030") + b"\n")
    write(root, "a.pdf", b"x")
    assert _md(ingest(repo, root, "journals")) == ["MD015"]
    root = tmp_path / "two"
    write(root, "items.csv", "file,title\na.pdf,好\n")
    write(root, "a.pdf", b"x")
    result = ingest(repo, root, "journals")
    assert _md(result) == ["MD015", "MD016"] and _items(repo, result["package_id"]) == []


def test_only_the_manifest_at_the_root_is_read(repo, tmp_path):
    root = tmp_path / "delivery"
    write(root, "sub/items.csv", "path,title\na.pdf,好\n")
    write(root, "sub/a.pdf", b"x")
    result = ingest(repo, root, "journals")
    assert "content" in result and result["content"]["metadata"]["items"] == 0
