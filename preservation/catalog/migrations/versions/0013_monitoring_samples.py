"""monitoring_samples: queue depth and audit coverage sampled by the scheduler, for the staff dashboard

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 07:40:00

A new table only (see preservation/catalog/sample_models.py): safe on a live catalog.
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "monitoring_samples",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("sampled_at", sa.DateTime(), nullable=False),
        sa.Column("series", sa.String(length=16), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitoring_samples")),
    )
    op.create_index("ix_monitoring_samples_series_sampled_at", "monitoring_samples", ["series", "sampled_at"],
                    unique=False)


def downgrade() -> None:
    op.drop_index("ix_monitoring_samples_series_sampled_at", table_name="monitoring_samples")
    op.drop_table("monitoring_samples")
