"""file_chunks: per-chunk digests of payload files larger than one chunk, for verified streaming

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 12:00:00

One row per file (``package_id``, ``path`` of its ``files`` row): the
chunk size, the algorithm and every chunk's digest in one binary value
(see ``preservation.catalog.chunk_models.FileChunks``).  Files of existing
packages have no row: they are served as before, spooled and verified
whole, and that first serving fills it.
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "file_chunks",
        sa.Column("package_id", sa.String(length=36), nullable=False),
        sa.Column("path", sa.String(length=1024).with_variant(sa.String(length=1024, collation="C"), "postgresql"),
                  nullable=False),
        sa.Column("chunk_bytes", sa.Integer(), nullable=False),
        sa.Column("algorithm", sa.String(length=16), nullable=False),
        sa.Column("digests", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["package_id"], ["packages.id"], name=op.f("fk_file_chunks_package_id_packages"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("package_id", "path", name=op.f("pk_file_chunks")),
    )


def downgrade() -> None:
    op.drop_table("file_chunks")
