"""The XML checks (lxml), with JATS and ONIX 3 rules, run only inside a validating process.

The parser never resolves an entity, loads a DTD or touches the network, and a
document that declares entities in its DTD is refused outright (FMV202), so
neither an external entity nor an expansion bomb is ever acted on.  The file
is read as a stream (``iterparse``): what a rule needs (a JATS ``<front>``,
one ONIX ``<Product>``) is kept until its end tag, everything else is dropped
as soon as it is parsed, so memory does not grow with the file.

The JATS and ONIX rules are the elements the catalog relies on, written here
in code; no schema is copied into the repository.  ``xml`` applies the JATS
rules to an ``<article>`` that says it is JATS (:func:`looks_like_jats`) and
the ONIX rules when the root is ``<ONIXMessage>``; ``jats`` and ``onix``
apply theirs whatever the root.
"""

from __future__ import annotations

import re
from typing import BinaryIO, Iterator

from lxml import etree

from preservation import codes
from preservation.formats.checks.base import Report, register

PARSER_OPTIONS = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "dtd_validation": False,
    "attribute_defaults": False,
    "huge_tree": False,
}
SHOWN = 5
YEARS = range(1450, 2201)
"""The years a publication date may name: from printing to well past any embargo."""

_DOI = re.compile(r"10\.\d{4,9}/\S+")
_ISSN = re.compile(r"(\d{4})-?(\d{3})([\dX])")
_NUMBER_LIKE = re.compile(r"[A-Za-z0-9 .()/\-\u2013]{1,32}")
_ROMAN = re.compile(r"[IVXLCDM]+", re.I)
_BOMB_WORDS = ("amplification", "entity reference loop", "Detected an entity")
_SHORT_TAGS = {
    "ONIXmessage": "ONIXMessage", "product": "Product", "a001": "RecordReference",
    "productidentifier": "ProductIdentifier", "b244": "IDValue", "b203": "TitleText", "b031": "TitleWithoutPrefix",
}


def local(element: etree._Element) -> str:
    """An element's name without its namespace (ONIX short tags given their reference names)."""
    if not isinstance(element.tag, str):
        return ""
    name = etree.QName(element).localname
    return _SHORT_TAGS.get(name, name)


def _children(element: etree._Element, name: str) -> Iterator[etree._Element]:
    return (child for child in element if local(child) == name)


def _first(element: etree._Element | None, name: str) -> etree._Element | None:
    return None if element is None else next(_children(element, name), None)


def text_of(element: etree._Element | None) -> str:
    return "" if element is None else "".join(element.itertext()).strip()


def issn_ok(value: str) -> bool:
    """``value`` is an ISSN (with or without its hyphen) whose check digit is right."""
    form = _ISSN.fullmatch(value.upper())
    if form is None:
        return False
    digits = form.group(1) + form.group(2)
    remainder = sum(int(d) * w for d, w in zip(digits, range(8, 1, -1))) % 11
    check = (11 - remainder) % 11
    return form.group(3) == ("X" if check == 10 else str(check))


def number_like(value: str) -> bool:
    """A volume or issue: short, plain, and holding a digit (``12``, ``3-4``, ``Suppl 2``) or a roman numeral."""
    return bool(_NUMBER_LIKE.fullmatch(value)) and (any(c.isdigit() for c in value) or bool(_ROMAN.fullmatch(value)))


class _Rules:
    """The rules of one profile, fed the parse as it streams.

    ``keeps`` says whether an element's subtree must live until its end tag;
    ``end`` sees each element at its end tag (depth 1 is the root).
    """

    profile: str | None = None

    def keeps(self, element: etree._Element, depth: int) -> bool:
        return False

    def end(self, element: etree._Element, depth: int, report: Report) -> None:
        pass

    def finish(self, report: Report) -> None:
        pass


class _Jats(_Rules):
    profile = "jats"

    def __init__(self, root: etree._Element, report: Report) -> None:
        self.front_seen = False
        if local(root) != "article":
            report.fault(codes.JATS_ROOT, f"the root element is <{local(root)}>")

    def keeps(self, element: etree._Element, depth: int) -> bool:
        return depth == 2 and local(element) == "front"

    def end(self, element: etree._Element, depth: int, report: Report) -> None:
        if depth == 2 and local(element) == "front" and not self.front_seen:
            self.front_seen = True
            _check_front(element, report)

    def finish(self, report: Report) -> None:
        if not self.front_seen:
            report.fault(codes.JATS_NO_ARTICLE_META, "the article has no <front>")


def _check_front(front: etree._Element, report: Report) -> None:
    journal = _first(front, "journal-meta")
    titles = [] if journal is None else [t for t in journal.iter() if local(t) == "journal-title" and text_of(t)]
    if not titles:
        report.fault(codes.JATS_NO_JOURNAL_TITLE, "no <journal-meta>/<journal-title> with text")
    issns = [] if journal is None else [text_of(i) for i in _children(journal, "issn")]
    if not issns:
        report.fault(codes.JATS_NO_ISSN, "<journal-meta> names no <issn>")
    for issn in issns:
        if not issn_ok(issn):
            report.fault(codes.JATS_ISSN, f"ISSN {issn[:40]!r} is malformed or its check digit is wrong")
    meta = _first(front, "article-meta")
    if meta is None:
        report.fault(codes.JATS_NO_ARTICLE_META, "<front> has no <article-meta>")
        return
    ids = list(_children(meta, "article-id"))
    if not ids:
        report.fault(codes.JATS_NO_ARTICLE_ID, "<article-meta> has no <article-id>")
    for article_id in ids:
        if article_id.get("pub-id-type") == "doi":
            doi = text_of(article_id)
            if _DOI.fullmatch(doi):
                report.details.setdefault("doi", doi[:200])
            else:
                report.fault(codes.JATS_DOI, f"DOI {doi[:80]!r} is not 10.NNNN/suffix")
    years = [text_of(_first(date, "year")) for date in _children(meta, "pub-date")]
    good = [int(y) for y in years if y.isascii() and y.isdigit() and len(y) == 4 and int(y) in YEARS]
    if good:
        report.details["pub_year"] = min(good)
    else:
        report.fault(codes.JATS_NO_PUB_YEAR, f"<pub-date> years found: {[y[:10] for y in years][:SHOWN]}")
    for name in ("volume", "issue"):
        for element in _children(meta, name):
            value = text_of(element)
            if not number_like(value):
                report.fault(codes.JATS_VOLUME_ISSUE, f"<{name}> {value[:40]!r} is not number-like")


class _Onix(_Rules):
    profile = "onix"

    def __init__(self, root: etree._Element, report: Report) -> None:
        self.products = 0
        release = root.get("release") or ""
        report.details["release"] = release[:16]
        if local(root) != "ONIXMessage" or not re.fullmatch(r"3\.\d{1,3}", release):
            report.fault(codes.ONIX_ROOT, f"the root is <{local(root)}> with release {release[:16]!r}")

    def keeps(self, element: etree._Element, depth: int) -> bool:
        return depth == 2 and local(element) == "Product"

    def end(self, element: etree._Element, depth: int, report: Report) -> None:
        if depth == 2 and local(element) == "Product":
            self.products += 1
            _check_product(element, self.products, report)

    def finish(self, report: Report) -> None:
        report.details["products"] = self.products
        if not self.products:
            report.fault(codes.ONIX_NO_PRODUCT, "the message has no <Product>")


def _check_product(product: etree._Element, number: int, report: Report) -> None:
    reference = text_of(_first(product, "RecordReference"))
    label = f"product {number}" + (f" ({reference[:64]!r})" if reference else "")
    if not reference:
        report.fault(codes.ONIX_NO_RECORD_REFERENCE, f"{label} has no <RecordReference>")
    if not any(text_of(_first(pid, "IDValue")) for pid in _children(product, "ProductIdentifier")):
        report.fault(codes.ONIX_NO_PRODUCT_IDENTIFIER, f"{label} has no <ProductIdentifier> with an <IDValue>")
    if not any(local(e) in ("TitleText", "TitleWithoutPrefix") and text_of(e) for e in product.iter()):
        report.fault(codes.ONIX_NO_TITLE, f"{label} has no <TitleText> or <TitleWithoutPrefix>")


def looks_like_jats(root: etree._Element) -> bool:
    """An un-namespaced ``<article>`` that says it is JATS/NLM (DocBook has ``<article>`` too).

    It says so by a ``dtd-version`` or ``article-type`` attribute, or by a
    DOCTYPE whose public or system identifier names JATS or NLM.
    """
    if local(root) != "article" or etree.QName(root).namespace is not None:
        return False
    if root.get("dtd-version") is not None or root.get("article-type") is not None:
        return True
    info = root.getroottree().docinfo
    named = f"{info.public_id or ''} {info.system_url or ''}".upper()
    return "JATS" in named or "NLM" in named


def _rules_for(root: etree._Element, profile: str | None, report: Report) -> _Rules:
    name = local(root)
    if profile == "jats" or (profile is None and looks_like_jats(root)):
        return _Jats(root, report)
    if profile == "onix" or (profile is None and name == "ONIXMessage"):
        return _Onix(root, report)
    return _Rules()


def _declared_entities(root: etree._Element) -> list[str]:
    dtd = root.getroottree().docinfo.internalDTD
    return [] if dtd is None else [entity.name for entity in dtd.iterentities()]


def check_xml(stream: BinaryIO, report: Report, profile: str | None = None) -> None:
    """Well-formed, no entity declared, and the rules of ``profile`` (or of the root's profile when None)."""
    rules: _Rules | None = None
    depth = 0
    kept = 0  # > 0 while inside a subtree a rule keeps
    context = etree.iterparse(stream, events=("start", "end"), **PARSER_OPTIONS)
    try:
        for event, element in context:
            if event == "start":
                depth += 1
                if rules is None:
                    declared = _declared_entities(element)
                    if declared:
                        report.fault(codes.XML_ENTITY_DECLARED, "entities declared: " + ", ".join(declared[:SHOWN]))
                        return
                    rules = _rules_for(element, profile, report)
                    if rules.profile:
                        report.details["profile"] = rules.profile
                if kept or rules.keeps(element, depth):
                    kept += 1
                continue
            rules.end(element, depth, report)
            if kept:
                kept -= 1
            if not kept and depth > 1:
                element.clear(keep_tail=True)
                parent = element.getparent()
                while element.getprevious() is not None:
                    del parent[0]
            depth -= 1
    except etree.XMLSyntaxError as e:
        if "memory" in str(e).lower():
            raise MemoryError(str(e)) from e
        if rules is None and any(word in e.msg for word in _BOMB_WORDS):
            # libxml2 refused the DTD's entities before the root was reached: an expansion bomb
            report.fault(codes.XML_ENTITY_DECLARED, f"line {e.lineno}: {e.msg}")
        else:
            report.fault(codes.XML_MALFORMED, f"line {e.lineno}: {e.msg}")
        return
    undeclared = sorted({m.message for m in context.error_log if m.type_name == "WAR_UNDECLARED_ENTITY"})
    if undeclared:
        report.note(codes.XML_ENTITY_UNDECLARED, "; ".join(undeclared[:SHOWN]))
    if rules is None:
        report.fault(codes.XML_MALFORMED, "the document has no root element")
        return
    rules.finish(report)


@register("xml")
def check_any_xml(stream: BinaryIO, report: Report) -> None:
    check_xml(stream, report)


@register("jats")
def check_jats(stream: BinaryIO, report: Report) -> None:
    check_xml(stream, report, "jats")


@register("onix")
def check_onix(stream: BinaryIO, report: Report) -> None:
    check_xml(stream, report, "onix")
