"""unrepairable_files: the files of a copy that no copy holds right (partial damage)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 07:40:00

A new table only: safe on a live catalog (see preservation/catalog/models.py,
UnrepairableFile, and docs/operations.md, "Partial damage").
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
PATH = sa.String(length=1024).with_variant(sa.String(length=1024, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "unrepairable_files",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("package_id", sa.String(length=36), nullable=False),
        sa.Column("replica_id", sa.Integer(), nullable=False),
        sa.Column("path", PATH, nullable=False),
        sa.Column("found_at", sa.DateTime(), nullable=False),
        sa.Column("job_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["package_id"], ["packages.id"], name=op.f("fk_unrepairable_files_package_id_packages"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["replica_id"], ["replicas.id"], name=op.f("fk_unrepairable_files_replica_id_replicas"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unrepairable_files")),
        sa.UniqueConstraint("replica_id", "path", name="uq_unrepairable_files_replica_path"),
    )
    op.create_index("ix_unrepairable_files_package_id", "unrepairable_files", ["package_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_unrepairable_files_package_id", table_name="unrepairable_files")
    op.drop_table("unrepairable_files")
