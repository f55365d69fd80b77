"""Whose file it is: one item per file of a package, a file beside an XML of its name is that article's (MD017)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from preservation.catalog.library_models import Item, ItemFile
from preservation.ingest import ingest
from preservation.metadata import items as items_module

from .samples import jats, write


def _article(doi: str, title: str, links: str = "", body: str = "") -> str:
    article = (f'<article-id pub-id-type="doi">{doi}</article-id><title-group><article-title>{title}'
               f"</article-title></title-group><volume>68</volume><issue>3</issue>{links}")
    return jats(article=article, body=body)


def _files(repo, package_id: str) -> dict[str, list[tuple[str, str]]]:
    with repo.catalog.session() as s:
        out: dict[str, list[tuple[str, str]]] = {}
        for doi, path, role in s.execute(
                select(Item.doi, ItemFile.path, ItemFile.role).join(ItemFile, ItemFile.item_id == Item.id)
                .where(Item.package_id == package_id).order_by(ItemFile.id)):
            out.setdefault(doi, []).append((path, role))
        return out


def _claimed(result) -> list[dict]:
    return [w for w in result.get("warnings", []) if w["code"] == "MD017"]


A, B, C = "10.7498/aps.68.20190001", "10.7498/aps.68.20190002", "10.7498/aps.68.20190003"


@pytest.mark.parametrize("order", ["a_first", "b_first"])
def test_an_article_naming_anothers_pdf_loses_the_claim_whatever_the_order(repo, tmp_path, order):
    root = tmp_path / "delivery"
    # A's self-uri names B's PDF; B names nothing (its PDF is found by its name beside it)
    a_name, b_name = ("a", "b") if order == "a_first" else ("z", "b")
    write(root, f"issue/{a_name}.xml", _article(A, "甲", f'<self-uri xlink:href="{b_name}.pdf"/>'))
    write(root, f"issue/{b_name}.xml", _article(B, "乙"))
    write(root, f"issue/{b_name}.pdf", b"%PDF-1.4 B")
    result = ingest(repo, root, "journals")
    assert result["state"] == "preserved"
    files = _files(repo, result["package_id"])
    assert files[A] == [(f"data/issue/{a_name}.xml", "metadata")]
    assert files[B] == [(f"data/issue/{b_name}.xml", "metadata"), (f"data/issue/{b_name}.pdf", "fulltext")]
    [claim] = _claimed(result)
    assert claim["path"] == f"data/issue/{a_name}.xml" and claim["params"]["file"] == f"data/issue/{b_name}.pdf"
    assert claim["severity"] == "warning"


def test_a_supplement_pointing_at_another_articles_xml_or_pdf_in_another_folder(repo, tmp_path):
    root = tmp_path / "delivery"
    body = ('<p><supplementary-material xlink:href="../b/b.pdf"/>'
            '<supplementary-material xlink:href="../b/b.xml"/>'
            '<supplementary-material xlink:href="../shared/data.csv"/></p>')
    write(root, "a/a.xml", _article(A, "甲", body=body))
    write(root, "b/b.xml", _article(B, "乙"))
    write(root, "b/b.pdf", b"%PDF-1.4 B")
    write(root, "shared/data.csv", "x\n1\n")
    result = ingest(repo, root, "journals")
    files = _files(repo, result["package_id"])
    # a file outside the XML's folder that no other article owns by name is still A's (resolved once, in the payload)
    assert files[A] == [("data/a/a.xml", "metadata"), ("data/shared/data.csv", "supplementary")]
    assert files[B] == [("data/b/b.xml", "metadata"), ("data/b/b.pdf", "fulltext")]
    assert sorted(w["params"]["file"] for w in _claimed(result)) == ["data/b/b.pdf", "data/b/b.xml"]


def test_a_file_named_by_two_articles_is_the_first_ones(repo, tmp_path):
    root = tmp_path / "delivery"
    write(root, "issue/a.xml", _article(A, "甲", '<self-uri xlink:href="shared/figure.tif"/>'))
    write(root, "issue/c.xml", _article(C, "丙", '<self-uri xlink:href="shared/figure.tif"/>'))
    write(root, "issue/shared/figure.tif", b"II*\x00 tiff")
    result = ingest(repo, root, "journals")
    files = _files(repo, result["package_id"])
    holders = [doi for doi, own in files.items() if ("data/issue/shared/figure.tif", "fulltext") in own]
    assert len(holders) == 1
    [claim] = _claimed(result)
    loser = C if holders == [A] else A
    assert claim["path"] == f"data/issue/{'c' if loser == C else 'a'}.xml"
    with repo.catalog.session() as s:
        paths = s.scalars(select(ItemFile.path).where(ItemFile.package_id == result["package_id"],
                                                      ItemFile.role != "metadata")).all()
    assert len(paths) == len(set(paths))  # no file of the package belongs to two items


def test_claims_of_an_earlier_batch_are_read_back(repo, tmp_path, monkeypatch):
    """The rule holds across batches: what an earlier batch took is found in item_files, not in memory."""
    monkeypatch.setattr(items_module, "BATCH", 1)
    root = tmp_path / "delivery"
    write(root, "issue/a.xml", _article(A, "甲", '<self-uri xlink:href="shared/figure.tif"/>'))
    write(root, "issue/c.xml", _article(C, "丙", '<self-uri xlink:href="shared/figure.tif"/>'))
    write(root, "issue/shared/figure.tif", b"II*\x00 tiff")
    result = ingest(repo, root, "journals")
    files = _files(repo, result["package_id"])
    assert sum(("data/issue/shared/figure.tif", "fulltext") in own for own in files.values()) == 1
    assert len(_claimed(result)) == 1


def test_one_onix_file_stays_the_metadata_of_each_of_its_items(repo, tmp_path):
    from .samples import onix, onix_product

    root = tmp_path / "delivery"
    write(root, "books/onix.xml", onix(onix_product("r1", "9787030000001", "量子力学"),
                                       onix_product("r2", "9787030000018", "统计物理")))
    result = ingest(repo, root, "journals")
    assert _claimed(result) == []
    with repo.catalog.session() as s:
        rows = s.execute(select(ItemFile.item_id, ItemFile.path, ItemFile.role)
                         .where(ItemFile.package_id == result["package_id"])).all()
    assert sorted((path, role) for _, path, role in rows) == [("data/books/onix.xml", "metadata")] * 2
    assert len({item_id for item_id, _, _ in rows}) == 2
