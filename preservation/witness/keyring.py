"""The witness keys the coordinator trusts, as files beside its signing key (docs/evidence.md).

``keys/witnesses/<node>.pub``
    the node's current witness key: one verifier key line
    (``<name>+<key id>+<base64>``), as ``preserve node witness-key`` printed it;
``keys/witnesses/retired/<node>+<key id>.json``
    a key the node used before a rotation: its verifier key and the size of
    the newest checkpoint when it was retired.  Its co-signatures still count
    on checkpoints up to that size, never on a later one, so old checkpoints
    stay verifiable and a retired (perhaps stolen) key cannot vouch for new ones.

A node's key is trusted when an operator imports it, confirmed by its
fingerprint (``preserve witness-keys trust``), or, when none was imported, on the
first answer of the node's agent (kept from then on).  The fingerprint is the
SHA-256 of the key's bytes (``0x01 || public key``) in hex; an operator
confirms it with at least :data:`MIN_FINGERPRINT` of its digits.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from preservation.errors import CheckpointInvalid, CheckpointKeyMissing, WitnessKeyRefused
from preservation.settings import Settings
from preservation.signing_keys import parse_verifier_key
from preservation.text import for_log

log = logging.getLogger("preservation.witness")

WITNESSES_DIR = "witnesses"
RETIRED_DIR = "retired"
MIN_FINGERPRINT = 16
MAX_KEY_FILE = 4096
_HEX = re.compile(r"[0-9a-f]+")


def keys_dir(settings: Settings) -> Path:
    if settings.checkpoints.key is None or not settings.checkpoints.origin:
        raise CheckpointKeyMissing("checkpoints.key and checkpoints.origin are not both set in the config")
    return settings.checkpoints.key.parent


def _witnesses(settings: Settings) -> Path:
    return keys_dir(settings) / WITNESSES_DIR


def fingerprint(verifier_key: str) -> str:
    """SHA-256 of the key's bytes (0x01 || public key), 64 hex digits."""
    return hashlib.sha256(base64.b64decode(verifier_key.strip().split("+", 2)[2])).hexdigest()


def _entry(vkey: str) -> dict[str, Any]:
    name, kid, key = parse_verifier_key(vkey)
    return {"name": name, "key_id": kid, "key": key, "verifier_key": vkey, "fingerprint": fingerprint(vkey)}


def current_keys(settings: Settings) -> dict[str, dict[str, Any]]:
    """The current witness key of each node that has one, by node name:
    {"name", "key_id", "key", "verifier_key", "fingerprint"}."""
    out = {}
    directory = _witnesses(settings)
    for f in sorted(directory.glob("*.pub")) if directory.is_dir() else ():
        out[f.name[:-len(".pub")]] = _entry(f.read_text(encoding="utf-8").strip())
    return out


def retired_keys(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    """Each node's retired witness keys, oldest retirement first, each with ``valid_through`` (a checkpoint
    size) and ``retired_at``."""
    out: dict[str, list[dict[str, Any]]] = {}
    directory = _witnesses(settings) / RETIRED_DIR
    for f in sorted(directory.glob("*.json")) if directory.is_dir() else ():
        record = json.loads(f.read_text(encoding="utf-8"))
        out.setdefault(record["node"], []).append(
            {**_entry(record["verifier_key"]), "valid_through": int(record["valid_through"]),
             "retired_at": record["retired_at"]})
    for entries in out.values():
        entries.sort(key=lambda e: (e["retired_at"], e["valid_through"]))
    return out


def keys_for(settings: Settings, node: str, size: int) -> dict[str, tuple[str, Ed25519PublicKey]]:
    """The node's keys whose co-signature counts on a checkpoint of ``size`` events: its current key, and each
    retired key retired at that size or later."""
    keys = {}
    current = current_keys(settings).get(node)
    if current is not None:
        keys[current["key_id"]] = (current["name"], current["key"])
    for old in retired_keys(settings).get(node, ()):
        if size <= old["valid_through"]:
            keys[old["key_id"]] = (old["name"], old["key"])
    return keys


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".new")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def pin_on_first_answer(settings: Settings, node: str, vkey: str) -> str | None:
    """Keep a node's witness key the first time its agent answers (no key imported yet); the key it gave must
    match the one kept after.  The key id when it was kept now.  Raises CheckpointInvalid."""
    parse_verifier_key(vkey)
    known = current_keys(settings).get(node)
    if known is not None:
        if known["verifier_key"] != vkey:
            raise CheckpointInvalid(f"node {node} co-signed with key {parse_verifier_key(vkey)[1]}, not with its "
                                    f"known witness key {known['key_id']} (`preserve witness-keys rotate {node}` "
                                    "once its operator confirms the new key)")
        return None
    _write(_witnesses(settings) / f"{node}.pub", vkey + "\n")
    kid = parse_verifier_key(vkey)[1]
    log.info("node %s: witness key %s kept on its first answer", for_log(node), kid)
    return kid


def install(settings: Settings, node: str, vkey: str, *, retire_through: int | None) -> str | None:
    """Make ``vkey`` the node's current witness key; the key it replaces (its id returned) is retired, valid
    through checkpoints of ``retire_through`` events (``None``: there must be no current key)."""
    current = current_keys(settings).get(node)
    retired = None
    if current is not None:
        if retire_through is None:
            raise WitnessKeyRefused(f"node {node} has witness key {current['key_id']} already: rotate it")
        record = {"node": node, "verifier_key": current["verifier_key"], "valid_through": retire_through,
                  "retired_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        _write(_witnesses(settings) / RETIRED_DIR / f"{node}+{current['key_id']}.json", json.dumps(record) + "\n")
        retired = current["key_id"]
    _write(_witnesses(settings) / f"{node}.pub", vkey + "\n")
    return retired


def read_key_file(path: Path) -> str:
    """The verifier key in a public key file (one line, as ``preserve node witness-key`` wrote it).
    Raises WitnessKeyRefused when the file cannot be read or holds anything else."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_KEY_FILE + 1)
    except OSError as e:
        raise WitnessKeyRefused(f"cannot read the key file {for_log(str(path))}: {e.strerror or e}") from e
    if len(raw) > MAX_KEY_FILE:
        raise WitnessKeyRefused(f"{for_log(str(path))} is not a public key file: over {MAX_KEY_FILE} bytes")
    try:
        lines = raw.decode("ascii").strip().splitlines()
    except UnicodeDecodeError:
        raise WitnessKeyRefused(f"{for_log(str(path))} is not a public key file: not ASCII text") from None
    if len(lines) != 1:
        raise WitnessKeyRefused(f"{for_log(str(path))} is not a public key file: it must hold one line "
                                "<name>+<key id>+<base64 key>")
    return checked_key(lines[0].strip(), f"the key in {for_log(str(path))}")


def checked_key(vkey: str, what: str) -> str:
    """``vkey`` if it is a well-formed Ed25519 verifier key; WitnessKeyRefused otherwise."""
    try:
        parse_verifier_key(vkey)
    except CheckpointInvalid as e:
        raise WitnessKeyRefused(f"{what} is not a witness public key: {e.detail}") from None
    return vkey


def confirm(vkey: str, given: str) -> str:
    """Check the fingerprint an operator typed (hex, ``:`` and spaces ignored, at least :data:`MIN_FINGERPRINT`
    digits, a prefix of the key's) against the key; the full fingerprint.  Raises WitnessKeyRefused."""
    wanted = re.sub(r"[\s:]", "", given).lower()
    if not _HEX.fullmatch(wanted or "-") or not MIN_FINGERPRINT <= len(wanted) <= 64:
        raise WitnessKeyRefused(f"--fingerprint must be {MIN_FINGERPRINT} to 64 hexadecimal digits of the key's "
                                "SHA-256 fingerprint, as its node operator read it out")
    full = fingerprint(vkey)
    if not full.startswith(wanted):
        raise WitnessKeyRefused(f"the key's fingerprint is {full}, not {wanted}…: do not trust it; ask the node's "
                                "operator again")
    return full
