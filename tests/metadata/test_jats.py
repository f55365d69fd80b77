"""JATS at ingest: items, their files and their journal in the catalog; every bad input a warning, never a loss."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from preservation.catalog.library_models import Item, ItemFile, Title, TitleIdentifier
from preservation.catalog.models import Package
from preservation.ingest import ingest
from tests.fixtures import make_repo

from .samples import jats, jats_delivery, write


def _items(repo, package_id: str) -> list[Item]:
    with repo.catalog.session() as s:
        items = s.scalars(select(Item).where(Item.package_id == package_id).order_by(Item.id)).all()
        for item in items:
            _ = item.files, item.title and item.title.identifiers
        return items


def _codes(result) -> list[str]:
    return sorted(w["code"] for w in result.get("warnings", []))


def _md(result) -> list[str]:
    return [c for c in _codes(result) if c.startswith("MD")]


def test_articles_become_items_linked_to_their_files_and_journal(repo, tmp_path):
    root = tmp_path / "delivery"
    dois = jats_delivery(root, 3)
    result = ingest(repo, root, "journals")
    assert result["state"] == "preserved" and _md(result) == []
    assert result["content"]["metadata"] == {"items": 3, "item_files": 6, "titles_created": 1,
                                             "sources": {"jats": 3}}
    items = _items(repo, result["package_id"])
    assert [i.doi for i in items] == dois
    first = items[0]
    assert first.item_title == "拓扑绝缘体的表面态（1）" and first.authors == "王, 小明; 李, 华"
    assert (first.kind, first.language, first.year, first.published) == ("article", "zh", 2019, "2019-03-05")
    assert (first.volume, first.issue, first.first_page, first.last_page) == ("68", "1", "100", "109")
    assert first.source_format == "jats" and first.metadata_path == "data/期刊/物理学报/第01篇.xml"
    assert [(f.path, f.role) for f in first.files] == [("data/期刊/物理学报/第01篇.xml", "metadata"),
                                                      ("data/期刊/物理学报/第01篇.pdf", "fulltext")]
    assert all(f.package_id == result["package_id"] for f in first.files)
    title = first.title
    assert (title.kind, title.title, title.title_english, title.publisher) == (
        "journal", "物理学报", "Acta Physica Sinica", "中国物理学会")
    assert [(i.scheme, i.value) for i in title.identifiers] == [("issn_print", "1000-3290")]
    assert {i.title_id for i in items} == {title.id}


def test_a_second_delivery_of_the_journal_links_to_the_same_title(repo, tmp_path):
    jats_delivery(tmp_path / "one", 2)
    jats_delivery(tmp_path / "two", 2, first=3)
    ingest(repo, tmp_path / "one", "journals")
    second = ingest(repo, tmp_path / "two", "journals")
    assert second["content"]["metadata"]["titles_created"] == 0
    with repo.catalog.session() as s:
        assert s.scalar(select(func.count()).select_from(Title)) == 1
        assert s.scalar(select(func.count(func.distinct(Item.title_id)))) == 1


def test_a_doi_claimed_by_two_packages_keeps_its_first_item(repo, tmp_path):
    jats_delivery(tmp_path / "one", 2)
    jats_delivery(tmp_path / "again", 2)
    first = ingest(repo, tmp_path / "one", "journals")
    second = ingest(repo, tmp_path / "again", "journals")
    assert second["state"] == "preserved"
    taken = [w for w in second["warnings"] if w["code"] == "MD011"]
    assert len(taken) == 2 and taken[0]["params"]["package_id"] == first["package_id"]
    assert [i.doi for i in _items(repo, second["package_id"])] == [None, None]  # stored, without the DOI
    assert all(i.doi for i in _items(repo, first["package_id"]))


def test_a_doi_twice_in_one_delivery(repo, tmp_path):
    root = tmp_path / "delivery"
    write(root, "a.xml", jats())
    write(root, "b.xml", jats())
    result = ingest(repo, root, "journals")
    assert _md(result) == ["MD011"]
    assert sorted(i.doi or "" for i in _items(repo, result["package_id"])) == ["", "10.7498/aps.68.20191234"]


def test_files_named_by_the_article(repo, tmp_path):
    root = tmp_path / "delivery"
    article = ('<article-id pub-id-type="doi">10.7498/aps.68.20191234</article-id><title-group><article-title>'
               "输运</article-title></title-group>"
               '<self-uri content-type="pdf" xlink:href="pdf/全文.pdf"/><self-uri xlink:href="https://example.org/x"/>'
               '<self-uri xlink:href="absent.pdf"/><self-uri xlink:href="../../../../etc/passwd"/>')
    body = ('<sec><p>见<supplementary-material xlink:href="supp/data%201.csv"/></p></sec>'
            '<p><inline-supplementary-material xlink:href="/etc/shadow"/></p>')
    write(root, "articles/a1.xml", jats(article=article, body=body))
    write(root, "articles/pdf/全文.pdf", b"%PDF-1.4 full text")
    write(root, "articles/supp/data 1.csv", "x,y\n")
    write(root, "articles/a1.pdf", b"%PDF-1.4 the same name")
    result = ingest(repo, root, "journals")
    assert result["state"] == "preserved"
    assert _md(result) == ["MD012", "MD013", "MD013"]
    missing = next(w for w in result["warnings"] if w["code"] == "MD012")
    assert missing["params"]["file"] == "data/articles/absent.pdf" and missing["path"] == "data/articles/a1.xml"
    [item] = _items(repo, result["package_id"])
    assert [(f.path, f.role) for f in item.files] == [
        ("data/articles/a1.xml", "metadata"), ("data/articles/pdf/全文.pdf", "fulltext"),
        ("data/articles/supp/data 1.csv", "supplementary"), ("data/articles/a1.pdf", "fulltext")]


def test_a_wrong_issn_check_digit_is_a_finding_and_the_journal_is_found_by_name(repo, tmp_path):
    root = tmp_path / "delivery"
    journal = ("<journal-title-group><journal-title>物理学报</journal-title></journal-title-group>"
               '<issn pub-type="ppub">1000-3291</issn>')
    write(root, "a.xml", jats(journal=journal))
    result = ingest(repo, root, "journals")
    assert result["state"] == "preserved" and _md(result) == ["MD007"]
    assert "check digit" in next(w for w in result["warnings"] if w["code"] == "MD007")["message"]
    [item] = _items(repo, result["package_id"])
    assert item.title.title == "物理学报" and item.title.identifiers == []


def test_a_malformed_doi_is_dropped(repo, tmp_path):
    root = tmp_path / "delivery"
    write(root, "a.xml", jats(article='<article-id pub-id-type="doi">11.1/x</article-id>'
                                      "<title-group><article-title>题</article-title></title-group>"))
    result = ingest(repo, root, "journals")
    assert _md(result) == ["MD009"]
    [item] = _items(repo, result["package_id"])
    assert item.doi is None and item.item_title == "题"


@pytest.mark.parametrize("xml, code", [
    (b"<article><front><journal-meta></article>", "MD001"),  # not well-formed
    (b"", "MD001"),  # empty
    ("<?xml version='1.0' encoding='UTF-8'?><文章>内容</文章>".encode(), "MD003"),  # an unknown vocabulary
    (b"<article><front><article-meta><article-id pub-id-type='doi'>10.1/x\x01</article-id>", "MD001"),
])
def test_bad_xml_is_a_finding_and_the_delivery_is_preserved_as_bytes(repo, tmp_path, xml, code):
    root = tmp_path / "delivery"
    write(root, "bad.xml", xml)
    write(root, "good.xml", jats())
    result = ingest(repo, root, "journals")
    assert result["state"] == "preserved" and result["files"] == 2
    assert _md(result) == [code]
    assert next(w for w in result["warnings"] if w["code"] == code)["path"] == "data/bad.xml"
    assert [i.metadata_path for i in _items(repo, result["package_id"])] == ["data/good.xml"]


def test_external_entities_are_never_fetched(repo, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT", encoding="utf-8")
    root = tmp_path / "delivery"
    doctype = f'<!DOCTYPE article [<!ENTITY xxe SYSTEM "{secret.as_uri()}">]>'
    article = ('<article-id pub-id-type="doi">10.7498/aps.68.20191234</article-id>'
               "<title-group><article-title>&xxe;</article-title></title-group>")
    write(root, "xxe.xml", jats(article=article, doctype=doctype))
    result = ingest(repo, root, "journals")
    assert result["state"] == "preserved" and _md(result) == ["MD002"]
    assert _items(repo, result["package_id"]) == []


def test_an_external_dtd_subset_is_never_opened(repo, tmp_path):
    """A DOCTYPE's system identifier is never opened: not a named pipe (which hung the parser for good),
    not a device (whose bytes made a sound article "not well-formed"), not a file on the disk."""
    fifo = tmp_path / "subset.fifo"
    os.mkfifo(fifo)
    opened, stop = [], threading.Event()

    def watch() -> None:  # a reader of the pipe lets a writer open it: then it was opened, and is let go
        while not stop.is_set():
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # ENXIO: nobody reads it
                stop.wait(0.005)
                continue
            opened.append(True)
            os.close(fd)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    dtd = tmp_path / "declares.dtd"
    dtd.write_text('<!ENTITY % broken "', encoding="utf-8")  # a parameter entity never closed: an error if read
    root = tmp_path / "delivery"
    for i, system in enumerate([str(fifo), "/dev/zero", dtd.as_uri(), str(dtd)]):
        doi = f"10.7498/aps.68.2019000{i}"
        write(root, f"a{i}.xml", jats(doctype=f'<!DOCTYPE article SYSTEM "{system}">',
                                      article=f'<article-id pub-id-type="doi">{doi}</article-id>'))
    try:
        result = ingest(repo, root, "journals")
    finally:
        stop.set()
        watcher.join()
    assert opened == []
    assert result["state"] == "preserved" and _md(result) == []
    assert [i.doi for i in _items(repo, result["package_id"])] == [f"10.7498/aps.68.2019000{i}" for i in range(4)]


def test_billion_laughs_is_refused_without_expanding(repo, tmp_path):
    root = tmp_path / "delivery"
    entities = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10))
    article = "<title-group><article-title>&lol9;</article-title></title-group>"
    write(root, "lol.xml", jats(article=article, doctype=f"<!DOCTYPE article [{entities}]>"))
    result = ingest(repo, root, "journals")
    assert result["state"] == "preserved" and _md(result) == ["MD002"]
    assert _items(repo, result["package_id"]) == []


def test_an_entity_of_an_unloaded_dtd_is_dropped_from_the_text(repo, tmp_path):
    root = tmp_path / "delivery"
    doctype = '<!DOCTYPE article PUBLIC "-//NLM//DTD JATS//EN" "http://jats.nlm.nih.gov/never-fetched.dtd">'
    article = "<title-group><article-title>激子 &mdash; 研究</article-title></title-group>"
    write(root, "a.xml", jats(article=article, doctype=doctype))
    result = ingest(repo, root, "journals")
    [item] = _items(repo, result["package_id"])
    assert item.item_title == "激子 研究"


def test_huge_and_out_of_range_values_are_bounded(repo, tmp_path):
    root = tmp_path / "delivery"
    article = ('<article-id pub-id-type="doi">10.7498/aps.68.20191234</article-id>'
               f"<title-group><article-title>{'长' * 50_000}</article-title></title-group>"
               '<contrib-group>' + '<contrib><string-name>某人</string-name></contrib>' * 150 + "</contrib-group>"
               '<pub-date pub-type="ppub"><year>99999</year></pub-date>'
               f"<volume>0</volume><issue>{'9' * 40}</issue><fpage>{'1' * 5}</fpage>")
    write(root, "a.xml", jats(article=article))
    result = ingest(repo, root, "journals")
    assert result["state"] == "preserved"
    # the title, the authors and the issue are cut; the year, the volume 0 and the 40-digit issue are dropped
    assert _md(result) == ["MD005", "MD005", "MD005", "MD006", "MD006", "MD006"]
    [item] = _items(repo, result["package_id"])
    assert item.item_title == "长" * 2000 and len(item.authors.split("; ")) == 100
    assert (item.year, item.published, item.volume, item.issue, item.first_page) == (None, "", "", "", "11111")


def test_a_bad_month_keeps_the_year(repo, tmp_path):
    root = tmp_path / "delivery"
    write(root, "a.xml", jats(article='<article-id pub-id-type="doi">10.7498/aps.68.20191234</article-id>'
                                      '<pub-date><year>2019</year><month>13</month></pub-date>'))
    result = ingest(repo, root, "journals")
    assert _md(result) == ["MD006"]
    [item] = _items(repo, result["package_id"])
    assert (item.year, item.published) == (2019, "2019")


def test_no_analysis_no_items(repo, tmp_path):
    jats_delivery(tmp_path / "delivery", 2)
    result = ingest(repo, tmp_path / "delivery", "journals", analysers=[])
    assert "content" not in result and _items(repo, result["package_id"]) == []


def test_a_package_and_its_items_go_together(repo, tmp_path, monkeypatch):
    """An ingest that fails after extraction leaves neither package nor items (one transaction)."""
    jats_delivery(tmp_path / "delivery", 2)
    from preservation import events

    def broken(*args, **kwargs):
        raise RuntimeError("the catalog broke")

    monkeypatch.setattr(events, "record_event", broken)
    with pytest.raises(RuntimeError):
        ingest(repo, tmp_path / "delivery", "journals")
    with repo.catalog.session() as s:
        assert s.scalar(select(func.count()).select_from(Item)) == 0
        assert s.scalar(select(func.count()).select_from(ItemFile)) == 0
        assert s.scalar(select(func.count()).select_from(Title)) == 0
        assert s.scalar(select(func.count()).select_from(Package)) == 0


def test_on_sqlite_and_postgresql(catalog_url, tmp_path):
    repo = make_repo(tmp_path / "home", catalog_url)
    try:
        dois = jats_delivery(tmp_path / "one", 3)
        jats_delivery(tmp_path / "two", 1)
        first = ingest(repo, tmp_path / "one", "journals", replicate=False)
        second = ingest(repo, tmp_path / "two", "journals", replicate=False)
        assert _md(second) == ["MD011"]
        assert [i.doi for i in _items(repo, first["package_id"])] == dois
        with repo.catalog.session() as s:
            assert s.scalar(select(func.count()).select_from(ItemFile)) == 8
            assert s.scalars(select(TitleIdentifier.value)).all() == ["1000-3290"]
    finally:
        repo.close()


def test_an_existing_title_is_found_by_its_issn_print_or_online(repo, tmp_path):
    """A title a KBART list made (its ISSN as online) holds the articles whose JATS calls the ISSN print."""
    from preservation.catalog.models import Collection

    with repo.catalog.session() as s:
        collection = s.scalars(select(Collection).where(Collection.key == "journals")).one()
        title = Title(collection_id=collection.id, kind="journal", title="Acta Physica Sinica", kbart={},
                      identifiers=[TitleIdentifier(scheme="issn_online", value="1000-3290")])
        named = Title(collection_id=collection.id, kind="journal", title="中国物理", kbart={})
        s.add_all([title, named])
        s.commit()
        title_id, named_id = title.id, named.id
    root = tmp_path / "delivery"
    jats_delivery(root, 2)
    journal = ('<journal-title-group><journal-title>中国物理</journal-title></journal-title-group>'
               '<issn pub-type="epub">1009-1963</issn>')
    write(root, "other.xml", jats(journal=journal))
    result = ingest(repo, root, "journals")
    assert result["content"]["metadata"]["titles_created"] == 0
    assert sorted(i.title_id for i in _items(repo, result["package_id"])) == [title_id, title_id, named_id]
    with repo.catalog.session() as s:  # the title found by its name gains the ISSN the metadata gives
        assert [(i.scheme, i.value) for i in s.get(Title, named_id).identifiers] == [("issn_online", "1009-1963")]


def test_the_reader_takes_the_first_of_each_field_where_the_jats_paths_put_it():
    """Each field is the first element at its JATS path in document order, across repeated groups; elements
    of another namespace, editors, and a later DOI, title, volume or year are not taken."""
    from preservation.identifiers import ID_ISSN_ONLINE, ID_ISSN_PRINT
    from preservation.metadata.parsing import READERS, TAGS
    from preservation.metadata.xmlstream import XmlObserver

    journal = ('<x:journal-title-group xmlns:x="urn:example"><journal-title>别的刊</journal-title>'
               '<trans-title-group xml:lang="en"><trans-title>Other</trans-title></trans-title-group>'
               '</x:journal-title-group><x:issn xmlns:x="urn:example">0000-0019</x:issn>'
               '<x:publisher xmlns:x="urn:example"><publisher-name>别的出版社</publisher-name></x:publisher>'
               '<journal-title-group><abbrev-journal-title>Acta Phys. Sin.</abbrev-journal-title>'
               '<trans-title-group xml:lang="en"/></journal-title-group>'
               '<journal-title-group><journal-title>物理学报</journal-title><journal-title>第二个</journal-title>'
               '<trans-title-group xml:lang="fr"><trans-title>Acta (fr)</trans-title></trans-title-group>'
               '<trans-title-group xml:lang="en-GB"><trans-title>Acta Physica Sinica</trans-title>'
               '</trans-title-group></journal-title-group>'
               '<issn pub-type="epub">2096-7276</issn><publisher/>'
               '<publisher><publisher-name>中国物理学会</publisher-name></publisher><issn>1000-3290</issn>')
    article = ('<article-id pub-id-type="publisher-id">aps-1</article-id>'
               '<article-id pub-id-type="doi">10.7498/aps.68.20191234</article-id>'
               '<article-id pub-id-type="doi">10.7498/aps.68.20199999</article-id>'
               '<title-group><subtitle>副标题</subtitle></title-group>'
               '<title-group><article-title>真的标题</article-title></title-group>'
               '<title-group><article-title>后来的标题</article-title></title-group>'
               '<contrib-group><contrib contrib-type="editor"><name><surname>编</surname></name></contrib>'
               '<contrib><string-name>张三</string-name></contrib></contrib-group>'
               '<contrib-group><contrib contrib-type="author"><name-alternatives><name><surname>李</surname>'
               '<given-names>华</given-names></name></name-alternatives></contrib>'
               '<contrib><collab>课题组</collab></contrib></contrib-group>'
               '<pub-date pub-type="epub"><year>2018</year></pub-date>'
               '<pub-date pub-type="ppub"><year>2019</year><month>7</month><day>5</day><year>2000</year></pub-date>'
               '<x:volume xmlns:x="urn:example">5</x:volume><volume>68</volume><volume>99</volume>'
               '<issue>14</issue><fpage>140301</fpage><lpage>140309</lpage><fpage>1</fpage>')
    found, notes = [], []
    observer = XmlObserver("data/a/1.xml", READERS, TAGS, found.extend, lambda _path, n: notes.extend(n))
    data = jats(journal=journal, article=article).encode()
    observer.feed(data)
    observer.close(len(data))
    assert notes == [] and len(found) == 1
    r = found[0]
    assert (r.title, r.title_english, r.publisher) == ("物理学报", "Acta Physica Sinica", "中国物理学会")
    assert r.identifiers == [(ID_ISSN_ONLINE, "2096-7276"), (ID_ISSN_PRINT, "1000-3290")]
    assert (r.doi, r.item_title, r.authors) == ("10.7498/aps.68.20191234", "真的标题", ["张三", "李, 华", "课题组"])
    assert (r.year, r.published, r.volume, r.issue, r.first_page, r.last_page) == (
        2019, "2019-07-05", "68", "14", "140301", "140309")
