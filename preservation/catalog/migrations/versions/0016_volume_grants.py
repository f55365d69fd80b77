"""title grants and requests narrowed to volumes: a volume or volume range (optionally to the issue)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 08:00:00

``access_grants`` gains ``first_volume``, ``first_issue``, ``last_volume``
and ``last_issue``: a grant of a title (``title_id``) opens only the items
those bounds cover, by the one title-range rule
(``preservation.titles.range_covers``), as a library's KBART row bounded
by volume does.  ``access_requests`` gains ``first_volume`` and
``last_volume`` for a request of a title's volumes.  Every column is
nullable and null on existing rows, which keep their scope.
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

GRANT_COLUMNS = ("first_volume", "first_issue", "last_volume", "last_issue")
REQUEST_COLUMNS = ("first_volume", "last_volume")


def upgrade() -> None:
    with op.batch_alter_table("access_grants") as batch:
        for name in GRANT_COLUMNS:
            batch.add_column(sa.Column(name, sa.String(length=32), nullable=True))
    with op.batch_alter_table("access_requests") as batch:
        for name in REQUEST_COLUMNS:
            batch.add_column(sa.Column(name, sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("access_requests") as batch:
        for name in reversed(REQUEST_COLUMNS):
            batch.drop_column(name)
    with op.batch_alter_table("access_grants") as batch:
        for name in reversed(GRANT_COLUMNS):
            batch.drop_column(name)
