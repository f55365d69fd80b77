"""After the front matter a JATS file is not parsed but scanned for the supplements its body names."""

from __future__ import annotations

import pytest

from preservation.findings import FindingList
from preservation.metadata.analyser import MetadataAnalyser
from preservation.metadata.records import ItemRecord

from .samples import jats, refused_closes

PARAGRAPH = "<p>" + "正文段落。" * 200 + "</p>"


def _records(data: bytes, chunk: int) -> tuple[list[ItemRecord], list[str]]:
    analyser = MetadataAnalyser()
    observer = analyser.observer("data/a/article.xml", len(data))
    view = memoryview(data)
    for start in range(0, len(data), chunk):
        observer.feed(view[start:start + chunk])
    observer.close(len(data))
    findings = FindingList()
    analyser.finish("", findings)
    return list(analyser._spool), findings.codes()


@pytest.mark.parametrize("chunk", [97, 1000, 8191, 65536, 10**7])
def test_links_in_a_long_body_are_found_whatever_the_chunks(chunk):
    body = (PARAGRAPH * 20 + '<supplementary-material id="s1" xlink:href="supp/表&#x31;.xlsx"/>' + PARAGRAPH * 30
            + "<p><inline-supplementary-material xlink:href='supp/a&amp;b.csv'>数据</inline-supplementary-material>"
            "</p>" + PARAGRAPH * 5 + '<supplementary-material\n  xlink:href = "supp/last.zip"/>')
    data = jats(body=body).encode()
    assert len(data) > 150_000
    [record], found = _records(data, chunk)
    assert found == []
    links = [(path, role) for path, role, named in record.files if named]
    assert links == [("data/a/article.xml", "metadata"), ("data/a/supp/表1.xlsx", "supplementary"),
                     ("data/a/supp/a&b.csv", "supplementary"), ("data/a/supp/last.zip", "supplementary")]
    assert record.doi == "10.7498/aps.68.20191234" and record.item_title == "冷原子光晶格中的输运"


def test_a_body_that_breaks_after_the_front_still_yields_the_item():
    """Well-formedness of the body is format validation's business (FMV201); metadata needs the front."""
    data = jats(body=PARAGRAPH * 10 + "<p>unclosed").encode()
    [record], found = _records(data, 4096)
    assert record.doi == "10.7498/aps.68.20191234" and found == []


def _in_process(data: bytes, chunks: list[int]) -> tuple[list[ItemRecord], list[str]]:
    """``data`` read on this thread (as a parsing child does), fed in pieces of the sizes ``chunks`` (the last one
    repeated)."""
    analyser = MetadataAnalyser(in_process=True)
    observer = analyser.observer("data/a/article.xml", len(data))
    view, at = memoryview(data), 0
    for size in chunks[:-1]:
        observer.feed(view[at:at + size])
        at += size
    while at < len(data):
        observer.feed(view[at:at + chunks[-1]])
        at += chunks[-1]
    observer.close(len(data))
    findings = FindingList()
    analyser.finish("", findings)
    return list(analyser._spool), findings.codes()


def _front_end(data: bytes) -> int:
    return data.index(b"</article-meta></front>") + len(b"</article-meta>")


def _split_at_front_end(data: bytes) -> list[list[int]]:
    """Chunk sizes that cut the file at each byte of its ``</front>``, and before and after it, then 4 KiB."""
    at = _front_end(data)
    return [[at + k, 4096] for k in range(-1, len(b"</front>") + 1)]


@pytest.mark.parametrize("chunk", [97, 4096, 10**7])
def test_a_body_broken_right_after_the_front_still_yields_the_item(chunk):
    """The parser stops right after ``</front>``: a fault just after it, in the same few KiB, is never parsed either
    (with slices cut anywhere it was, and cost the item MD001)."""
    data = jats(body="<p>a</sec>" + '<supplementary-material xlink:href="s.zip"/>').encode()
    [record], found = _records(data, chunk)
    assert record.doi == "10.7498/aps.68.20191234" and found == []
    assert ("data/a/s.zip", "supplementary", True) in record.files


def test_a_front_end_tag_cut_between_two_chunks_is_found(monkeypatch):
    """However the chunks cut ``</front>``, the parser stops right after it: the document is ended without an error,
    and a fault just after it is never parsed."""
    refused = refused_closes(monkeypatch)
    data = jats(body="<p>a</sec>" + '<supplementary-material xlink:href="s.zip"/>' + PARAGRAPH).encode()
    for chunks in _split_at_front_end(data):
        [record], found = _in_process(data, chunks)
        assert (record.doi, found) == ("10.7498/aps.68.20191234", []), chunks
        assert ("data/a/s.zip", "supplementary", True) in record.files
    assert refused == []


@pytest.mark.parametrize("chunk", [97, 4096, 10**7])
@pytest.mark.parametrize("decoy", ["<!-- </front> -->", "<![CDATA[</front>]]>", "<?note </front>?>"])
def test_a_front_end_tag_in_a_comment_cdata_or_instruction_is_not_the_front_s_end(monkeypatch, chunk, decoy):
    """A slice cut after a ``</front>`` that ends no element is parsed as any other; the next one, even a few bytes
    on, is the front's end: the whole front is read and the document ended there, without an error."""
    refused = refused_closes(monkeypatch)
    article = ('<article-id pub-id-type="doi">10.7498/aps.68.20191234</article-id>'
               f"<title-group><article-title>冷原子{decoy}输运</article-title></title-group><volume>68</volume>")
    data = jats(article=article, body='<supplementary-material xlink:href="s.zip"/>' + PARAGRAPH).encode()
    [record], found = _in_process(data, [chunk])
    assert found == [] and record.volume == "68" and record.item_title.startswith("冷原子")
    assert ("data/a/s.zip", "supplementary", True) in record.files
    assert refused == []


@pytest.mark.parametrize("chunk", [97, 4096, 10**7])
@pytest.mark.parametrize("after", ["", "<!-- </front> -->", "<sec><front>x</front></sec>"])
def test_a_front_end_written_otherwise_is_parsed_past(monkeypatch, chunk, after):
    """A front that ends with ``</front >`` is not found by its bytes: the parser goes on past it as before (and
    past a ``</front>`` after it, in a comment or of a ``<front>`` in the body, where the root's end tag does not
    fit), and the document is ended early, with lxml's error."""
    refused = refused_closes(monkeypatch)
    body = after + '<supplementary-material xlink:href="s.zip"/>' + PARAGRAPH
    data = jats(body=body).encode().replace(b"</article-meta></front>", b"</article-meta></front >")
    [record], found = _in_process(data, [chunk])
    assert record.doi == "10.7498/aps.68.20191234" and found == []
    assert ("data/a/s.zip", "supplementary", True) in record.files
    assert len(refused) == 1


def test_a_utf16_file_is_parsed_to_its_end():
    body = PARAGRAPH * 10 + '<supplementary-material xlink:href="s.zip"/>'
    text = jats(body=body).replace('encoding="UTF-8"', 'encoding="UTF-16"')
    [record], found = _records(text.encode("utf-16"), 4096)
    assert ("data/a/s.zip", "supplementary", True) in record.files and found == []


def test_entities_in_a_utf16_file_are_refused_too(tmp_path):
    """The byte look for <!ENTITY misses UTF-16; the DTD lxml read is checked at the root."""
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET", encoding="utf-8")
    article = "<title-group><article-title>&xxe;</article-title></title-group>"
    text = jats(article=article, doctype=f'<!DOCTYPE article [<!ENTITY xxe SYSTEM "{secret.as_uri()}">]>')
    data = text.replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")
    records, found = _records(data, 4096)
    assert records == [] and found == ["MD002"]
    long = jats(article=article, doctype=f'<!DOCTYPE article [<!ENTITY xxe SYSTEM "{secret.as_uri()}">]>',
                body=PARAGRAPH * 10).replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")
    for chunks in ([97], [4096], [10**7]):  # refused once, at its root, not again at each slice after
        assert _in_process(long, chunks) == ([], ["MD002"])


@pytest.mark.parametrize("chunk", [97, 8192, 10**7])
def test_a_link_whose_element_ends_far_after_the_parser_stopped(chunk):
    """Its start tag was parsed with the front matter's slice, its end tag never is: read at the start."""
    body = ('<supplementary-material xlink:href="supp/long.zip"><caption><p>' + "说明" * 6000
            + "</p></caption></supplementary-material>" + PARAGRAPH * 3)
    [record], found = _records(jats(body=body).encode(), chunk)
    assert ("data/a/supp/long.zip", "supplementary", True) in record.files and found == []


@pytest.mark.parametrize("chunk", [7, 31, 97, 1000])
def test_a_link_cut_by_small_chunks_right_after_the_front(chunk):
    body = '<supplementary-material xlink:href="supp/first.zip"/>' + PARAGRAPH * 3
    for shift in range(0, chunk, max(chunk // 7, 1)):  # every cut of the start tag
        data = jats(front=" " * shift, body=body).encode()
        [record], found = _records(data, chunk)
        assert ("data/a/supp/first.zip", "supplementary", True) in record.files, shift


@pytest.mark.parametrize("href", [
    "aps-68-07000.pdf", "第01篇.pdf", "supp/数据 1.csv", "supp/data.v2.zip", "a?b.pdf", "../x.pdf", "./x.pdf",
    "a//b.pdf", "a/./b.pdf", "a/../../../b.pdf", "%E6%96%87.pdf", "http://example.org/x.pdf", "#fig1", "/etc/passwd",
    "a\\b.pdf", " spaced.pdf ", "", ".hidden", "dir/", "x" * 1100, "C:x.pdf",
])
def test_a_link_resolves_as_normpath_and_unquote_resolve_it(href):
    """The short way for plain links gives exactly what the general way gives (or refuses what it refuses)."""
    from preservation.metadata.records import LIMITS
    from preservation.metadata.xmlstream import _joined, resolve_href

    def general(metadata_path: str, href: str) -> str | None:
        joined = _joined(metadata_path, href.strip())
        if joined is not None and (not joined.startswith("data/") or len(joined) > LIMITS["href"]):
            raise ValueError("outside the payload")
        return joined

    for metadata_path in ("data/期刊/物理学报/2019/a.xml", "data/a.xml"):
        try:
            expected = general(metadata_path, href)
        except ValueError as e:
            with pytest.raises(ValueError, match=str(e)):
                resolve_href(metadata_path, href)
        else:
            assert resolve_href(metadata_path, href) == expected
