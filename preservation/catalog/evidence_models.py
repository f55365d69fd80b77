"""Evidence tables: the event log's Merkle tree (``merkle_nodes``) and the signed checkpoints over it.

* ``merkle_nodes``: the hash of every complete perfect subtree of level 1 or
  more (level ``L``, index ``i`` covers the events with ``seq`` in
  ``(i * 2**L, (i + 1) * 2**L]``), written by :func:`append_leaf` in the
  transaction that appends the event.  Level 0 (a leaf hash) is not stored:
  it is SHA-256(0x00 || the event's hash), read from ``events`` by ``seq``.
  A new event completes as many subtrees as its index has trailing one bits:
  one row per event on average.
* ``checkpoints``: tree size, root hash, time, the id of the key that signed
  it and the whole signed note (see ``preservation.checkpoints``).

Functions here are the catalog side of ``preservation.merkle`` (pure hashing
and proofs): they read and write the stored hashes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Iterable

from sqlalchemy import BigInteger, DateTime, Integer, LargeBinary, String, Text, insert, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from preservation import merkle
from preservation.catalog.models import Base, Event

SEQ = BigInteger().with_variant(Integer, "sqlite")


class MerkleNode(Base):
    __tablename__ = "merkle_nodes"

    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    index: Mapped[int] = mapped_column(SEQ, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class Checkpoint(Base):
    __tablename__ = "checkpoints"

    size: Mapped[int] = mapped_column(SEQ, primary_key=True, autoincrement=False)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    made_at: Mapped[datetime] = mapped_column(DateTime)
    key_id: Mapped[str] = mapped_column(String(8))
    note: Mapped[str] = mapped_column(Text)


_NODES = MerkleNode.__table__


def _leaf_hash(event_hash_hex: str) -> bytes:
    return merkle.leaf_hash(bytes.fromhex(event_hash_hex))


def append_leaf(session: Session, seq: int, event_hash_hex: str, prev_hash_hex: str) -> None:
    """Store the subtrees the event ``seq`` completes (inside the caller's transaction, after the event row)."""
    index = seq - 1
    if not index & 1:
        return
    wanted = [(lv, ix) for lv, ix in merkle.left_siblings(index) if lv > 0]
    known = {(0, index - 1): _leaf_hash(prev_hash_hex)}
    if wanted:
        known.update(_stored(session, wanted))
    rows = [{"level": lv, "index": ix, "hash": h}
            for lv, ix, h in merkle.completed_nodes(index, _leaf_hash(event_hash_hex), lambda lv, ix: known[(lv, ix)])]
    session.connection().execute(_NODES.insert(), rows)  # Core: the ORM's bulk path costs more than the row


def _driver_sql(session: Session, sql: str, params: list):
    """Run ``sql`` (``?`` placeholders) on the DB-API cursor: no SQLAlchemy compilation of a statement whose
    shape changes with every proof (it cost more than the query itself: bench/bench_merkle.py)."""
    conn = session.connection()
    if conn.dialect.paramstyle != "qmark":  # psycopg: %s
        sql = sql.replace("?", "%s")
    return conn.exec_driver_sql(sql, tuple(params))


def _nodes_condition(places: list[tuple[int, int]], params: list) -> str:
    params.extend(v for place in places for v in place)
    return " OR ".join(['(level = ? AND "index" = ?)'] * len(places))


def _stored(session: Session, places: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    places = list(places)
    if not places:
        return {}
    params: list = []
    cond = _nodes_condition(places, params)
    rows = _driver_sql(session, f'SELECT level, "index", hash FROM merkle_nodes WHERE {cond}', params)
    return {(lv, ix): bytes(h) for lv, ix, h in rows}


class MissingNode(LookupError):
    """A stored hash the tree should hold is absent (the tree was not built, or rows were removed)."""


def fetch(session: Session, places: set[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    """The hashes at ``places``, in one query: leaves from ``events`` (by ``seq``), the rest from ``merkle_nodes``."""
    leaves = sorted(ix + 1 for lv, ix in places if lv == 0)
    nodes = sorted(p for p in places if p[0] > 0)
    params: list = []
    parts = []
    if leaves:
        params.extend(leaves)
        parts.append(f"SELECT 0, seq - 1, hash, NULL FROM events WHERE seq IN ({', '.join('?' * len(leaves))})")
    if nodes:
        parts.append(f'SELECT level, "index", NULL, hash FROM merkle_nodes WHERE {_nodes_condition(nodes, params)}')
    found: dict[tuple[int, int], bytes] = {}
    if parts:
        for lv, ix, leaf, node in _driver_sql(session, " UNION ALL ".join(parts), params):
            found[(lv, ix)] = _leaf_hash(leaf) if lv == 0 else bytes(node)
    missing = places - found.keys()
    if missing:
        raise MissingNode(f"the event tree lacks {len(missing)} stored hash(es), e.g. level {min(missing)[0]} index {min(missing)[1]}")
    return found


def compute(session: Session, fn):
    """Run ``fn(lookup)`` (a root or a proof of ``preservation.merkle``) on the stored hashes, fetched in one go."""
    hashes = fetch(session, merkle.needed_nodes(fn))
    return fn(lambda lv, ix: hashes[(lv, ix)])


def rebuild(session: Session, batch: int = 5000) -> int:
    """Recompute every stored subtree from the events (one pass, memory O(log n)); returns the tree size.

    For a catalog whose events predate the tree (migration 0012 does the same) and for tests; the
    proofs themselves never read the whole log.
    """
    session.execute(MerkleNode.__table__.delete())
    frontier: dict[int, bytes] = {}
    rows: list[dict] = []
    size = 0
    for seq, h in session.execute(select(Event.seq, Event.hash).order_by(Event.seq).execution_options(yield_per=batch)):
        index = seq - 1
        lh = _leaf_hash(h)
        made = list(merkle.completed_nodes(index, lh, lambda lv, ix: frontier[lv]))
        frontier[0] = lh
        for lv, ix, nh in made:
            frontier[lv] = nh
            rows.append({"level": lv, "index": ix, "hash": nh})
        size = seq
        if len(rows) >= batch:
            session.execute(insert(MerkleNode), rows)
            rows = []
    if rows:
        session.execute(insert(MerkleNode), rows)
    return size
