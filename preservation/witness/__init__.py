"""The nodes witness the event log: checkpoints sent to every node, checked against what the nodes hold
(docs/evidence.md).

- :func:`witness_nodes` brings every node (not offline) up to the catalog's latest
  checkpoint.  A node agent with a witness key checks each checkpoint against the last
  one it holds, co-signs it and keeps it; its co-signature is added to the checkpoint's
  note in the catalog; its public key is the one an operator imported
  (:mod:`preservation.witness.keys`), else the one it gave the first time it answered.
  For a ``file://`` or ``s3://`` node the coordinator writes the same record itself, after the same check: a copy of the checkpoints held outside the
  catalog, which the node's own operator can compare, but no co-signature.
- :func:`verify_witnesses` recomputes the tree from the events (one pass) and compares its
  root at the size of every checkpoint every node holds; the first that differs names the
  first event that is not what the node witnessed (from the event hashes the node keeps).
- :func:`introduce_key` replaces a lost signing key: a checkpoint signed by the new key
  names it, and the key is installed only once a quorum of witnesses co-signed it.
"""

from __future__ import annotations

import base64
import logging
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select
from sqlalchemy.orm import Session

from preservation import checkpoints, merkle
from preservation.catalog.evidence_models import Checkpoint, compute
from preservation.catalog.models import Event, Node
from preservation.errors import (
    CheckpointInvalid,
    CheckpointKeyMissing,
    PreservationError,
    QuorumNotReached,
    StorageError,
)
from preservation.events import KEY_INTRODUCTION, SUCCESS, record_event, verify_chain
from preservation.notes import (
    MAX_NOTE, MAX_SIGNATURES, SigningKey, body_of, cosigners, parse_body, signatures, verify_note,
)
from preservation.package_state import readable_node
from preservation.repository import Repository
from preservation.settings import Settings
from preservation.signing_keys import generate_key, key_id, parse_verifier_key, raw_public
from preservation.text import for_log
from preservation.witness.keyring import current_keys, keys_dir, keys_for, pin_on_first_answer
from preservation.witness_records import (
    MAX_LEAVES,
    extend,
    edge_root,
    held_records,
    next_record,
    read_latest,
    read_leaves,
    store,
)
from storage_adapters import StorageAdapter
from storage_adapters.features import FEATURE_WITNESS

log = logging.getLogger("preservation.witness")

INTRODUCING_DIR = "introducing"
witness_keys = current_keys
"""The witness keys the coordinator trusts now, by node name (:mod:`.keyring`)."""


# --- keys ------------------------------------------------------------------------------------------------------

def _log_keys(settings: Settings, extra: tuple[str, ...] = ()) -> list[str]:
    keys = {f.read_text(encoding="utf-8").strip() for f in keys_dir(settings).glob("*.pub")}
    return sorted(keys | set(extra))


def quorum(settings: Settings) -> int:
    """Witness co-signatures a key-introduction checkpoint needs: ``checkpoints.quorum``, else a majority of
    the witness keys known."""
    return settings.checkpoints.quorum or len(witness_keys(settings)) // 2 + 1


# --- sending checkpoints ---------------------------------------------------------------------------------------

def _event_hashes(session: Session, after: int, upto: int) -> bytes:
    rows = session.execute(select(Event.seq, Event.hash).where(Event.seq > after, Event.seq <= upto)
                           .order_by(Event.seq).execution_options(yield_per=5000))
    out = bytearray()
    expected = after + 1
    for seq, h in rows:
        if seq != expected:
            break
        out += bytes.fromhex(h)
        expected += 1
    return bytes(out)


def _log_signatures(note: str, origin: str) -> set[tuple[str, str, bytes]]:
    return {sig for sig in signatures(note) if sig[0] == origin}


def _steps(session: Session, held: int, held_note: str | None, origin: str) -> list[Checkpoint]:
    """The catalog's checkpoints to send a node holding ``held`` events: the latest, reached in steps that add
    at most MAX_LEAVES events each; the latest again if it gained a log key's signature the node's copy lacks
    (a rotation: the new key signs the same checkpoint)."""
    rows = list(session.scalars(select(Checkpoint).where(Checkpoint.size >= held).order_by(Checkpoint.size)))
    latest = checkpoints.latest_checkpoint(session)
    if latest is not None and latest.size < held:
        return [latest]  # the log is shorter than what the node holds: let it say so
    steps: list[Checkpoint] = []
    at = held
    for i, cp in enumerate(rows):
        if cp.size == held:
            if held_note is not None and cp is latest and (_log_signatures(cp.note, origin)
                                                           - _log_signatures(held_note, origin)):
                steps.append(cp)
            continue
        nxt = rows[i + 1] if i + 1 < len(rows) else None
        if nxt is None or nxt.size - at > MAX_LEAVES:
            steps.append(cp)
            at = cp.size
    return steps


def _add_cosignature(session: Session, size: int, cosigned: str, witness_key: str) -> bool:
    """Add to the catalog's checkpoint of ``size`` the one co-signature line of ``cosigned`` made by the node's
    pinned ``witness_key`` over that checkpoint; nothing else of the agent's answer is kept. Whether one was."""
    row = session.get(Checkpoint, size, with_for_update=True)
    if row is None or len(cosigned) > MAX_NOTE or body_of(row.note) != body_of(cosigned):
        return False
    name, kid, key = parse_verifier_key(witness_key)
    body = body_of(row.note).encode("utf-8")
    have = set(row.note.partition("\n\n")[2].splitlines())
    for line in cosigned.partition("\n\n")[2].split("\n")[:MAX_SIGNATURES]:
        for signer, signer_kid, signature in signatures("\n\n" + line):
            if (signer, signer_kid) != (name, kid):
                continue
            try:
                key.verify(signature, body)
            except InvalidSignature:
                continue
            if line not in have:
                row.note = row.note + line + "\n"
            return True
    return False


def _agent_answer(answer: Any) -> dict[str, str]:
    """The agent's answer to a witness request, its fields checked; CheckpointInvalid when it is not one."""
    fields = ("note", "witness_key", "witness_key_id")
    if not isinstance(answer, dict) or not all(isinstance(answer.get(f), str) for f in fields):
        raise CheckpointInvalid("the node's answer to the witness request is not a witness document")
    if len(answer["note"]) > MAX_NOTE:
        raise CheckpointInvalid("the node's co-signed note is too long")
    return {f: answer[f] for f in fields}


def witness_node(repo: Repository, node: Node, *, introduce: bool = False) -> dict[str, Any]:
    """Bring one node up to the catalog's latest checkpoint; a report of what it took or why it did not."""
    settings = repo.settings
    origin = settings.checkpoints.origin
    adapter = repo.adapter(node)
    agent = adapter.features.provider(FEATURE_WITNESS)
    report: dict[str, Any] = {"node": node.name, "witness": "agent" if agent is not None else "record"}
    try:
        held = read_latest(adapter, origin)
        report["held_before"] = size = held["size"] if held else 0
        with repo.catalog.session() as s:
            steps = [(cp.size, cp.note) for cp in _steps(s, size, held["note"] if held else None, origin)]
        for step_size, note_text in steps:
            with repo.catalog.session() as s:
                proof = (compute(s, lambda lk: merkle.consistency_proof(size, step_size, lk))
                         if 0 < size <= step_size else [])
                leaves = _event_hashes(s, size, step_size) if step_size >= size else b""
            document = {"note": note_text, "consistency": [base64.b64encode(p).decode() for p in proof],
                        "leaves": base64.b64encode(leaves).decode(),
                        "log_keys": _log_keys(settings, (_introduced(note_text),) if introduce else ()),
                        "introduce": introduce}
            if agent is not None:
                answer = _agent_answer(agent.witness(document))
                report["witness_key"] = answer["witness_key_id"]
                if pin_on_first_answer(settings, node.name, answer["witness_key"]):
                    report["witness_key_pinned"] = True
                with repo.catalog.session() as s:
                    if not _add_cosignature(s, step_size, answer["note"], answer["witness_key"]):
                        raise CheckpointInvalid(f"node {node.name} answered without a valid co-signature by its "
                                                "witness key")
            else:
                held = _write_record(settings, adapter, held, note_text, proof, leaves, introduce)
            size = step_size
        report.update(status="witnessed" if steps else "up to date", size=size, steps=len(steps))
    except PreservationError as e:
        report.update(status="refused" if e.code in ("E702", "E703") else "failed", error=e.to_dict())
        log.warning("node %s did not witness the log: %s", for_log(node.name), for_log(e))
    except (KeyError, TypeError, ValueError) as e:
        report.update(status="failed", error={"code": "E702", "message": f"unreadable witness record: {e}"})
    return report


def _introduced(note_text: str) -> str:
    return parse_body(note_text)[4] or ""


def _write_record(settings: Settings, adapter: StorageAdapter, held: dict[str, Any] | None, text: str,
                  proof: list[bytes], leaves: bytes, introduce: bool) -> dict[str, Any]:
    """The coordinator writes a ``file://`` or ``s3://`` node's record, after the check an agent makes."""
    keys = checkpoints.public_keys(settings)
    if introduce and _introduced(text):
        name, kid, key = parse_verifier_key(_introduced(text))
        keys[kid] = (name, key)
    record = next_record(held, verify_note(text, keys), proof, leaves)
    record["log_keys"] = _log_keys(settings)
    store(adapter, record, leaves)
    return record


def _witnessing_nodes(repo: Repository) -> list[Node]:
    with repo.catalog.session() as s:
        nodes = list(s.scalars(select(Node).where(readable_node()).order_by(Node.name)))
        for n in nodes:
            s.expunge(n)
    return nodes


def witness_nodes(repo: Repository, *, introduce: bool = False) -> dict[str, Any]:
    """Every node that is not offline brought up to the latest checkpoint: one report per node."""
    reports = [witness_node(repo, node, introduce=introduce) for node in _witnessing_nodes(repo)]
    return {"nodes": reports, "count": len(reports),
            "refused": sum(r["status"] == "refused" for r in reports)}


def checkpoint_and_witness(repo: Repository) -> dict[str, Any]:
    """Sign a checkpoint now and have every node witness it (``preserve events checkpoint``)."""
    with repo.catalog.session() as s:
        made = checkpoints.make_checkpoint(s, repo.settings)
    return {**made, "witnesses": witness_nodes(repo)}


def checkpoint_and_witness_if_due(repo: Repository) -> dict[str, Any]:
    """The scheduler's task: a checkpoint when one is due, then every node brought up to the latest."""
    made = checkpoints.checkpoint_if_due(repo)
    if repo.settings.checkpoints.key is None:
        return made
    with repo.catalog.session() as s:
        if checkpoints.latest_checkpoint(s) is None:
            return made
    witnessed = witness_nodes(repo)
    return {**made, "witnessed": sum(r["status"] == "witnessed" for r in witnessed["nodes"]),
            "refused": witnessed["refused"]}


# --- checking the log against what the nodes hold --------------------------------------------------------------

def _held(repo: Repository, node: Node, log_keys) -> tuple[list[dict[str, Any]], list[str]]:
    adapter = repo.adapter(node)
    agent = adapter.features.provider(FEATURE_WITNESS) is not None
    problems = []
    records = []
    for record in held_records(adapter, repo.settings.checkpoints.origin):
        try:
            note = verify_note(record["note"], log_keys)
        except CheckpointInvalid as e:
            problems.append(f"checkpoint {record['size']}: {e}")
            continue
        if note.size != record["size"] or base64.b64encode(note.root).decode() != record["root"]:
            problems.append(f"checkpoint {record['size']}: the record differs from its signed note")
            continue
        if agent and not cosigners(record["note"], keys_for(repo.settings, node.name, note.size)):
            # its current key, or a key it used before a rotation on checkpoints up to then
            problems.append(f"checkpoint {record['size']}: not co-signed by the node's witness key")
            continue
        records.append({"size": note.size, "root": note.root, "from": record.get("from", 0)})
    return records, problems


def verify_witnesses(repo: Repository) -> dict[str, Any]:
    """The event chain, then the log's tree recomputed from its events compared with every checkpoint every node
    holds.  ``first_bad_event`` names the first event that is not what a node witnessed."""
    settings = repo.settings
    log_keys = dict(checkpoints.public_keys(settings))
    nodes = _witnessing_nodes(repo)
    per_node: dict[str, dict[str, Any]] = {}
    wanted: dict[int, list[tuple[str, bytes]]] = {}
    for node in nodes:
        try:
            records, problems = _held(repo, node, log_keys)
        except (StorageError, ValueError, KeyError) as e:
            per_node[node.name] = {"node": node.name, "ok": False, "checkpoints": 0,
                                   "problems": [f"its witness records cannot be read: {e}"]}
            continue
        per_node[node.name] = {"node": node.name, "ok": not problems, "checkpoints": len(records),
                               "latest": records[-1]["size"] if records else 0, "problems": problems,
                               "_records": {r["size"]: r for r in records}}
        for r in records:
            wanted.setdefault(r["size"], []).append((node.name, r["root"]))
    with repo.catalog.session() as s:
        chain = verify_chain(s)
        mismatched, n = _compare_roots(s, wanted)
        for name, size in mismatched:
            entry = per_node[name]
            if entry.get("first_bad") is None:
                node = next(x for x in nodes if x.name == name)
                entry["first_bad"] = _first_bad_event(repo, s, node, entry["_records"][size], n)
                entry["ok"] = False
    first = None
    for entry in per_node.values():
        entry.pop("_records", None)
        bad = entry.get("first_bad")
        if bad is not None and (first is None or bad["seq"] < first["seq"]):
            first = {**bad, "node": entry["node"]}
    ok = chain.ok and all(e["ok"] for e in per_node.values())
    return {"ok": ok, "events_checked": n, "chain": chain.to_dict(), "nodes": list(per_node.values()),
            "count": len(per_node), "first_bad_event": first}


def _compare_roots(session: Session, wanted: dict[int, list[tuple[str, bytes]]]) -> tuple[list[tuple[str, int]], int]:
    """One pass over the events, the tree's right edge kept (memory O(log n)); (node, size) of each held
    checkpoint whose root differs, or which holds more events than the log (truncation)."""
    sizes = sorted(wanted)
    bad: list[tuple[str, int]] = []
    edge: list[bytes] = []
    n, k = 0, 0
    while k < len(sizes) and sizes[k] == 0:
        k += 1
    rows = session.execute(select(Event.seq, Event.hash).order_by(Event.seq).execution_options(yield_per=5000))
    for seq, h in rows:
        if seq != n + 1 or k >= len(sizes):
            break
        edge = extend(edge, n, bytes.fromhex(h))
        n = seq
        if sizes[k] == n:
            root = edge_root(edge)
            bad += [(name, n) for name, held_root in wanted[n] if held_root != root]
            k += 1
    bad += [(name, size) for size in sizes[k:] for name, _root in wanted[size]]
    return bad, n


def _first_bad_event(repo: Repository, session: Session, node: Node, record: dict[str, Any], n: int) -> dict[str, Any]:
    """The first event after ``record["from"]`` whose hash is not the one the node keeps (or that is missing)."""
    start, size = record["from"], record["size"]
    try:
        kept = read_leaves(repo.adapter(node), repo.settings.checkpoints.origin, size) if size > start else b""
    except StorageError:
        kept = b""
    catalog = _event_hashes(session, start, size)
    seq = None
    for i in range(0, min(len(kept), len(catalog)), merkle.HASH_SIZE):
        if kept[i:i + merkle.HASH_SIZE] != catalog[i:i + merkle.HASH_SIZE]:
            seq = start + i // merkle.HASH_SIZE + 1
            break
    if seq is None and len(catalog) < len(kept):
        seq = start + len(catalog) // merkle.HASH_SIZE + 1
    if seq is None:
        return {"seq": start + 1, "event_id": None, "checkpoint": size,
                "reason": f"events {start + 1}..{size} do not give the root the node holds"}
    event_id = session.scalar(select(Event.event_id).where(Event.seq == seq))
    if event_id is None:
        reason = f"the log holds {n} events; the node witnessed {size} (truncated from event {seq})"
    else:
        reason = f"event {seq} is not the event the node witnessed in its checkpoint of {size} events (rewritten)"
    return {"seq": seq, "event_id": event_id, "checkpoint": size, "reason": reason}


# --- a lost signing key ----------------------------------------------------------------------------------------

def introduce_key(repo: Repository) -> dict[str, Any]:
    """Replace a lost signing key: a new key names itself in a checkpoint it signs, and is installed at
    ``checkpoints.key`` only once a quorum of witnesses co-signed that checkpoint.  Run again after
    QuorumNotReached: the same new key and checkpoint are sent again."""
    settings = repo.settings
    cfg = settings.checkpoints
    keys = keys_dir(settings)
    pending_path = keys / INTRODUCING_DIR / cfg.key.name
    if not pending_path.exists():
        generate_key(pending_path, cfg.origin)
    pending = _pending_key(pending_path, cfg.origin)
    vkey = next(f.read_text(encoding="utf-8").strip() for f in pending_path.parent.glob(f"*+{pending.key_id}.pub"))
    with repo.catalog.session() as s:
        row = s.scalars(select(Checkpoint).where(Checkpoint.key_id == pending.key_id)
                        .order_by(Checkpoint.size.desc()).limit(1)).first()
        if row is None:
            record_event(s, KEY_INTRODUCTION, SUCCESS, detail={"key": vkey, "reason": "the signing key was lost"})
            made = checkpoints.make_checkpoint(s, settings, key=pending, introduces=vkey)
            size = made["size"]
        else:
            size = row.size
    witnessed = witness_nodes(repo, introduce=True)
    with repo.catalog.session() as s:
        note = s.get(Checkpoint, size).note
    need = quorum(settings)
    known = {w["key_id"]: (w["name"], w["key"]) for w in witness_keys(settings).values()}
    got = len(cosigners(note, known))
    result = {"key_id": pending.key_id, "verifier_key": vkey, "checkpoint": size, "cosigned_by": got,
              "quorum": need, "witnesses": witnessed}
    if got < need:
        raise QuorumNotReached(f"key {pending.key_id} is co-signed by {got} witnesses of the {need} needed",
                               **{k: v for k, v in result.items() if k != "witnesses"})
    retired = None
    if cfg.key.exists():
        old = checkpoints.signing_key(settings)
        retired = old.key_id
        os.replace(cfg.key, cfg.key.with_name(f"{cfg.key.name}.retired-{old.key_id}"))
    os.replace(pending_path, cfg.key)
    for pub in pending_path.parent.glob(f"*+{pending.key_id}.pub"):
        os.replace(pub, keys / pub.name)
    log.warning("signing key %s installed after a lost key, co-signed by %d witnesses", pending.key_id, got)
    return {**result, "retired": retired, "installed": True}


def _pending_key(path: Path, origin: str) -> SigningKey:
    try:
        private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as e:
        raise CheckpointKeyMissing(f"the new key {path} cannot be read ({type(e).__name__})") from e
    return SigningKey(origin, key_id(origin, raw_public(private.public_key())), private)
