"""usage events carry what COUNTER Release 5.1 counts: metric, item, title, visitor, session, month

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 04:45:00

``usage_events`` gains ``metric`` (investigation or request), ``item_id`` and
``title_id`` (the items and titles of 0005, kept without foreign keys: usage
is history), ``visitor`` and ``session_id`` (SHA-256 hashes: the double-click
filter compares a visitor's clicks, the Unique_* metrics count sessions) and
``month`` (``YYYY-MM``, what reports group by), with indexes for per-month
aggregation.  Existing rows are filled in: a download is a request, anything
else an investigation; their visitor is their user (or their library when
no user was recorded) and their session that visitor's hour, as
``preservation.access.usage`` derives them for new rows.
"""

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
BATCH = 1000


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _backfill() -> None:
    events = sa.table(
        "usage_events", sa.column("id", BIG_ID), sa.column("occurred_at", sa.DateTime()),
        sa.column("library_id", sa.Integer()), sa.column("user_id", sa.Integer()), sa.column("kind", sa.String()),
        sa.column("metric", sa.String()), sa.column("visitor", sa.String()), sa.column("session_id", sa.String()),
        sa.column("month", sa.String()),
    )
    conn = op.get_bind()
    last = 0
    while True:
        rows = conn.execute(
            sa.select(events.c.id, events.c.occurred_at, events.c.library_id, events.c.user_id, events.c.kind)
            .where(events.c.id > last).order_by(events.c.id).limit(BATCH)
        ).all()
        if not rows:
            return
        for row_id, at, library_id, user_id, kind in rows:
            who = f"user:{user_id}" if user_id is not None else f"library:{library_id}"
            conn.execute(events.update().where(events.c.id == row_id).values(
                metric="request" if kind == "download" else "investigation",
                visitor=_hash(who),
                session_id=_hash(f"{who}|{at:%Y-%m-%d|%H}"),
                month=f"{at:%Y-%m}",
            ))
        last = rows[-1][0]


def upgrade() -> None:
    with op.batch_alter_table("usage_events") as batch:
        batch.add_column(sa.Column("metric", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("item_id", BIG_ID, nullable=True))
        batch.add_column(sa.Column("title_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("visitor", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("session_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("month", sa.String(length=7), nullable=True))
    _backfill()
    with op.batch_alter_table("usage_events") as batch:
        for name, length in (("metric", 16), ("visitor", 64), ("session_id", 64), ("month", 7)):
            batch.alter_column(name, existing_type=sa.String(length=length), nullable=False)
    op.create_index("ix_usage_events_library_month", "usage_events", ["library_id", "month"])
    op.create_index("ix_usage_events_month", "usage_events", ["month"])


def downgrade() -> None:
    op.drop_index("ix_usage_events_month", table_name="usage_events")
    op.drop_index("ix_usage_events_library_month", table_name="usage_events")
    with op.batch_alter_table("usage_events") as batch:
        for name in ("month", "session_id", "visitor", "title_id", "item_id", "metric"):
            batch.drop_column(name)
