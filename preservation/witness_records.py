"""What a node holds as a witness of the event log, and the check it makes before it takes a new checkpoint.

On every node, under the reserved prefix ``.preserve/witness/<log>/`` (``<log>``
is the log's origin), lie:

``checkpoints/<size, 20 digits>.json``  one record per checkpoint the node took: the
                                        note (with the node's co-signature when an agent
                                        took it), the size it extended and the tree's
                                        right edge (``frontier``) at its size
``leaves/<size, 20 digits>.bin``        the 32-byte event hashes that checkpoint added,
                                        one after the other (events ``from + 1 .. size``)
``latest.json``                         a copy of the newest record, with the log keys
                                        the node trusts

A node agent writes them itself, and refuses writes and deletes there through its
object API; for ``file://`` and ``s3://`` nodes the coordinator writes them, so there
they are a copy of the checkpoints kept outside the catalog, not a witness's word
(docs/evidence.md).  :func:`next_record` is the one check of a new checkpoint against
the last one held: a consistency proof (RFC 9162 2.1.4.2), and the new events' hashes
folded onto the stored right edge must give the signed root.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any, Iterator

from preservation import merkle
from preservation.errors import ObjectNotFound, WitnessRefused
from preservation.notes import Note
from storage_adapters import StorageAdapter, read_all

PREFIX = ".preserve/witness/"
MAX_LEAVES = 200_000
"""Most events one witnessed step may add (the node agent takes a JSON body of at most 16 MiB)."""
RECORD_FORMAT = "preserve-witness-record/1"


def log_prefix(origin: str) -> str:
    return f"{PREFIX}{re.sub(r'[^A-Za-z0-9._-]', '_', origin)}/"


def checkpoint_key(origin: str, size: int) -> str:
    return f"{log_prefix(origin)}checkpoints/{size:020d}.json"


def leaves_key(origin: str, size: int) -> str:
    return f"{log_prefix(origin)}leaves/{size:020d}.bin"


def latest_key(origin: str) -> str:
    return f"{log_prefix(origin)}latest.json"


def is_witness_key(key: str) -> bool:
    """Whether ``key`` lies in the reserved witness prefix (which a node agent's object API never writes)."""
    return key.startswith(PREFIX) or key + "/" == PREFIX


# --- the tree's right edge -------------------------------------------------------------------------------------

def extend(frontier: list[bytes], size: int, leaves: bytes) -> list[bytes]:
    """The right edge (the perfect subtrees of ``size``'s binary decomposition, largest first) after ``leaves``
    (32-byte event hashes) are appended to a tree of ``size``."""
    edge = list(frontier)
    n = size
    for i in range(0, len(leaves), merkle.HASH_SIZE):
        h = merkle.leaf_hash(leaves[i:i + merkle.HASH_SIZE])
        m = n
        while m & 1:  # each trailing one bit of n is a subtree the new leaf completes
            h = merkle.node_hash(edge.pop(), h)
            m >>= 1
        edge.append(h)
        n += 1
    return edge


def edge_root(frontier: list[bytes]) -> bytes:
    if not frontier:
        return merkle.root_hash(0, lambda lv, ix: b"")
    h = frontier[-1]
    for p in reversed(frontier[:-1]):
        h = merkle.node_hash(p, h)
    return h


# --- records ---------------------------------------------------------------------------------------------------

def _b64(items: list[bytes]) -> list[str]:
    return [base64.b64encode(x).decode() for x in items]


def read_latest(adapter: StorageAdapter, origin: str) -> dict[str, Any] | None:
    """The newest record held for ``origin``'s log; None when the node holds none."""
    try:
        return _parse(read_all(adapter, latest_key(origin)))
    except ObjectNotFound:
        return None


def held_records(adapter: StorageAdapter, origin: str) -> Iterator[dict[str, Any]]:
    """Every checkpoint record held for ``origin``'s log, smallest size first."""
    prefix = f"{log_prefix(origin)}checkpoints/"
    for info in adapter.list(prefix):
        if re.fullmatch(r"[0-9]{20}\.json", info.key[len(prefix):]):
            yield _parse(read_all(adapter, info.key))


def read_leaves(adapter: StorageAdapter, origin: str, size: int) -> bytes:
    return read_all(adapter, leaves_key(origin, size))


def _parse(raw: bytes) -> dict[str, Any]:
    record = json.loads(raw)
    if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT:
        raise ValueError("not a witness record")
    record["frontier"] = [base64.b64decode(x, validate=True) for x in record["frontier"]]
    return record


def store(adapter: StorageAdapter, record: dict[str, Any], leaves: bytes) -> None:
    """Write a record: its leaves first, then the record, then ``latest.json`` (a crash leaves the old latest)."""
    origin, size = record["origin"], record["size"]
    if leaves:
        adapter.write(leaves_key(origin, size), leaves, size=len(leaves))
    raw = json.dumps({**record, "frontier": _b64(record["frontier"])}, ensure_ascii=False, indent=1).encode("utf-8")
    adapter.write(checkpoint_key(origin, size), raw, size=len(raw))
    adapter.write(latest_key(origin), raw, size=len(raw))


def next_record(previous: dict[str, Any] | None, note: Note, proof: list[bytes], leaves: bytes) -> dict[str, Any]:
    """The record of ``note`` after ``previous`` (the last one held); WitnessRefused when the new checkpoint is
    not an append-only extension of it: a smaller tree (truncation), the same size with another root (fork),
    a consistency proof that fails, or events whose hashes do not lead to the signed root (rewrite)."""
    old_size = previous["size"] if previous else 0
    if note.size < old_size:
        raise WitnessRefused(f"checkpoint of {note.size} events after one of {old_size}: the log was truncated",
                             held=old_size, offered=note.size)
    old_root = base64.b64decode(previous["root"]) if previous else merkle.root_hash(0, lambda lv, ix: b"")
    if note.size == old_size:
        if note.root != old_root:
            raise WitnessRefused(f"another root for the {old_size} events already witnessed: a fork",
                                 held=old_size, offered=note.size)
        if leaves:
            raise WitnessRefused("events sent for a checkpoint that adds none", held=old_size, offered=note.size)
    elif old_size and not merkle.verify_consistency(old_size, note.size, old_root, note.root, proof):
        raise WitnessRefused(f"the consistency proof from the {old_size} events witnessed to {note.size} fails: "
                             "the log was rewritten or forked", held=old_size, offered=note.size)
    if len(leaves) != merkle.HASH_SIZE * (note.size - old_size):
        raise WitnessRefused(f"{len(leaves) // merkle.HASH_SIZE} event hashes sent for the "
                             f"{note.size - old_size} events added", held=old_size, offered=note.size)
    frontier = extend(previous["frontier"] if previous else [], old_size, leaves)
    if edge_root(frontier) != note.root:
        raise WitnessRefused(f"the events added after {old_size} do not lead to the signed root: the log was "
                             "rewritten", held=old_size, offered=note.size)
    return {"format": RECORD_FORMAT, "origin": note.origin, "size": note.size,
            "root": base64.b64encode(note.root).decode(),
            "from": previous["from"] if previous and note.size == old_size else old_size, "note": note.text,
            "frontier": frontier, "introduces": note.introduces}
