"""scheduled proof-of-possession challenges: when each copy was last challenged

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 22:10:00

One nullable column and its index: existing rows stay valid (a copy never
challenged counts from its last audit), so the upgrade is safe on a live
catalog.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("replicas") as batch:
        batch.add_column(sa.Column("last_challenge_at", sa.DateTime(), nullable=True))
        batch.create_index("ix_replicas_last_challenge", ["last_challenge_at"])


def downgrade() -> None:
    with op.batch_alter_table("replicas") as batch:
        batch.drop_index("ix_replicas_last_challenge")
        batch.drop_column("last_challenge_at")
