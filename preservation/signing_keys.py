"""The coordinator's Ed25519 signing keys as files, in the signed-note key format (docs/evidence.md).

A private key is a PEM (PKCS #8) file written 0600; its public key lies beside
it as ``<name>+<key id>.pub`` holding the verifier key
``<name>+<key id>+<base64(0x01 || public key)>``.  The key id is the first
four bytes of SHA-256(name || "\\n" || 0x01 || public key) in hex.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import uuid
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from preservation.errors import CheckpointInvalid, CheckpointKeyMissing

ED25519 = b"\x01"
KEY_NAME = re.compile(r"^[A-Za-z0-9._/:-]{1,200}$")


# --- keys ------------------------------------------------------------------------------------------------------

def key_id(name: str, public: bytes) -> str:
    return hashlib.sha256(name.encode() + b"\n" + ED25519 + public).digest()[:4].hex()


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def verifier_key(name: str, public: bytes) -> str:
    """The signed-note verifier key: ``<name>+<key id>+<base64(0x01 || public key)>``."""
    return f"{name}+{key_id(name, public)}+{base64.b64encode(ED25519 + public).decode()}"


def parse_verifier_key(text: str) -> tuple[str, str, Ed25519PublicKey]:
    """(name, key id, public key) of a verifier key line; CheckpointInvalid when it is not one."""
    parts = text.strip().split("+", 2)
    if len(parts) != 3 or not KEY_NAME.match(parts[0]):
        raise CheckpointInvalid("a public key must read <name>+<key id>+<base64 key>")
    name, kid, b64 = parts
    try:
        raw = base64.b64decode(b64, validate=True)
    except ValueError as e:
        raise CheckpointInvalid("the public key is not base64") from e
    if len(raw) != 33 or raw[:1] != ED25519 or key_id(name, raw[1:]) != kid:
        raise CheckpointInvalid(f"public key {name}+{kid} does not match its key id")
    return name, kid, Ed25519PublicKey.from_public_bytes(raw[1:])


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 private key in the PEM file ``path``; raises CheckpointKeyMissing when there is none."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as e:
        raise CheckpointKeyMissing(f"{path} cannot be read as a private key ({type(e).__name__})") from e
    if not isinstance(key, Ed25519PrivateKey):
        raise CheckpointKeyMissing(f"{path} is not an Ed25519 key")
    return key


def _write_private(path: Path, key: Ed25519PrivateKey) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _write_public(keys_dir: Path, name: str, key: Ed25519PrivateKey) -> str:
    public = raw_public(key.public_key())
    vkey = verifier_key(name, public)
    (keys_dir / f"{name.replace('/', '_')}+{key_id(name, public)}.pub").write_text(vkey + "\n", encoding="utf-8")
    return vkey


def new_origin() -> str:
    return f"preserve.log.{uuid.uuid4().hex[:12]}"


def generate_key(path: Path, origin: str) -> str:
    """Write a new private key at ``path`` (0600) and its public key beside it; returns the verifier key."""
    key = Ed25519PrivateKey.generate()
    _write_private(path, key)
    return _write_public(path.parent, origin, key)
