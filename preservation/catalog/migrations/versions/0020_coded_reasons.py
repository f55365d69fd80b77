"""coded reasons: the access policy's reason of a request as its code and parameters

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06 12:20:00

``access_requests`` gains ``decision_coded`` (JSON, ``{"code", "params"}`` of
``preservation.access.reasons``) beside the English ``decision_reason``, so the
portal can say the policy's reason in the reader's language.  Null for a staff
member's own words and on existing rows, whose English text is shown as it is.
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("access_requests") as batch:
        batch.add_column(sa.Column("decision_coded", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("access_requests") as batch:
        batch.drop_column("decision_coded")
