"""Exporting a package's history as PREMIS 3 XML.

One ``premis`` document per package: the package as an intellectual entity,
each of its files as a ``premis:file`` object with its sha256 and sha512
fixity, every event of the package, and the agents those events name.  The
document is written element by element (lxml ``xmlfile``), so memory does not
grow with the number of files or events.

Event types keep this repository's words; where the Library of Congress
preservation vocabulary has the same term, ``eventType`` also carries its
``valueURI``.  Each event keeps its place in the hash chain in an
``eventDetailExtension`` (seq, previous hash, hash and every hashed field), so
anyone holding the export can recompute each event's hash.  Beside it, an event
under a signed checkpoint carries ``chain:inclusionProof``: its leaf index, the
tree size, the RFC 9162 audit path (``chain:hash``, base64, bottom-up) and the
checkpoint's signed note (``chain:checkpoint``, with the witnesses'
co-signatures), so that the event can be checked against the log's public key
alone (docs/evidence.md); an event appended after the latest checkpoint has none.

The export never fails on stored text, even text XML 1.0 cannot carry (a
C0 control, U+FFFE, U+FFFF, a lone surrogate) that entered before the
boundaries refused it.  Such text is escaped reversibly, and marked:

* an element whose text was escaped carries ``chain:escaped="xml-safe"``;
  its text is :func:`preservation.text.xml_safe` of the original — ``\\\\``
  stands for one backslash and ``\\uXXXX`` for the character U+XXXX — and
  :func:`preservation.text.xml_unescape` gives the original back;
* ``chain:chainedEvent`` lists the attributes it escaped the same way in its
  ``escaped`` attribute (space-separated names, e.g. ``escaped="nodeName"``);
* ``eventOutcomeDetailNote`` is JSON: when the detail holds such a
  character the note is written with every non-ASCII character as a JSON
  ``\\uXXXX`` escape, so any JSON parser restores the detail exactly (no
  mark is needed) and the event's hash still recomputes.

Text that XML can carry is written as it is, unmarked.
"""

from __future__ import annotations

import base64
import json
import mimetypes
from datetime import datetime
from typing import Any, BinaryIO

from lxml import etree
from sqlalchemy import select

from preservation.catalog.files import iter_package_files
from preservation.catalog.format_models import FileFormat
from preservation import checkpoints
from preservation.catalog.models import Event, Package
from preservation.errors import NotFound
from preservation.events import event_to_dict, iter_events
from preservation.layout import PackageLayout
from preservation.repository import Repository
from preservation.text import needs_xml_escape, xml_safe
from preservation.versions import lineage_versions, referenced_packages, version_of

PREMIS_NS = "http://www.loc.gov/premis/v3"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
CHAIN_NS = "urn:x-preserve:event-chain:1"
PREMIS_VERSION = "3.0"
SCHEMA_LOCATION = f"{PREMIS_NS} https://www.loc.gov/standards/premis/premis.xsd"

VOCAB = "http://id.loc.gov/vocabulary/preservation"
EVENT_TYPE_CODES = {
    "ingestion": "ing",
    "fixity check": "fix",
    "replication": "rep",
    "validation": "val",
    "message digest calculation": "mes",
    "information package creation": "ipc",
    "deaccession": "dea",
    "dissemination": "dis",
    "policy assignment": "poa",
    "deletion": "del",
    "metadata modification": "mem",
    "format identification": "for",
}
HASH_FUNCTIONS = {"sha256": ("SHA-256", "sha256"), "sha512": ("SHA-512", "sha512")}
AGENT_TYPES = {"software": "sof", "person": "per"}

P = "{%s}" % PREMIS_NS
C = "{%s}" % CHAIN_NS
ESCAPED = C + "escaped"  # marks an element whose text is xml_safe() of the stored value
XML_SAFE = "xml-safe"


def _set_text(el: etree._Element, text: str) -> None:
    if needs_xml_escape(text):
        el.text = xml_safe(text)
        el.set(ESCAPED, XML_SAFE)
    else:
        el.text = text


def _el(tag: str, text: str | None = None, **attrib: str) -> etree._Element:
    el = etree.Element(P + tag, attrib)
    if text is not None:
        _set_text(el, text)
    return el


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrib: str) -> etree._Element:
    el = etree.SubElement(parent, P + tag, attrib)
    if text is not None:
        _set_text(el, text)
    return el


def _json_note(detail: Any) -> str:
    note = json.dumps(detail, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    if needs_xml_escape(note):
        note = json.dumps(detail, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return note


def _identifier(parent: etree._Element, tag: str, id_type: str, value: str) -> None:
    ident = _sub(parent, tag)
    _sub(ident, f"{tag}Type", id_type)
    _sub(ident, f"{tag}Value", value)


def event_type_uri(event_type: str) -> str | None:
    code = EVENT_TYPE_CODES.get(event_type)
    return f"{VOCAB}/eventType/{code}" if code else None


def agent_type(agent: str) -> str:
    """``software`` for this system's own agents (``preserve…``), ``person`` for the rest."""
    return "software" if agent.startswith("preserve") else "person"


def _datetime(value: datetime) -> str:
    return value.isoformat(timespec="microseconds") + "Z"


def package_entity(package: Package) -> etree._Element:
    obj = _el("object", **{f"{{{XSI_NS}}}type": "premis:intellectualEntity"})
    _identifier(obj, "objectIdentifier", "UUID", package.id)
    sig = _sub(obj, "significantProperties")
    _sub(sig, "significantPropertiesType", "Payload-Oxum")
    _sub(sig, "significantPropertiesValue", package.payload_oxum)
    _sub(obj, "originalName", package.name)
    return obj


def version_relationships(session, package_id: str, entity: etree._Element) -> None:
    """A version's place in its lineage (docs/versions.md): its number as a significant property, and
    relationships to the version it follows (derivation: has source), the one that follows it (is source
    of), and every earlier version whose stored files it references (reference: references)."""
    version = version_of(session, package_id)
    if version is None:
        return
    sig = _el("significantProperties")
    _sub(sig, "significantPropertiesType", "Version")
    _sub(sig, "significantPropertiesValue", str(version.number))
    entity.insert(entity.index(entity.find(P + "significantProperties")) + 1, sig)
    following = [v.package_id for v in lineage_versions(session, package_id) if v.previous_id == package_id]
    links = [("derivation", "has source", version.previous_id)] if version.previous_id else []
    links += [("derivation", "is source of", pid) for pid in following]
    links += [("reference", "references", pid) for pid in referenced_packages(session, package_id)]
    for kind, sub, related in links:
        rel = _sub(entity, "relationship")
        _sub(rel, "relationshipType", kind)
        _sub(rel, "relationshipSubType", sub)
        _identifier(rel, "relatedObjectIdentifier", "UUID", related)


def file_object(package_id: str, path: str, size: int, digests: dict[str, str],
                identified: FileFormat | None = None) -> etree._Element:
    """A file's PREMIS object; with ``identified`` (its format record) the PRONOM format and its inhibitors."""
    obj = _el("object", **{f"{{{XSI_NS}}}type": "premis:file"})
    _identifier(obj, "objectIdentifier", "local", PackageLayout(package_id).key(path))
    chars = _sub(obj, "objectCharacteristics")
    _sub(chars, "compositionLevel", "0")
    for algorithm, value in digests.items():
        label, code = HASH_FUNCTIONS[algorithm]
        fixity = _sub(chars, "fixity")
        _sub(fixity, "messageDigestAlgorithm", label, authority="cryptographicHashFunctions",
             authorityURI=f"{VOCAB}/cryptographicHashFunctions",
             valueURI=f"{VOCAB}/cryptographicHashFunctions/{code}")
        _sub(fixity, "messageDigest", value)
    _sub(chars, "size", str(size))
    if identified is not None and identified.puid:
        _format_of(chars, identified)
    else:
        fmt = _sub(chars, "format")
        designation = _sub(fmt, "formatDesignation")
        _sub(designation, "formatName", mimetypes.guess_type(path)[0] or "application/octet-stream")
        if identified is not None:
            _sub(fmt, "formatNote", f"not identified: no PRONOM signature matches ({identified.tool} "
                                    f"{identified.tool_version}, signatures {identified.signature_version})")
    _sub(obj, "originalName", path)
    rel = _sub(obj, "relationship")
    _sub(rel, "relationshipType", "structural")
    _sub(rel, "relationshipSubType", "is included in")
    _identifier(rel, "relatedObjectIdentifier", "UUID", package_id)
    return obj


def _format_of(chars: etree._Element, identified: FileFormat) -> None:
    """PRONOM's format (name, version, PUID), how and by what it was identified, and what keeps it shut."""
    fmt = _sub(chars, "format")
    designation = _sub(fmt, "formatDesignation")
    _sub(designation, "formatName", identified.format_name or identified.mime or identified.puid)
    if identified.format_version:
        _sub(designation, "formatVersion", identified.format_version)
    registry = _sub(fmt, "formatRegistry")
    _sub(registry, "formatRegistryName", "PRONOM")
    _sub(registry, "formatRegistryKey", identified.puid)
    _sub(registry, "formatRegistryRole", "identification")
    _sub(fmt, "formatNote", f"MIME type {identified.mime or 'unknown'}; basis: {identified.basis}; by "
                            f"{identified.tool} {identified.tool_version}, signatures {identified.signature_version}, "
                            f"{_datetime(identified.identified_at)}")
    if identified.validation:
        _sub(fmt, "formatNote", f"validation ({identified.validation_kind}): {identified.validation}")
    for locked, kind in ((identified.encrypted, "Encryption"), (identified.drm, "DRM: restricted permissions")):
        if locked:
            inhibitors = _sub(chars, "inhibitors")
            _sub(inhibitors, "inhibitorType", kind)


def inclusion_element(seq: int, size: int, path: list[bytes], note: str) -> etree._Element:
    """The evidence that event ``seq`` is in the log a checkpoint signed (docs/evidence.md)."""
    el = etree.Element(C + "inclusionProof", {"leafIndex": str(seq - 1), "treeSize": str(size)})
    for h in path:
        etree.SubElement(el, C + "hash").text = base64.b64encode(h).decode()
    etree.SubElement(el, C + "checkpoint").text = note
    return el


def event_element(ev: Event, evidence: etree._Element | None = None) -> etree._Element:
    record = event_to_dict(ev)
    el = _el("event")
    _identifier(el, "eventIdentifier", "UUID", ev.event_id)
    type_attrs = {}
    uri = event_type_uri(ev.event_type)
    if uri:
        type_attrs = {"authority": "eventType", "authorityURI": f"{VOCAB}/eventType", "valueURI": uri}
    _sub(el, "eventType", ev.event_type, **type_attrs)
    _sub(el, "eventDateTime", _datetime(ev.occurred_at))
    info = _sub(el, "eventDetailInformation")
    _sub(info, "eventDetail", _summary(ev))
    ext = _sub(info, "eventDetailExtension")
    chain = etree.SubElement(ext, C + "chainedEvent", {
        "seq": str(ev.seq), "prevHash": ev.prev_hash, "hash": ev.hash, "occurredAt": record["occurred_at"],
    })
    escaped = []
    for key in ("package_id", "replica_id", "node_name", "job_id", "policy"):
        if record[key] is not None:
            value = str(record[key])
            if needs_xml_escape(value):
                value = xml_safe(value)
                escaped.append(_camel(key))
            chain.set(_camel(key), value)
    if escaped:
        chain.set("escaped", " ".join(escaped))
    if evidence is not None:
        ext.append(evidence)
    outcome = _sub(el, "eventOutcomeInformation")
    _sub(outcome, "eventOutcome", ev.outcome)
    note = _sub(outcome, "eventOutcomeDetail")
    _sub(note, "eventOutcomeDetailNote", _json_note(record["detail"]))
    _identifier(el, "linkingAgentIdentifier", "local", ev.agent)
    if ev.package_id:
        _identifier(el, "linkingObjectIdentifier", "UUID", ev.package_id)
    return el


def agent_element(agent: str) -> etree._Element:
    el = _el("agent")
    _identifier(el, "agentIdentifier", "local", agent)
    _sub(el, "agentName", agent)
    kind = agent_type(agent)
    _sub(el, "agentType", kind, authority="agentType", authorityURI=f"{VOCAB}/agentType",
         valueURI=f"{VOCAB}/agentType/{AGENT_TYPES[kind]}")
    return el


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.capitalize() for p in rest)


def _summary(ev: Event) -> str:
    parts = [ev.event_type]
    if ev.node_name:
        parts.append(f"node {ev.node_name}")
    if ev.replica_id is not None:
        parts.append(f"replica {ev.replica_id}")
    if ev.job_id is not None:
        parts.append(f"job {ev.job_id}")
    if ev.policy:
        parts.append(f"policy {ev.policy}")
    return ", ".join(parts)


def _emit(xf: Any, el: etree._Element) -> None:
    """Write ``el`` through ``xf`` element by element, so it uses the root's namespace prefixes
    instead of declaring them again on every object and event."""
    with xf.element(el.tag, dict(el.attrib)):
        if el.text:
            xf.write(el.text)
        for child in el:
            _emit(xf, child)


def _top(xf: Any, el: etree._Element) -> None:
    xf.write("\n")
    _emit(xf, el)


def _formats_of(repo: Repository, package_id: str, first: str, last: str) -> dict[str, FileFormat]:
    """The format records of a batch of the package's files (paths ``first`` to ``last``)."""
    with repo.catalog.session() as s:
        found = s.scalars(select(FileFormat).where(FileFormat.package_id == package_id, FileFormat.path >= first,
                                                   FileFormat.path <= last)).all()
        s.expunge_all()
    return {f.path: f for f in found}


def write_premis(repo: Repository, package_id: str, out: BinaryIO) -> dict[str, Any]:
    """Write the package's PREMIS document to ``out``; returns counts.  Raises NotFound."""
    with repo.catalog.session() as s:
        package = s.get(Package, package_id)
        if package is None:
            raise NotFound(f"no package {package_id!r}: see `preserve status --json` or `preserve events list`")
        entity = package_entity(package)
        version_relationships(s, package_id, entity)
    counts = {"package_id": package_id, "files": 0, "events": 0, "agents": 0, "proven": 0}
    agents: set[str] = set()
    nsmap = {"premis": PREMIS_NS, "xsi": XSI_NS, "chain": CHAIN_NS}
    with etree.xmlfile(out, encoding="utf-8") as xf:
        xf.write_declaration()
        with xf.element(P + "premis", {"version": PREMIS_VERSION, f"{{{XSI_NS}}}schemaLocation": SCHEMA_LOCATION},
                        nsmap=nsmap):
            _top(xf, entity)
            for batch in iter_package_files(repo.catalog, package_id):
                identified = _formats_of(repo, package_id, batch[0].path, batch[-1].path) if batch else {}
                for row in batch:
                    _top(xf, file_object(package_id, row.path, row.size,
                                         {"sha256": row.sha256, "sha512": row.sha512}, identified.get(row.path)))
                    counts["files"] += 1
            with repo.catalog.session() as s:
                latest = checkpoints.latest_checkpoint(s)
                size, note = (latest.size, latest.note) if latest is not None else (0, "")
                for ev in iter_events(s, package_id=package_id):
                    evidence = None
                    if ev.seq <= size:
                        evidence = inclusion_element(ev.seq, size, checkpoints.inclusion_path(s, ev.seq, size), note)
                        counts["proven"] += 1
                    _top(xf, event_element(ev, evidence))
                    agents.add(ev.agent)
                    counts["events"] += 1
                    s.expunge(ev)
            for agent in sorted(agents):
                _top(xf, agent_element(agent))
            counts["agents"] = len(agents)
            xf.write("\n")
    return counts
