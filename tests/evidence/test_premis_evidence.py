"""The PREMIS export carries, for each event under a signed checkpoint, the checkpoint and its inclusion proof."""

from __future__ import annotations

import base64
import io

from lxml import etree

from preservation import checkpoints, merkle
from preservation.events import FIXITY_CHECK, SUCCESS, record_event
from preservation.premis import CHAIN_NS, PREMIS_NS, write_premis

NS = {"p": PREMIS_NS, "c": CHAIN_NS}


def _export(repo, package_id):
    out = io.BytesIO()
    counts = write_premis(repo, package_id, out)
    return counts, etree.fromstring(out.getvalue())


def _evidence(event):
    ext = event.find("p:eventDetailInformation/p:eventDetailExtension", NS)
    return ext.find("c:chainedEvent", NS), ext.find("c:inclusionProof", NS)


def test_each_checkpointed_event_carries_its_checkpoint_and_inclusion_proof(repo, preserved):
    with repo.catalog.session() as s:
        made = checkpoints.make_checkpoint(s, repo.settings)
    with repo.catalog.session() as s:  # one more, after the checkpoint: no proof yet
        late = record_event(s, FIXITY_CHECK, SUCCESS, package_id=preserved, detail={"late": True}).event_id
    counts, root = _export(repo, preserved)
    events = root.findall("p:event", NS)
    assert counts["events"] == len(events) >= 3 and counts["proven"] == len(events) - 1
    keys = checkpoints.public_keys(repo.settings)
    for event in events:
        chained, proof = _evidence(event)
        event_id = event.find("p:eventIdentifier/p:eventIdentifierValue", NS).text
        if event_id == late:
            assert proof is None
            continue
        note = checkpoints.verify_note(proof.find("c:checkpoint", NS).text, keys)  # parsed back: signed, whole
        assert note.size == made["size"] == int(proof.get("treeSize"))
        index = int(proof.get("leafIndex"))
        assert index == int(chained.get("seq")) - 1
        path = [base64.b64decode(h.text) for h in proof.findall("c:hash", NS)]
        leaf = merkle.leaf_hash(bytes.fromhex(chained.get("hash")))
        assert merkle.verify_inclusion(index, note.size, leaf, path, note.root)
        if path:  # any changed byte of the path, or another event's hash, fails
            bad = [bytes([path[0][0] ^ 1]) + path[0][1:], *path[1:]]
            assert not merkle.verify_inclusion(index, note.size, leaf, bad, note.root)
        other = merkle.leaf_hash(bytes.fromhex(chained.get("prevHash")))
        assert not merkle.verify_inclusion(index, note.size, other, path, note.root)


def test_without_a_checkpoint_the_export_has_no_proofs(repo, preserved):
    counts, root = _export(repo, preserved)
    assert counts["proven"] == 0 and counts["events"] > 0
    assert all(_evidence(e)[1] is None for e in root.findall("p:event", NS))
