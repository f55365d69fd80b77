#!/usr/bin/env python3
"""Check an inclusion proof printed by `preserve events prove` with the log's public key alone.

    python3 verify_proof.py PROOF.json PUBLIC_KEY [PUBLIC_KEY ...] [--witness KEY ...] [--quorum N]

PUBLIC_KEY is a file holding the log's verifier key, one line
``<name>+<key id>+<base64(0x01 || Ed25519 public key)>`` (the ``*.pub`` files
beside the coordinator's key; give every key the log has used).  Each
``--witness`` file is a witness node's verifier key (``keys/witnesses/*.pub``):
its co-signatures on the checkpoint are counted, and a log key introduced after
a lost key (a checkpoint naming it in a ``key`` line, among the proof's
``key_introductions``) is accepted only when at least ``--quorum`` of them
(default: a majority of the witness keys given) co-signed its introduction.  Needs
Python 3.9+ and the ``cryptography`` package, nothing else: a third party runs
it without the repository's software or catalog.  The algorithm, step by step,
is in docs/evidence.md; in short:

1. the checkpoint note's signature checks out under a given key (signed-note
   form: the text above the blank line, signed with Ed25519; the signature
   line carries the key's 4-byte id before the signature);
2. the event's fields hash to the event's hash:
   SHA-256(prev_hash || "\\n" || canonical JSON of the fields);
3. the leaf SHA-256(0x00 || event hash) and the proof's hashes give the
   checkpoint's root (RFC 9162, section 2.1.3.2).

Exit 0 when all three hold, 1 when the proof fails, 2 when the input cannot
be read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

FORMAT = "preserve-inclusion-proof/1"
HASHED_FIELDS = ("seq", "event_id", "event_type", "occurred_at", "outcome", "agent", "package_id", "replica_id",
                 "node_name", "job_id", "policy", "detail")


class Failed(Exception):
    pass


def parse_key(line: str, where: str) -> tuple[str, str, Ed25519PublicKey]:
    name, kid, b64 = line.strip().split("+", 2)
    raw = base64.b64decode(b64, validate=True)
    if len(raw) != 33 or raw[0] != 1:
        raise ValueError(f"{where}: not an Ed25519 verifier key")
    if hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4].hex() != kid:
        raise ValueError(f"{where}: the key id does not match the key")
    return name, kid, Ed25519PublicKey.from_public_bytes(raw[1:])


def read_keys(paths: list[str]) -> dict[str, tuple[str, Ed25519PublicKey]]:
    keys = {}
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    continue
                name, kid, key = parse_key(line, path)
                keys[kid] = (name, key)
    return keys


def split_note(note: str) -> tuple[str, list[str], list[tuple[str, str, bytes]]]:
    """(signed body, its lines, signature lines as (name, key id, signature))."""
    body, sep, sigs = note.partition("\n\n")
    if not sep:
        raise Failed("the checkpoint has no signature")
    body += "\n"
    lines = body.split("\n")[:-1]
    if (len(lines) not in (4, 5) or not re.fullmatch(r"0|[1-9][0-9]*", lines[1]) or not lines[3].startswith("time ")
            or (len(lines) == 5 and not lines[4].startswith("key "))):
        raise Failed("the checkpoint is not origin, size, root hash, time (and a key it introduces)")
    signatures = []
    for line in sigs.split("\n"):
        m = re.fullmatch("\u2014 (\\S+) ([A-Za-z0-9+/=]+)", line)
        if m:
            raw = base64.b64decode(m.group(2))
            signatures.append((m.group(1), raw[:4].hex(), raw[4:]))
    return body, lines, signatures


def cosigners(note: str, witnesses: dict[str, tuple[str, Ed25519PublicKey]]) -> set[str]:
    """The given witnesses whose co-signature on the note is valid."""
    body, _lines, signatures = split_note(note)
    good = set()
    for name, kid, sig in signatures:
        if kid in witnesses and witnesses[kid][0] == name:
            try:
                witnesses[kid][1].verify(sig, body.encode("utf-8"))
            except InvalidSignature:
                continue
            good.add(kid)
    return good


def introduced_keys(notes: list[str], keys: dict, witnesses: dict, quorum: int) -> dict:
    """``keys`` and every log key a key-introduction note brings in with at least ``quorum`` witness
    co-signatures (each signed by the key it names, of the same log)."""
    keys = dict(keys)
    origins = {name for name, _key in keys.values()}
    for note in notes:
        _body, lines, _signatures = split_note(note)
        if len(lines) != 5 or lines[0] not in origins:
            continue
        name, kid, key = parse_key(lines[4][4:], "a key-introduction checkpoint")
        if name != lines[0]:
            continue
        check_note(note, {kid: (name, key)})
        if len(cosigners(note, witnesses)) >= quorum:
            keys[kid] = (name, key)
    return keys


def check_note(note: str, keys: dict[str, tuple[str, Ed25519PublicKey]]) -> tuple[str, int, bytes, str, str]:
    """(origin, size, root, time, key id) of a checkpoint signed by one of ``keys``."""
    body, lines, signatures = split_note(note)
    root = base64.b64decode(lines[2], validate=True)
    for name, kid, sig in signatures:
        if kid in keys and keys[kid][0] == name == lines[0]:
            try:
                keys[kid][1].verify(sig, body.encode("utf-8"))
            except InvalidSignature:
                raise Failed(f"the checkpoint's signature by key {kid} is wrong") from None
            return lines[0], int(lines[1]), root, lines[3][5:], kid
    raise Failed("the checkpoint is not signed by any key given")


def event_hash(event: dict) -> str:
    fields = {k: event[k] for k in HASHED_FIELDS}
    body = json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256((event["prev_hash"] + "\n" + body).encode("utf-8")).hexdigest()


def node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_inclusion(index: int, size: int, leaf: bytes, path: list[bytes]) -> bytes | None:
    """RFC 9162 2.1.3.2: the root the path leads to, or None when the path does not fit the tree."""
    if not 0 <= index < size:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def verify(proof: dict, keys: dict, witnesses: dict | None = None, quorum: int | None = None) -> str:
    if proof.get("format") != FORMAT:
        raise Failed(f"not a {FORMAT} document")
    witnesses = witnesses or {}
    if witnesses:
        need = quorum if quorum is not None else len(witnesses) // 2 + 1
        keys = introduced_keys(list(proof.get("key_introductions") or []), keys, witnesses, need)
    origin, size, root, time, kid = check_note(proof["checkpoint"], keys)
    event = proof["event"]
    if event_hash(event) != event["hash"]:
        raise Failed("the event's fields do not hash to its hash (the event was changed)")
    if proof["tree_size"] != size or proof["leaf_index"] != event["seq"] - 1:
        raise Failed("the proof's tree size or leaf index does not match the checkpoint and the event")
    leaf = hashlib.sha256(b"\x00" + bytes.fromhex(event["hash"])).digest()
    path = [base64.b64decode(p, validate=True) for p in proof["inclusion"]]
    if root_from_inclusion(proof["leaf_index"], size, leaf, path) != root:
        raise Failed("the inclusion proof does not lead to the checkpoint's root")
    cosigned = f", co-signed by {len(cosigners(proof['checkpoint'], witnesses))} of {len(witnesses)} witnesses" \
        if witnesses else ""
    return (f"OK: event {event['event_id']} (number {event['seq']}) is in log {origin} as signed at {time} "
            f"over {size} events by key {kid}{cosigned}")


def main(argv: list[str]) -> int:
    args, witness_files, quorum = [], [], None
    rest = iter(argv[1:])
    try:
        for arg in rest:
            if arg == "--witness":
                witness_files.append(next(rest))
            elif arg == "--quorum":
                quorum = int(next(rest))
                if quorum < 1:
                    raise ValueError("--quorum must be at least 1")
            else:
                args.append(arg)
    except (StopIteration, ValueError):
        args = []
    if len(args) < 2:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    try:
        with open(args[0], encoding="utf-8") as f:
            proof = json.load(f)
        keys = read_keys(args[1:])
        witnesses = read_keys(witness_files)
    except (OSError, ValueError, binascii.Error) as e:
        print(f"cannot read the input: {e}", file=sys.stderr)
        return 2
    try:
        print(verify(proof, keys, witnesses, quorum))
    except Failed as e:
        print(f"FAILED: {e}")
        return 1
    except (KeyError, TypeError, ValueError, binascii.Error) as e:
        print(f"FAILED: the proof is malformed ({type(e).__name__}: {e})")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
