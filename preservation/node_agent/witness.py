"""The agent as a witness of the coordinator's event log: ``POST /v1/witness`` (docs/evidence.md).

The coordinator sends each new checkpoint note with a consistency proof from the
last checkpoint this node holds and the hashes of the events added since.  The
agent checks the note's signature by a log key it trusts, then
:func:`preservation.witness_records.next_record` (proof, and the events leading to
the signed root), co-signs the note with its own Ed25519 key and stores what it
signed on its own storage, under ``.preserve/witness/``, which its object API never
writes or deletes for anyone.  It refuses a checkpoint that does not extend the last
one it signed (a fork, truncation or rewrite) with ``E703`` (HTTP 409).  It never
needs the catalog.

Log keys: the first checkpoint a node takes pins the keys sent with it.  A later
key is trusted when it signs a note that a trusted key signs too (a rotation), or
when the note is a key-introduction checkpoint naming it and the coordinator says
so (``introduce``): after a lost key.  Such a key counts for verifiers only with a
quorum of witness co-signatures.
"""

from __future__ import annotations

import base64
import binascii
import logging
import stat
import threading
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from preservation import merkle
from preservation.errors import CheckpointInvalid, ConfigError, InvalidRequest, ReadOnlyStorage
from preservation.notes import SigningKey, cosign, cosigners, parse_body, verify_note
from preservation.signing_keys import key_id, parse_verifier_key, raw_public, verifier_key
from preservation.text import for_log
from preservation.witness_records import MAX_LEAVES, is_witness_key, next_record, read_latest, store
from storage_adapters import StorageAdapter

from .responses import adapter_of, json_body, json_response

log = logging.getLogger("preservation.node_agent.witness")

MAX_LOG_KEYS = 32
_lock = threading.Lock()


def load_witness_key(path: str | Path) -> SigningKey:
    """The agent's witness key (PEM, mode 0600) and its name, from the verifier key file beside it
    (``preserve node witness-key`` writes both); raises ConfigError."""
    file = Path(path)
    try:
        mode = file.stat().st_mode
        key = serialization.load_pem_private_key(file.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as e:
        raise ConfigError(f"cannot read the witness key {file}: {e}") from e
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"the witness key {file} is readable by other users: chmod 600 it")
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"the witness key {file} is not an Ed25519 key")
    public = raw_public(key.public_key())
    for pub in sorted(file.parent.glob("*.pub")):
        try:
            name, kid, found = parse_verifier_key(pub.read_text(encoding="utf-8"))
        except (OSError, CheckpointInvalid):
            continue
        if raw_public(found) == public:
            return SigningKey(name, kid, key)
    raise ConfigError(f"no public key file (<name>+<key id>.pub) beside the witness key {file}")


def refuse_witness_key(key: str) -> None:
    """Raise ReadOnlyStorage for a write or delete under the witness records (only the agent writes them)."""
    if is_witness_key(key):
        raise ReadOnlyStorage("the witness records on this node are written by its agent only", key=key,
                              location="node agent")


def _log_keys(values: object) -> dict[str, tuple[str, Any]]:
    if not isinstance(values, list) or not 1 <= len(values) <= MAX_LOG_KEYS or not all(isinstance(v, str)
                                                                                       for v in values):
        raise InvalidRequest(f"'log_keys' must be a list of 1 to {MAX_LOG_KEYS} verifier keys")
    keys = {}
    for value in values:
        name, kid, key = parse_verifier_key(value)
        keys[kid] = (name, key)
    return keys


def _hashes(document: dict[str, Any]) -> tuple[list[bytes], bytes]:
    proof, leaves = document.get("consistency", []), document.get("leaves", "")
    if not isinstance(proof, list) or len(proof) > 128 or not all(isinstance(p, str) for p in proof):
        raise InvalidRequest("'consistency' must be a list of at most 128 base64 hashes")
    if not isinstance(leaves, str) or len(leaves) > (MAX_LEAVES * merkle.HASH_SIZE * 4) // 3 + 4:
        raise InvalidRequest(f"'leaves' must be the base64 of at most {MAX_LEAVES} event hashes")
    try:
        path = [base64.b64decode(p, validate=True) for p in proof]
        raw = base64.b64decode(leaves, validate=True)
    except (ValueError, binascii.Error) as e:
        raise InvalidRequest("'consistency' and 'leaves' must be base64") from e
    if any(len(p) != merkle.HASH_SIZE for p in path) or len(raw) % merkle.HASH_SIZE:
        raise InvalidRequest("hashes are 32 bytes each")
    return path, raw


def _trusted(text: str, previous: dict[str, Any] | None, offered: dict[str, tuple[str, Any]],
             introduce: bool) -> tuple[Any, list[str]]:
    """The note checked against the log keys this node trusts, and the keys it trusts from now on."""
    pinned = _log_keys(previous["log_keys"]) if previous else dict(offered)
    try:
        note = verify_note(text, pinned)
    except CheckpointInvalid:
        if not introduce:
            raise
        origin, _size, _root, _time, introduces = parse_body(text)
        if introduces is None:
            raise CheckpointInvalid("'introduce' is set but the checkpoint introduces no key") from None
        name, kid, key = parse_verifier_key(introduces)
        note = verify_note(text, {kid: (name, key)})
        pinned[kid] = (name, key)
        log.warning("log %s: key %s introduced without the old key's signature (a lost key)", for_log(origin), kid)
    for kid in cosigners(text, {k: v for k, v in offered.items() if k not in pinned and v[0] == note.origin}):
        pinned[kid] = offered[kid]  # signed beside a trusted key: a rotation
    return note, sorted(verifier_key(name, raw_public(key)) for name, key in pinned.values())


def take_checkpoint(adapter: StorageAdapter, witness: SigningKey, document: dict[str, Any]) -> dict[str, Any]:
    """Check, co-sign and store one checkpoint; raises WitnessRefused, CheckpointInvalid or InvalidRequest."""
    text = document.get("note")
    if not isinstance(text, str):
        raise InvalidRequest("'note' must be the checkpoint's text")
    origin = parse_body(text)[0]
    proof, leaves = _hashes(document)
    offered = _log_keys(document.get("log_keys"))
    with _lock:  # one checkpoint at a time: each must extend the one taken before it
        previous = read_latest(adapter, origin)
        note, trusted = _trusted(text, previous, offered, document.get("introduce") is True)
        record = next_record(previous, note, proof, leaves)
        if previous and previous["size"] == note.size:
            # the same checkpoint again (a new log key's signature added): keep every signature seen
            record["note"] = _merged(previous["note"], text)
        record["note"] = cosign(record["note"], witness)
        record["log_keys"] = trusted
        store(adapter, record, leaves)
    log.info("witnessed log %s at %d events (from %d)", for_log(origin), note.size, record["from"])
    return {"accepted": True, "origin": origin, "size": note.size, "from": record["from"], "note": record["note"],
            "witness_key": verifier_key(witness.name, raw_public(witness.private.public_key())),
            "witness_key_id": key_id(witness.name, raw_public(witness.private.public_key()))}


def _merged(held: str, offered: str) -> str:
    """``held`` with the signature lines of ``offered`` it lacks, when both sign the same text."""
    if held.partition("\n\n")[0] != offered.partition("\n\n")[0]:
        return held
    lines = held.partition("\n\n")[2].splitlines(keepends=True)
    extra = [line for line in offered.partition("\n\n")[2].splitlines(keepends=True) if line not in lines]
    return held + "".join(extra)


async def witness_checkpoint(request: Request) -> Response:
    witness = request.app.state.config.witness_key
    if witness is None:
        raise InvalidRequest("this node agent is not a witness: its operator starts it with --witness-key")
    document = await json_body(request)
    answer = await run_in_threadpool(take_checkpoint, adapter_of(request), witness, document)
    return json_response(answer)


async def witness_public_key(request: Request) -> Response:
    """``GET /v1/witness/key``: this agent's witness public key, which the coordinator's operator imports after
    confirming its fingerprint with this node's operator (``preserve witness-keys trust``)."""
    witness = request.app.state.config.witness_key
    if witness is None:
        raise InvalidRequest("this node agent is not a witness: its operator starts it with --witness-key")
    public = raw_public(witness.private.public_key())
    return json_response({"witness_key": verifier_key(witness.name, public),
                          "witness_key_id": key_id(witness.name, public)})
