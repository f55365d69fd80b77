"""search_events: the searches libraries run, for COUNTER 5.1's Searches_* metrics of the Database Report

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 08:30:00

One row per search that returned a new set of results (the portal's
search page, ``GET /api/v1/search``), with the library, the channel, a
hash of the query and the hashed visitor and session (see
``preservation.catalog.access_models.SearchEvent``).
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "search_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.Column("library_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("query", sa.String(length=64), nullable=False),
        sa.Column("visitor", sa.String(length=64), nullable=False),
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.ForeignKeyConstraint(["library_id"], ["libraries.id"], name=op.f("fk_search_events_library_id_libraries")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_events")),
    )
    op.create_index("ix_search_events_library_occurred", "search_events", ["library_id", "occurred_at"])


def downgrade() -> None:
    op.drop_index("ix_search_events_library_occurred", table_name="search_events")
    op.drop_table("search_events")
