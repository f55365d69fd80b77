"""Generated journal articles for the demo, the tests and the benches: JATS XML and a small real PDF each.

The articles are of 物理学报 (Acta Physica Sinica, ISSN 1000-3290, DOIs
``10.7498/aps.<volume>.<year><number>``), with Chinese titles and authors,
a body of realistic length and a reference list, so that a parser does
the work a real delivery asks of it.
"""

from __future__ import annotations

import random
from pathlib import Path
from xml.sax.saxutils import escape

JOURNAL = "物理学报"
JOURNAL_ENGLISH = "Acta Physica Sinica"
ISSN_PRINT = "1000-3290"
PUBLISHER = "中国物理学会"
_TOPICS = ["二维材料中的激子", "拓扑绝缘体的表面态", "超导量子比特的退相干", "等离子体中的湍流输运", "钙钛矿太阳能电池的缺陷",
           "冷原子光晶格中的输运", "石墨烯的热导率", "强激光场中的高次谐波"]
_SURNAMES = ["张", "王", "李", "赵", "陈", "刘", "杨", "黄", "周", "吴"]
_GIVEN = ["伟", "芳", "娜", "敏", "静", "磊", "洋", "艳", "勇", "军", "杰", "涛"]
_SENTENCE = "本文研究了{topic}，利用第一性原理计算与实验测量相结合的方法，得到了与理论预言一致的结果。"


def doi_for(volume: int, year: int, number: int) -> str:
    return f"10.7498/aps.{volume}.{year}{number:04d}"


def pdf_bytes(text: str, size: int = 0, seed: int = 0) -> bytes:
    """A valid one-page PDF showing ``text`` (ASCII), padded with an incompressible stream to about ``size`` bytes."""
    rng = random.Random(seed)
    words = text.encode("ascii", "replace").replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")
    content = b"BT /F1 12 Tf 72 720 Td (" + words + b") Tj ET"
    filler = rng.randbytes(max(size - 900, 0))
    objects = [
        (b"<< /Type /Catalog /Pages 2 0 R >>",),
        (b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",),
        (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
         b"/Resources << /Font << /F1 5 0 R >> /XObject << /Im1 6 0 R >> >> >>",),
        (b"<< /Length %d >>\nstream\n" % len(content), content, b"\nendstream"),
        (b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",),
        # an image the page does not draw: the bulk of a scanned article, as incompressible as a real one
        (b"<< /Type /XObject /Subtype /Image /Width 1 /Height 1 /ColorSpace /DeviceGray /BitsPerComponent 8 "
         b"/Length %d >>\nstream\n" % len(filler), filler, b"\nendstream"),
    ]
    # the parts are joined once at the end: the filler (most of the bytes) is copied once, not per object
    parts = [b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"]
    length = len(parts[0])
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(length)
        for part in (b"%d 0 obj\n" % number, *body, b"\nendobj\n"):
            parts.append(part)
            length += len(part)
    parts.append(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    parts += [b"%010d 00000 n \n" % offset for offset in offsets]
    parts.append(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, length))
    return b"".join(parts)


def jats_article(doi: str, title: str, authors: list[tuple[str, str]], *, volume: int, issue: int, year: int,
                 month: int = 1, pdf: str | None = None, body_bytes: int = 0, seed: int = 0,
                 first_page: int = 1) -> bytes:
    """A JATS 1.2 article of 物理学报 with a body and references of about ``body_bytes`` bytes."""
    rng = random.Random(seed)
    contribs = "".join(
        f'<contrib contrib-type="author"><name-alternatives><name xml:lang="zh"><surname>{escape(s)}</surname>'
        f"<given-names>{escape(g)}</given-names></name></name-alternatives></contrib>" for s, g in authors
    )
    self_uri = f'<self-uri content-type="pdf" xlink:href="{escape(pdf)}"/>' if pdf else ""
    paragraphs, refs, size, n = [], [], 0, 0
    while size < body_bytes:
        n += 1
        text = "".join(_SENTENCE.format(topic=rng.choice(_TOPICS)) for _ in range(6))
        paragraphs.append(f"<p>{text}<xref ref-type=\"bibr\" rid=\"b{n}\">[{n}]</xref></p>")
        refs.append(f'<ref id="b{n}"><element-citation publication-type="journal"><person-group '
                    f'person-group-type="author"><name><surname>{rng.choice(_SURNAMES)}</surname><given-names>'
                    f'{rng.choice(_GIVEN)}</given-names></name></person-group><article-title>{rng.choice(_TOPICS)}'
                    f'</article-title><source>{JOURNAL}</source><year>{year - rng.randint(1, 20)}</year><volume>'
                    f'{rng.randint(40, 68)}</volume><fpage>{rng.randint(1, 9000)}</fpage></element-citation></ref>')
        size += len(paragraphs[-1].encode()) + len(refs[-1].encode())
    sections = "".join(f'<sec id="s{i}"><title>第{i + 1}节</title>{"".join(paragraphs[i::4])}</sec>'
                       for i in range(min(4, len(paragraphs))))
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE article PUBLIC "-//NLM//DTD JATS (Z39.96) Journal Publishing DTD v1.2 20190208//EN" "JATS-journalpublishing1.dtd">
<article xmlns:xlink="http://www.w3.org/1999/xlink" xmlns:mml="http://www.w3.org/1998/Math/MathML" article-type="research-article" dtd-version="1.2" xml:lang="zh">
<front>
<journal-meta>
<journal-id journal-id-type="publisher-id">aps</journal-id>
<journal-title-group><journal-title>{JOURNAL}</journal-title><trans-title-group xml:lang="en"><trans-title>{JOURNAL_ENGLISH}</trans-title></trans-title-group></journal-title-group>
<issn pub-type="ppub">{ISSN_PRINT}</issn>
<publisher><publisher-name>{PUBLISHER}</publisher-name></publisher>
</journal-meta>
<article-meta>
<article-id pub-id-type="doi">{escape(doi)}</article-id>
<title-group><article-title>{escape(title)}</article-title><trans-title-group xml:lang="en"><trans-title>A study</trans-title></trans-title-group></title-group>
<contrib-group>{contribs}</contrib-group>
<pub-date pub-type="ppub"><day>5</day><month>{month}</month><year>{year}</year></pub-date>
<volume>{volume}</volume>
<issue>{issue}</issue>
<fpage>{first_page}</fpage>
<lpage>{first_page + 9}</lpage>
{self_uri}
<abstract><p>{escape(title)}：摘要。</p></abstract>
</article-meta>
</front>
<body>{sections}</body>
<back><ref-list>{"".join(refs)}</ref-list></back>
</article>
""".encode("utf-8")


def write_articles(root: Path, count: int, *, year: int = 2019, volume: int = 68,
                   xml_size: tuple[int, int] = (20_000, 40_000), pdf_size: tuple[int, int] = (20_000, 40_000),
                   seed: int = 16, folder: str = "期刊/物理学报", first: int = 1) -> list[str]:
    """``count`` articles (XML and PDF of the same name, in one folder per issue) under ``root``; their DOIs.

    Sizes are drawn (seeded) between the bounds of ``xml_size`` and ``pdf_size``, in bytes.  The articles
    are numbered from ``first`` (so that several processes can each write a part of one delivery).
    """
    rng = random.Random(seed if first == 1 else f"{seed}/{first}")
    dois = []
    for number in range(first, first + count):
        issue = (number - 1) % 24 + 1
        doi = doi_for(volume, year, number)
        stem = root / folder / str(year) / f"第{issue:02d}期" / f"aps-{volume}-{number:05d}"
        stem.parent.mkdir(parents=True, exist_ok=True)
        authors = [(rng.choice(_SURNAMES), rng.choice(_GIVEN) + rng.choice(_GIVEN)) for _ in range(rng.randint(1, 5))]
        title = f"{rng.choice(_TOPICS)}研究（{number}）"
        stem.with_suffix(".xml").write_bytes(jats_article(
            doi, title, authors, volume=volume, issue=issue, year=year, month=(issue + 1) // 2,
            pdf=stem.name + ".pdf", body_bytes=rng.randint(*xml_size) - 2_500, seed=seed + number,
            first_page=number * 10))
        stem.with_suffix(".pdf").write_bytes(pdf_bytes(f"Acta Phys. Sin. {doi}", rng.randint(*pdf_size),
                                                       seed=seed + number))
        dois.append(doi)
    return dois

