"""access requests and grants in library terms: a title, one issue of it, or one item

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 04:45:00

``access_requests`` gains ``title_id``, ``item_id``, ``issue_year``,
``volume`` and ``issue``; ``access_grants`` gains ``title_id``, ``item_id``,
``volume``, ``issue``, ``first_date`` and ``last_date`` (see
``preservation.catalog.access_models.AccessGrant`` for what each scope
opens).  Every column is nullable and null on existing rows, which keep
their collection or package scope.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("access_requests") as batch:
        batch.add_column(sa.Column("title_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("item_id", BIG_ID, nullable=True))
        batch.add_column(sa.Column("issue_year", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("volume", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("issue", sa.String(length=32), nullable=True))
        batch.create_foreign_key(op.f("fk_access_requests_title_id_titles"), "titles", ["title_id"], ["id"])
        batch.create_foreign_key(op.f("fk_access_requests_item_id_items"), "items", ["item_id"], ["id"])
        batch.create_index(op.f("ix_access_requests_item_id"), ["item_id"])
    with op.batch_alter_table("access_grants") as batch:
        batch.add_column(sa.Column("title_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("item_id", BIG_ID, nullable=True))
        batch.add_column(sa.Column("volume", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("issue", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("first_date", sa.String(length=10), nullable=True))
        batch.add_column(sa.Column("last_date", sa.String(length=10), nullable=True))
        batch.create_foreign_key(op.f("fk_access_grants_title_id_titles"), "titles", ["title_id"], ["id"])
        batch.create_foreign_key(op.f("fk_access_grants_item_id_items"), "items", ["item_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("access_grants") as batch:
        batch.drop_constraint(op.f("fk_access_grants_item_id_items"), type_="foreignkey")
        batch.drop_constraint(op.f("fk_access_grants_title_id_titles"), type_="foreignkey")
        for name in ("last_date", "first_date", "issue", "volume", "item_id", "title_id"):
            batch.drop_column(name)
    with op.batch_alter_table("access_requests") as batch:
        batch.drop_index(op.f("ix_access_requests_item_id"))
        batch.drop_constraint(op.f("fk_access_requests_item_id_items"), type_="foreignkey")
        batch.drop_constraint(op.f("fk_access_requests_title_id_titles"), type_="foreignkey")
        for name in ("issue", "volume", "issue_year", "item_id", "title_id"):
            batch.drop_column(name)
