"""evidence: merkle_nodes (the event log's Merkle tree) and checkpoints; the tree built for the events already held

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 05:40:00

New tables only (see preservation/catalog/evidence_models.py).  The upgrade
computes the stored subtrees of the events a catalog already holds in one
streaming pass (memory O(log n)), so that every event has an inclusion proof.
"""

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _backfill() -> None:
    conn = op.get_bind()
    nodes = sa.table("merkle_nodes", sa.column("level"), sa.column("index"), sa.column("hash"))
    frontier: dict[int, bytes] = {}
    rows: list[dict] = []
    result = conn.execute(sa.text("SELECT seq, hash FROM events ORDER BY seq").execution_options(yield_per=5000))
    for seq, h in result:
        index = seq - 1
        cur = hashlib.sha256(b"\x00" + bytes.fromhex(h)).digest()
        frontier_new = {0: cur}
        level, i = 0, index
        while i & 1:
            cur = hashlib.sha256(b"\x01" + frontier[level] + cur).digest()
            level += 1
            i >>= 1
            frontier_new[level] = cur
            rows.append({"level": level, "index": i, "hash": cur})
        frontier.update(frontier_new)
        if len(rows) >= 5000:
            conn.execute(nodes.insert(), rows)
            rows = []
    if rows:
        conn.execute(nodes.insert(), rows)


def upgrade() -> None:
    op.create_table(
        "merkle_nodes",
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("index", SEQ, nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("level", "index", name=op.f("pk_merkle_nodes")),
    )
    op.create_table(
        "checkpoints",
        sa.Column("size", SEQ, nullable=False),
        sa.Column("root", sa.LargeBinary(length=32), nullable=False),
        sa.Column("made_at", sa.DateTime(), nullable=False),
        sa.Column("key_id", sa.String(length=8), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("size", name=op.f("pk_checkpoints")),
    )
    _backfill()


def downgrade() -> None:
    op.drop_table("checkpoints")
    op.drop_table("merkle_nodes")
