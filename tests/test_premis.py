"""PREMIS export: parsed back with lxml, it holds the same objects, events and agents, and every event's hash."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from lxml import etree
from sqlalchemy import select

from preservation.audit import audit
from preservation.catalog.models import Package, PackageFile
from preservation.events import event_hash, event_to_dict, iter_events
from preservation.ingest import ingest
from preservation.premis import CHAIN_NS, PREMIS_NS, XSI_NS
from preservation.runtime.handlers import default_registry
from preservation.runtime.worker import Worker, WorkerOptions

from .corruption import flip_bit
from .fixtures import node_root

NS = {"p": PREMIS_NS, "c": CHAIN_NS}
VOCAB = "http://id.loc.gov/vocabulary/preservation"
HASHED = ("package_id", "replica_id", "node_name", "job_id", "policy")


@pytest.fixture
def history(repo, sample_delivery):
    """A package with a varied history: ingest, replication, a failed audit, a repair by a worker."""
    package_id = ingest(repo, sample_delivery, "journals")["package_id"]
    flip_bit(node_root(repo, "cas-nsl") / package_id / "data/metadata/README.txt")
    assert not audit(repo, package_id=package_id).ok
    Worker(repo, default_registry(), WorkerOptions(once=True)).run()
    return package_id


def _text(el, path: str) -> str | None:
    found = el.find(path, NS)
    return found.text if found is not None else None


def _parse_event(el) -> dict:
    chain = el.find("p:eventDetailInformation/p:eventDetailExtension/c:chainedEvent", NS)
    attr = {"packageId": "package_id", "replicaId": "replica_id", "nodeName": "node_name", "jobId": "job_id",
            "policy": "policy"}
    out = {
        "seq": int(chain.get("seq")),
        "event_id": _text(el, "p:eventIdentifier/p:eventIdentifierValue"),
        "event_type": _text(el, "p:eventType"),
        "occurred_at": chain.get("occurredAt"),
        "outcome": _text(el, "p:eventOutcomeInformation/p:eventOutcome"),
        "agent": _text(el, "p:linkingAgentIdentifier/p:linkingAgentIdentifierValue"),
        "detail": json.loads(_text(el, "p:eventOutcomeInformation/p:eventOutcomeDetail/p:eventOutcomeDetailNote")),
        "prev_hash": chain.get("prevHash"),
        "hash": chain.get("hash"),
    }
    for xml_name, key in attr.items():
        value = chain.get(xml_name)
        out[key] = int(value) if value is not None and key in ("replica_id", "job_id") else value
    assert _text(el, "p:eventDateTime") == out["occurred_at"] + "Z"
    return out


def test_premis_export_round_trips_objects_events_and_agents(repo, history, run_cli, tmp_path):
    out = tmp_path / "premis.xml"
    run_cli("events", "export", history, "--premis", "-o", str(out))
    root = etree.parse(str(out)).getroot()
    assert root.tag == f"{{{PREMIS_NS}}}premis" and root.get("version") == "3.0"
    assert [child.tag.split("}")[1] for child in root][:2] == ["object", "object"]
    kinds = [child.tag.split("}")[1] for child in root]
    assert kinds == sorted(kinds, key=["object", "event", "agent"].index)  # PREMIS order

    objects = root.findall("p:object", NS)
    xsi_type = f"{{{XSI_NS}}}type"
    entity, files = objects[0], objects[1:]
    assert entity.get(xsi_type) == "premis:intellectualEntity"
    assert _text(entity, "p:objectIdentifier/p:objectIdentifierValue") == history
    with repo.catalog.session() as s:
        package = s.get(Package, history)
        rows = {f.path: (f.size, f.sha256, f.sha512)
                for f in s.scalars(select(PackageFile).where(PackageFile.package_id == history))}
        expected_events = [event_to_dict(e) for e in iter_events(s, package_id=history)]
    assert _text(entity, "p:originalName") == package.name
    exported = {}
    for f in files:
        assert f.get(xsi_type) == "premis:file"
        fixity = {fx.find("p:messageDigestAlgorithm", NS).get("valueURI").rsplit("/", 1)[1]:
                  _text(fx, "p:messageDigest") for fx in f.findall("p:objectCharacteristics/p:fixity", NS)}
        path = _text(f, "p:originalName")
        assert _text(f, "p:objectIdentifier/p:objectIdentifierValue") == f"{history}/{path}"
        assert _text(f, "p:relationship/p:relatedObjectIdentifier/p:relatedObjectIdentifierValue") == history
        exported[path] = (int(_text(f, "p:objectCharacteristics/p:size")), fixity["sha256"], fixity["sha512"])
    assert exported == rows

    events = [_parse_event(e) for e in root.findall("p:event", NS)]
    assert events == expected_events
    for ev in events:  # anyone holding the export can recompute each event's hash
        fields = {k: ev[k] for k in ("seq", "event_id", "event_type", "outcome", "agent", "detail", *HASHED)}
        fields["occurred_at"] = datetime.fromisoformat(ev["occurred_at"])
        assert event_hash(fields, ev["prev_hash"]) == ev["hash"]
    types = {ev["event_type"] for ev in events}
    assert {"ingestion", "replication", "fixity check", "repair", "job"} <= types
    uris = {e.find("p:eventType", NS).text: e.find("p:eventType", NS).get("valueURI")
            for e in root.findall("p:event", NS)}
    assert uris["fixity check"] == f"{VOCAB}/eventType/fix" and uris["ingestion"] == f"{VOCAB}/eventType/ing"
    assert uris["replication"] == f"{VOCAB}/eventType/rep" and uris["validation"] == f"{VOCAB}/eventType/val"
    assert uris["repair"] is None and uris["job"] is None
    for e in root.findall("p:event", NS):
        assert _text(e, "p:linkingObjectIdentifier/p:linkingObjectIdentifierValue") == history

    agents = {_text(a, "p:agentIdentifier/p:agentIdentifierValue"): a for a in root.findall("p:agent", NS)}
    assert set(agents) == {ev["agent"] for ev in events}
    assert any(name.startswith("preserve-worker@") for name in agents)
    for name, a in agents.items():
        assert _text(a, "p:agentName") == name and _text(a, "p:agentType") == "software"
        assert a.find("p:agentType", NS).get("valueURI") == f"{VOCAB}/agentType/sof"

    assert run_cli("events", "export", history, "--premis").output.encode() == out.read_bytes()


def test_export_needs_a_format_and_a_known_package(repo, run_cli, tmp_path):
    assert "--premis" in run_cli("events", "export", "some-id", exit_code=2).stderr
    target = tmp_path / "none.xml"
    assert "no package" in run_cli("events", "export", "some-id", "--premis", "-o", target, exit_code=5).stderr
    assert list(tmp_path.glob("none.xml*")) == []


POISON = "reason \uffff with \ufffe, \x01 and a literal \\uFFFF"  # (a lone surrogate cannot be stored)


def test_premis_export_never_fails_on_stored_text_xml_cannot_carry(repo, sample_delivery, run_cli, tmp_path):
    """Rows written before the boundaries refused such text (inserted here directly, past every boundary)
    still export as PREMIS that lxml parses, and every original value is recovered from the export."""
    from sqlalchemy import update

    from preservation.events import record_event
    from preservation.text import xml_unescape

    package_id = ingest(repo, sample_delivery, "journals")["package_id"]
    agent = "user:mallory\x07\\x"
    with repo.catalog.session() as s:
        s.execute(update(Package).where(Package.id == package_id).values(name="delivery\x0b\uffff"))
        poisoned = record_event(s, "access decision", "success", agent=agent, package_id=package_id,
                                node_name="node\ufffe", detail={"reason": POISON, "why": "ok 中文"}).event_id
    out = tmp_path / "premis.xml"
    run_cli("events", "export", package_id, "--premis", "-o", str(out))
    root = etree.parse(str(out)).getroot()  # lxml refuses any document XML 1.0 cannot carry

    escaped = f"{{{CHAIN_NS}}}escaped"
    name = root.find("p:object/p:originalName", NS)
    assert name.get(escaped) == "xml-safe" and xml_unescape(name.text) == "delivery\x0b\uffff"
    [event] = [e for e in root.findall("p:event", NS) if _text(e, "p:eventIdentifier/p:eventIdentifierValue")
               == poisoned]
    agent_el = event.find("p:linkingAgentIdentifier/p:linkingAgentIdentifierValue", NS)
    assert agent_el.get(escaped) == "xml-safe" and xml_unescape(agent_el.text) == agent
    chain = event.find("p:eventDetailInformation/p:eventDetailExtension/c:chainedEvent", NS)
    assert chain.get("escaped") == "nodeName" and xml_unescape(chain.get("nodeName")) == "node\ufffe"
    detail = json.loads(_text(event, "p:eventOutcomeInformation/p:eventOutcomeDetail/p:eventOutcomeDetailNote"))
    assert detail == {"reason": POISON, "why": "ok 中文"}
    # every hash still recomputes from the recovered values
    recovered = _parse_event(event)
    recovered.update(agent=xml_unescape(recovered["agent"]), node_name=xml_unescape(recovered["node_name"]))
    fields = {k: recovered[k] for k in ("seq", "event_id", "event_type", "outcome", "agent", "detail", *HASHED)}
    fields["occurred_at"] = datetime.fromisoformat(recovered["occurred_at"])
    assert event_hash(fields, recovered["prev_hash"]) == recovered["hash"]
    # text XML can carry is written as it is, unmarked
    marked = sorted(el.tag.split("}")[1] for el in root.iter() if el.get(escaped) is not None)
    assert marked == ["agentIdentifierValue", "agentName", "eventDetail", "linkingAgentIdentifierValue",
                      "originalName"]
