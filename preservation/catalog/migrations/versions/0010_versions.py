"""versions: package_versions binds package rows into lineages, version_files references stored files

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 05:00:00

Two new tables only (see preservation/catalog/version_models.py): the
upgrade adds them empty, so it is safe on a live catalog; a package that is
never versioned has no row in either.
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

PATH = sa.String(length=1024).with_variant(sa.String(length=1024, collation="C"), "postgresql")
FILE_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "package_versions",
        sa.Column("package_id", sa.String(length=36), nullable=False),
        sa.Column("lineage_id", sa.String(length=36), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("previous_id", sa.String(length=36), nullable=True),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["package_id"], ["packages.id"], name=op.f("fk_package_versions_package_id_packages"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["lineage_id"], ["packages.id"], name=op.f("fk_package_versions_lineage_id_packages")),
        sa.ForeignKeyConstraint(["previous_id"], ["packages.id"],
                                name=op.f("fk_package_versions_previous_id_packages")),
        sa.PrimaryKeyConstraint("package_id", name=op.f("pk_package_versions")),
        sa.UniqueConstraint("lineage_id", "number", name="uq_package_versions_lineage_number"),
    )
    op.create_index(op.f("ix_package_versions_lineage_id"), "package_versions", ["lineage_id"], unique=False)
    op.create_table(
        "version_files",
        sa.Column("package_id", sa.String(length=36), nullable=False),
        sa.Column("path", PATH, nullable=False),
        sa.Column("file_id", FILE_ID, nullable=False),
        sa.ForeignKeyConstraint(["package_id"], ["packages.id"], name=op.f("fk_version_files_package_id_packages"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["file_id"], ["files.id"], name=op.f("fk_version_files_file_id_files")),
        sa.PrimaryKeyConstraint("package_id", "path", name=op.f("pk_version_files")),
    )
    op.create_index("ix_version_files_file_id", "version_files", ["file_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_version_files_file_id", table_name="version_files")
    op.drop_table("version_files")
    op.drop_index(op.f("ix_package_versions_lineage_id"), table_name="package_versions")
    op.drop_table("package_versions")
