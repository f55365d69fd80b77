"""Signed checkpoints of the event log and inclusion proofs against them (docs/evidence.md).

A checkpoint is a signed note in the form transparency logs use (C2SP
signed-note / tlog-checkpoint)::

    <origin>
    <tree size>
    <base64 root hash>
    time <UTC time, ISO 8601>
                                    (blank line)
    — <key name> <base64(key hash[4] || Ed25519 signature)>

The signature covers the text above the blank line.  The key name is the
origin; the key hash is the first four bytes of SHA-256(name || "\\n" || 0x01
|| public key), shown as eight hex digits (the key id).  The coordinator's
private key is a file (0600) named in the config (``checkpoints.key``), never
in the catalog; its public keys, the current one and every retired one, lie
beside it as ``<name>+<key id>.pub`` holding the verifier key
``<name>+<key id>+<base64(0x01 || public key)>``, so that checkpoints signed
before a rotation still verify.
"""

from __future__ import annotations

import base64
import os
from datetime import datetime, timezone
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from preservation import merkle
from preservation.catalog.evidence_models import Checkpoint, compute
from preservation.catalog.models import ChainHead, Event
from preservation.errors import CheckpointInvalid, CheckpointKeyMissing, NotCheckpointed, NotFound
from preservation.events import event_to_dict
from preservation.repository import Repository
from preservation.settings import Settings
from preservation.notes import MAX_NOTE, Note, SigningKey, body_of, sign_note, signature_line, verify_note
from preservation.signing_keys import generate_key, key_id, load_private_key, parse_verifier_key, raw_public

__all__ = ["MAX_NOTE", "Note", "SigningKey", "verify_note"]

PROOF_FORMAT = "preserve-inclusion-proof/1"


def signing_key(settings: Settings) -> SigningKey:
    cfg = settings.checkpoints
    if cfg.key is None or not cfg.origin:
        raise CheckpointKeyMissing("checkpoints.key and checkpoints.origin are not both set in the config")
    key = load_private_key(cfg.key)  # the same key signs package evidence (node_records.evidence_signer)
    return SigningKey(cfg.origin, key_id(cfg.origin, raw_public(key.public_key())), key)


def public_keys(settings: Settings) -> dict[str, tuple[str, Ed25519PublicKey]]:
    """Every public key beside the signing key (current and retired), by key id."""
    cfg = settings.checkpoints
    if cfg.key is None:
        raise CheckpointKeyMissing("checkpoints.key is not set in the config")
    out = {}
    for f in sorted(cfg.key.parent.glob("*.pub")):
        name, kid, key = parse_verifier_key(f.read_text(encoding="utf-8"))
        out[kid] = (name, key)
    return out


def rotate_key(settings: Settings) -> dict[str, str]:
    """Replace the signing key: the old private key is retired (kept, 0600), both public keys stay beside it."""
    current = signing_key(settings)
    path = settings.checkpoints.key
    retired = path.with_name(f"{path.name}.retired-{current.key_id}")
    os.replace(path, retired)
    vkey = generate_key(path, current.name)
    return {"retired": current.key_id, "key": parse_verifier_key(vkey)[1], "verifier_key": vkey}


def undo_rotation(settings: Settings, rotated: dict[str, str]) -> None:
    """Put the retired key back and remove the new one's public key (a rotation whose first checkpoint failed)."""
    path = settings.checkpoints.key
    for f in path.parent.glob(f"*+{rotated['key']}.pub"):
        f.unlink()
    os.replace(path.with_name(f"{path.name}.retired-{rotated['retired']}"), path)


# --- checkpoints in the catalog --------------------------------------------------------------------------------

def make_checkpoint(session: Session, settings: Settings, *, now: datetime | None = None,
                    key: SigningKey | None = None, introduces: str | None = None) -> dict[str, Any]:
    """Sign the log as it is now (the chain head locked, so no append slips in).

    When nothing was appended since the latest checkpoint, that one is returned; if a new key signs now (after a
    rotation) it adds its signature to that checkpoint's note, so that the new key is introduced by a checkpoint
    it signed beside the old key.  ``key`` and ``introduces`` sign with a key not installed yet, naming it in the
    note (a key-introduction checkpoint after a lost key: ``witness.introduce_key``).
    """
    key = key or signing_key(settings)
    head = session.execute(select(ChainHead).where(ChainHead.id == 1).with_for_update()).scalar_one()
    size = head.seq
    latest = latest_checkpoint(session)
    if latest is not None and latest.size == size and introduces is None:
        if latest.key_id != key.key_id:
            latest.note = latest.note + signature_line(key, body_of(latest.note))
            latest.key_id = key.key_id
            session.flush()
        return {**_row(latest), "new": False}
    root = compute(session, lambda lk: merkle.root_hash(size, lk))
    if latest is not None:
        proof = compute(session, lambda lk: merkle.consistency_proof(latest.size, size, lk))
        if not merkle.verify_consistency(latest.size, size, latest.root, root, proof):
            raise CheckpointInvalid(f"the log is not consistent with the checkpoint of size {latest.size}: "
                                    "it was rewritten or truncated (see `preserve events verify`)")
    time = (now or datetime.now(timezone.utc)).replace(microsecond=0)
    note = sign_note(key, size, root, time, introduces)
    row = Checkpoint(size=size, root=root, made_at=time.replace(tzinfo=None), key_id=key.key_id, note=note)
    session.add(row)
    session.flush()
    return {**_row(row), "new": True}


def _row(cp: Checkpoint) -> dict[str, Any]:
    return {"size": cp.size, "root": base64.b64encode(cp.root).decode(), "time": cp.made_at.isoformat() + "Z",
            "key_id": cp.key_id, "note": cp.note}


def latest_checkpoint(session: Session) -> Checkpoint | None:
    return session.scalars(select(Checkpoint).order_by(Checkpoint.size.desc()).limit(1)).first()


def checkpoint_due(session: Session, settings: Settings, now: datetime | None = None) -> bool:
    """Whether the scheduler should sign: every ``every_events`` new events, or ``every_seconds`` after the last one."""
    size = session.scalar(select(ChainHead.seq).where(ChainHead.id == 1)) or 0
    latest = latest_checkpoint(session)
    if latest is None:
        return size > 0
    if size == latest.size:
        return False
    if size - latest.size >= settings.checkpoints.every_events:
        return True
    now = (now or datetime.now(timezone.utc)).replace(tzinfo=None)
    return (now - latest.made_at).total_seconds() >= settings.checkpoints.every_seconds


def inclusion_path(session: Session, seq: int, size: int) -> list[bytes]:
    """The RFC 9162 audit path of event ``seq`` in the tree of ``size`` events, from the stored hashes."""
    return compute(session, lambda lk: merkle.inclusion_proof(seq - 1, size, lk))


def prove_event(session: Session, event_id: str) -> dict[str, Any]:
    """An inclusion proof of one event against the latest checkpoint: what ``tools/verify_proof.py`` checks."""
    ev = session.scalars(select(Event).where(Event.event_id == event_id)).first()
    if ev is None:
        raise NotFound(f"no event {event_id!r}")
    latest = latest_checkpoint(session)
    if latest is None or latest.size < ev.seq:
        raise NotCheckpointed(f"event {event_id} is not under a signed checkpoint yet")
    index, size = ev.seq - 1, latest.size
    proof = inclusion_path(session, ev.seq, size)
    return {
        "format": PROOF_FORMAT,
        "event": event_to_dict(ev),
        "leaf_index": index,
        "tree_size": size,
        "inclusion": [base64.b64encode(p).decode() for p in proof],
        "checkpoint": latest.note,
        # the checkpoints that brought in a key after a lost one: a verifier trusts such a key only with a quorum
        # of witness co-signatures (witness.introduce_key)
        "key_introductions": list(session.scalars(select(Checkpoint.note).where(Checkpoint.note.contains("\nkey "))
                                                  .order_by(Checkpoint.size))),
    }


def check_checkpoints(session: Session, settings: Settings, *, full: bool = False) -> dict[str, Any]:
    """Every stored checkpoint: its signature, and a consistency proof from it to the log as stored now.

    The first that fails names the range of events that changed (after the last checkpoint that holds).
    ``full`` also recomputes the tree from the events (a scan of the log) and compares it with every root.
    """
    keys = public_keys(settings)
    size = session.scalar(select(func.max(Event.seq))) or 0
    root = compute(session, lambda lk: merkle.root_hash(size, lk))
    checked, good = 0, 0
    for cp in session.scalars(select(Checkpoint).order_by(Checkpoint.size)):
        checked += 1
        try:
            note = verify_note(cp.note, keys)
        except CheckpointInvalid as e:
            return _bad(checked, good, size, cp.size, str(e))
        if note.size != cp.size or note.root != cp.root:
            return _bad(checked, good, size, cp.size, "the stored row differs from its signed note")
        if cp.size > size:
            return _bad(checked, good, size, cp.size, f"the log holds {size} events, fewer than this checkpoint signed "
                                                     "(truncated)")
        proof = compute(session, lambda lk: merkle.consistency_proof(cp.size, size, lk))
        if not merkle.verify_consistency(cp.size, size, note.root, root, proof):
            return _bad(checked, good, size, cp.size, f"the log is not consistent with this checkpoint: events "
                                                     f"{good + 1}..{cp.size} were rewritten")
        good = cp.size
    if full:
        bad = _recompute_against(session, keys)
        if bad is not None:
            return _bad(checked, *bad)
    return {"ok": True, "checkpoints_checked": checked, "tree_size": size, "root": base64.b64encode(root).decode()}


def _recompute_against(session: Session, keys) -> tuple[int, int, int, str] | None:
    """Recompute the tree from the events themselves (one pass, memory O(log n)) and compare it with each
    signed checkpoint's root: catches events changed under a stored tree that was left as it was."""
    sizes = [(cp.size, cp.root) for cp in session.scalars(select(Checkpoint).order_by(Checkpoint.size))]
    if not sizes:
        return None
    frontier: dict[int, bytes] = {}
    good, k, n = 0, 0, 0
    for seq, h in session.execute(select(Event.seq, Event.hash).order_by(Event.seq).execution_options(yield_per=5000)):
        if seq != n + 1:
            break
        n = seq
        lh = merkle.leaf_hash(bytes.fromhex(h))
        made = list(merkle.completed_nodes(seq - 1, lh, lambda lv, ix: frontier[lv]))
        frontier[0] = lh
        for lv, _ix, nh in made:
            frontier[lv] = nh
        while k < len(sizes) and sizes[k][0] == n:
            if _frontier_root(frontier, n) != sizes[k][1]:
                return good, n, n, (f"the events do not hash to the root this checkpoint signed: events "
                                    f"{good + 1}..{n} were changed")
            good, k = n, k + 1
    if k < len(sizes):
        return good, n, sizes[k][0], f"the log holds events 1..{n} in order, fewer than checkpoint {sizes[k][0]} signed"
    return None


def _frontier_root(frontier: dict[int, bytes], n: int) -> bytes:
    h = None
    for lv in range(n.bit_length()):
        if n >> lv & 1:
            h = frontier[lv] if h is None else merkle.node_hash(frontier[lv], h)
    return h


def _bad(checked: int, good: int, size: int, at: int, reason: str) -> dict[str, Any]:
    return {"ok": False, "checkpoints_checked": checked, "tree_size": size,
            "first_bad_checkpoint": at, "consistent_up_to": good, "reason": reason}


def checkpoint_if_due(repo: Repository) -> dict[str, Any]:
    """The scheduler's task: sign a checkpoint when ``checkpoints.every_events`` events or ``every_seconds`` have
    passed since the last one (a home without a key configured is skipped, and says so)."""
    settings = repo.settings
    if settings.checkpoints.key is None:
        return {"checkpoint": None, "reason": "no checkpoints.key configured"}
    with repo.catalog.session() as s:
        if not checkpoint_due(s, settings):
            return {"checkpoint": None}
        made = make_checkpoint(s, settings)
    return {"checkpoint": made["size"], "key_id": made["key_id"]}
