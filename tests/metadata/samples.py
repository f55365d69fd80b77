"""Metadata deliveries built by the tests: JATS, ONIX 3, Dublin Core and items.csv, with Chinese titles."""

from __future__ import annotations

import threading
from pathlib import Path
from xml.sax.saxutils import escape

from lxml import etree

from devtools.articles import jats_article, pdf_bytes

ONIX_NS = "http://ns.editeur.org/onix/3.0/reference"
AUTHORS = [("王", "小明"), ("李", "华")]


def write(root: Path, rel: str, data: bytes | str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def jats_delivery(root: Path, count: int = 3, *, year: int = 2019, first: int = 1) -> list[str]:
    """``count`` articles of 物理学报, each an XML naming its PDF by self-uri; their DOIs."""
    dois = []
    for n in range(first, first + count):
        doi = f"10.7498/aps.68.{year}{n:04d}"
        write(root, f"期刊/物理学报/第{n:02d}篇.xml",
              jats_article(doi, f"拓扑绝缘体的表面态（{n}）", AUTHORS, volume=68, issue=n, year=year, month=3,
                           pdf=f"第{n:02d}篇.pdf", body_bytes=3000, seed=n, first_page=100 * n))
        write(root, f"期刊/物理学报/第{n:02d}篇.pdf", pdf_bytes(f"article {n}", 5000, seed=n))
        dois.append(doi)
    return dois


def jats(front: str = "", *, journal: str = "", article: str = "", doctype: str = "", body: str = "",
         lang: str = "zh") -> str:
    """A JATS article from parts (the defaults make a valid one with DOI 10.7498/aps.68.20191234)."""
    journal = journal or ("<journal-title-group><journal-title>物理学报</journal-title></journal-title-group>"
                          '<issn pub-type="ppub">1000-3290</issn><issn pub-type="epub">2096-7276</issn>')
    article = article or ('<article-id pub-id-type="doi">10.7498/aps.68.20191234</article-id>'
                          "<title-group><article-title>冷原子光晶格中的输运</article-title></title-group>"
                          '<pub-date pub-type="ppub"><year>2019</year><month>7</month></pub-date>'
                          "<volume>68</volume><issue>14</issue><fpage>140301</fpage>")
    return (f'<?xml version="1.0" encoding="UTF-8"?>{doctype}<article xmlns:xlink="http://www.w3.org/1999/xlink" '
            f'xml:lang="{lang}"><front>{front}<journal-meta>{journal}</journal-meta><article-meta>{article}'
            f"</article-meta></front><body>{body}</body></article>")


def onix_product(reference: str, isbn: str, title: str, *, form: str = "BC", date: str = "20200315",
                 extra: str = "") -> str:
    return (f"<Product><RecordReference>{escape(reference)}</RecordReference><NotificationType>03</NotificationType>"
            f"<ProductIdentifier><ProductIDType>15</ProductIDType><IDValue>{isbn}</IDValue></ProductIdentifier>"
            f"<DescriptiveDetail><ProductComposition>00</ProductComposition><ProductForm>{form}</ProductForm>"
            f"<TitleDetail><TitleType>01</TitleType><TitleElement><TitleElementLevel>01</TitleElementLevel>"
            f"<TitleText>{escape(title)}</TitleText><Subtitle>理论与实验</Subtitle></TitleElement></TitleDetail>"
            f"<Contributor><SequenceNumber>1</SequenceNumber><ContributorRole>A01</ContributorRole>"
            f"<PersonNameInverted>钱, 学森</PersonNameInverted></Contributor>"
            f"<Contributor><SequenceNumber>2</SequenceNumber><ContributorRole>B01</ContributorRole>"
            f"<PersonName>编辑 甲</PersonName></Contributor>"
            f"<Language><LanguageRole>01</LanguageRole><LanguageCode>chi</LanguageCode></Language>"
            f"</DescriptiveDetail><PublishingDetail><Publisher><PublishingRole>01</PublishingRole>"
            f"<PublisherName>科学出版社</PublisherName></Publisher><PublishingDate><PublishingDateRole>01"
            f"</PublishingDateRole><Date>{date}</Date></PublishingDate></PublishingDetail>{extra}</Product>")


def onix(*products: str, namespace: bool = True) -> str:
    xmlns = f' xmlns="{ONIX_NS}"' if namespace else ""
    return (f'<?xml version="1.0" encoding="UTF-8"?><ONIXMessage release="3.0"{xmlns}><Header><Sender>'
            f"<SenderName>科学出版社</SenderName></Sender><SentDateTime>20200401</SentDateTime></Header>"
            f"{''.join(products)}</ONIXMessage>")


def oai_dc(*elements: str) -> str:
    return ('<?xml version="1.0" encoding="UTF-8"?><oai_dc:dc xmlns:oai_dc="http://www.openarchives.org/OAI/2.0/'
            'oai_dc/" xmlns:dc="http://purl.org/dc/elements/1.1/">' + "".join(elements) + "</oai_dc:dc>")


def refused_closes(monkeypatch) -> list[str]:
    """From now on, this process's metadata parsers (in process: not a parsing child's) are new ones that note each
    document lxml refused to end (an error built); the list of those errors' messages."""
    from preservation.metadata import xmlstream

    refused: list[str] = []

    class Parser(etree.XMLPullParser):
        def close(self):
            try:
                return super().close()
            except etree.XMLSyntaxError as e:
                refused.append(e.msg)
                raise

    monkeypatch.setattr(xmlstream.etree, "XMLPullParser", Parser)
    monkeypatch.setattr(xmlstream, "_IDLE", threading.local())  # no parser of the other kind is taken again
    return refused
