"""Checkpoint notes: the signed text form of a checkpoint, and the co-signatures of witnesses (docs/evidence.md).

A note is the signed-note form of transparency logs (C2SP signed-note /
tlog-checkpoint)::

    <origin>
    <tree size>
    <base64 root hash>
    time <UTC time, ISO 8601>
    key <verifier key>              (only in a key-introduction checkpoint)
                                    (blank line)
    — <key name> <base64(key hash[4] || Ed25519 signature)>
    — <witness name> <base64(…)>    (one line per co-signing witness)

Every signature covers the text above the blank line.  The log's own
signature is by a key named as the origin; a witness signs the same text with
its own key under its own name.  The optional ``key`` line names the key a
key-introduction checkpoint brings in (after the log's key was lost): that
checkpoint is signed by the new key and counts only with a quorum of witness
co-signatures.  Pure functions: no catalog, no files.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterator, Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from preservation.errors import CheckpointInvalid
from preservation.merkle import HASH_SIZE
from preservation.signing_keys import parse_verifier_key

DASH = "\u2014"
MAX_NOTE = 64 * 1024
MAX_SIGNATURES = 64
KEY_LINE = "key "
_SIGNATURE = re.compile(DASH + r" (\S{1,200}) ([A-Za-z0-9+/=]{1,200})")

Keys = Mapping[str, tuple[str, Ed25519PublicKey]]
"""Public keys by key id: (key name, key)."""


@dataclass(frozen=True)
class SigningKey:
    name: str
    key_id: str
    private: Ed25519PrivateKey


@dataclass(frozen=True)
class Note:
    origin: str
    size: int
    root: bytes
    time: datetime
    key_id: str
    text: str
    introduces: str | None = None
    """The verifier key a key-introduction checkpoint names (its ``key`` line), else None."""

    @property
    def body(self) -> str:
        return body_of(self.text)

    def to_dict(self) -> dict[str, Any]:
        return {"origin": self.origin, "size": self.size, "root": base64.b64encode(self.root).decode(),
                "time": self.time.isoformat(), "key_id": self.key_id, "note": self.text,
                "introduces": self.introduces}


def make_body(origin: str, size: int, root: bytes, time: datetime, introduces: str | None = None) -> str:
    body = f"{origin}\n{size}\n{base64.b64encode(root).decode()}\ntime {time.strftime('%Y-%m-%dT%H:%M:%SZ')}\n"
    return body + (f"{KEY_LINE}{introduces}\n" if introduces else "")


def body_of(text: str) -> str:
    """The signed text of a note (what is above the blank line, newline-terminated)."""
    return text.partition("\n\n")[0] + "\n"


def signature_line(key: SigningKey, body: str) -> str:
    sig = key.private.sign(body.encode("utf-8"))
    return f"{DASH} {key.name} {base64.b64encode(bytes.fromhex(key.key_id) + sig).decode()}\n"


def sign_note(key: SigningKey, size: int, root: bytes, time: datetime, introduces: str | None = None) -> str:
    body = make_body(key.name, size, root, time, introduces)
    return f"{body}\n{signature_line(key, body)}"


def cosign(text: str, key: SigningKey) -> str:
    """``text`` with ``key``'s signature line added (once: a key that signed already adds nothing)."""
    if any(kid == key.key_id for _name, kid, _sig in signatures(text)):
        return text
    return text + signature_line(key, body_of(text))


def signatures(text: str) -> Iterator[tuple[str, str, bytes]]:
    """(name, key id, signature) of each well-formed signature line of a note."""
    for line in text.partition("\n\n")[2].split("\n")[:MAX_SIGNATURES]:
        m = _SIGNATURE.fullmatch(line)
        if not m:
            continue
        try:
            raw = base64.b64decode(m.group(2), validate=True)
        except ValueError:
            continue
        if len(raw) == 68:
            yield m.group(1), raw[:4].hex(), raw[4:]


def parse_body(text: str) -> tuple[str, int, bytes, datetime, str | None]:
    """(origin, size, root, time, introduced key) of a note's body; CheckpointInvalid when it cannot be read."""
    if len(text) > MAX_NOTE:
        raise CheckpointInvalid("the note is too long")
    body, sep, _sigs = text.partition("\n\n")
    if not sep:
        raise CheckpointInvalid("no blank line between the checkpoint and its signatures")
    lines = body.split("\n")
    if len(lines) not in (4, 5) or not lines[3].startswith("time ") or (len(lines) == 5 and not
                                                                        lines[4].startswith(KEY_LINE)):
        raise CheckpointInvalid("a checkpoint has four lines: origin, size, root hash, time (and a key it introduces)")
    origin, size_s, root_s, time_s = lines[0], lines[1], lines[2], lines[3][5:]
    if not re.fullmatch(r"0|[1-9][0-9]{0,18}", size_s):
        raise CheckpointInvalid("the tree size is not a decimal number")
    try:
        root = base64.b64decode(root_s, validate=True)
        time = datetime.strptime(time_s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError as e:
        raise CheckpointInvalid("the root hash or the time cannot be read") from e
    if len(root) != HASH_SIZE:
        raise CheckpointInvalid("the root hash is not 32 bytes")
    introduces = None
    if len(lines) == 5:
        introduces = lines[4][len(KEY_LINE):]
        name = parse_verifier_key(introduces)[0]
        if name != origin:
            raise CheckpointInvalid("a key-introduction checkpoint introduces a key of its own log only")
    return origin, int(size_s), root, time, introduces


def verify_note(text: str, keys: Keys) -> Note:
    """Parse a checkpoint note and check its signature by one of the log's ``keys``; CheckpointInvalid otherwise."""
    origin, size, root, time, introduces = parse_body(text)
    body = body_of(text).encode("utf-8")
    for name, kid, sig in signatures(text):
        if kid not in keys or keys[kid][0] != name or name != origin:
            continue
        try:
            keys[kid][1].verify(sig, body)
        except InvalidSignature as e:
            raise CheckpointInvalid(f"the signature of key {kid} is wrong") from e
        return Note(origin, size, root, time, kid, text, introduces)
    raise CheckpointInvalid("no signature by a known key")


def cosigners(text: str, witnesses: Keys) -> set[str]:
    """The key ids of ``witnesses`` whose co-signature on the note is valid (a wrong one is not counted)."""
    body = body_of(text).encode("utf-8")
    good = set()
    for name, kid, sig in signatures(text):
        if kid in witnesses and witnesses[kid][0] == name:
            try:
                witnesses[kid][1].verify(sig, body)
            except InvalidSignature:
                continue
            good.add(kid)
    return good


def introduced_key(text: str, witnesses: Keys, quorum: int) -> tuple[str, str, Ed25519PublicKey]:
    """The key a key-introduction note brings in, once it is signed by that key and co-signed by at least
    ``quorum`` of ``witnesses``; CheckpointInvalid otherwise."""
    introduces = parse_body(text)[4]
    if introduces is None:
        raise CheckpointInvalid("this checkpoint introduces no key")
    name, kid, key = parse_verifier_key(introduces)
    verify_note(text, {kid: (name, key)})
    count = len(cosigners(text, witnesses))
    if count < quorum:
        raise CheckpointInvalid(f"key {kid} is co-signed by {count} witnesses, fewer than the quorum of {quorum}")
    return name, kid, key
