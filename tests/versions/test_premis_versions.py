"""The PREMIS export of a version carries its number and its relationships to the other versions."""

from __future__ import annotations

import io

from lxml import etree

from preservation.ingest import ingest
from preservation.premis import PREMIS_NS, write_premis

from .helpers import FIRST, second, write_delivery

NS = {"p": PREMIS_NS}


def _relationships(repo, package_id):
    out = io.BytesIO()
    write_premis(repo, package_id, out)
    root = etree.fromstring(out.getvalue())
    entity = root.find("p:object", NS)
    props = {el.findtext("p:significantPropertiesType", namespaces=NS):
             el.findtext("p:significantPropertiesValue", namespaces=NS)
             for el in entity.findall("p:significantProperties", NS)}
    links = sorted((rel.findtext("p:relationshipType", namespaces=NS),
                    rel.findtext("p:relationshipSubType", namespaces=NS),
                    rel.findtext("p:relatedObjectIdentifier/p:relatedObjectIdentifierValue", namespaces=NS))
                   for rel in entity.findall("p:relationship", NS))
    order = [etree.QName(child).localname for child in entity]
    return props, links, order


def test_versions_are_linked_in_the_premis_export(repo, tmp_path):
    third = second(FIRST)
    third["g.txt"] = b"golf\n"
    ids = []
    for n, files in enumerate((FIRST, second(FIRST), third), start=1):
        ids.append(ingest(repo, write_delivery(tmp_path / f"v{n}", files), "journals",
                          version_of=ids[-1] if ids else None)["package_id"])
    v1, v2, v3 = ids
    props, links, order = _relationships(repo, v2)
    assert props["Version"] == "2" and "Payload-Oxum" in props
    assert links == sorted([("derivation", "has source", v1), ("derivation", "is source of", v3),
                            ("reference", "references", v1)])
    # PREMIS 3 order within an intellectual entity
    assert order == ["objectIdentifier", "significantProperties", "significantProperties", "originalName",
                     "relationship", "relationship", "relationship"]
    props, links, _ = _relationships(repo, v3)
    assert props["Version"] == "3"
    assert links == sorted([("derivation", "has source", v2), ("reference", "references", v1),
                            ("reference", "references", v2)])
    props, links, _ = _relationships(repo, v1)
    assert props["Version"] == "1" and links == [("derivation", "is source of", v2)]


def test_a_package_never_versioned_exports_as_before(repo, tmp_path):
    only = ingest(repo, write_delivery(tmp_path / "only", FIRST), "journals")["package_id"]
    props, links, order = _relationships(repo, only)
    assert "Version" not in props and links == []
    assert order == ["objectIdentifier", "significantProperties", "originalName"]
