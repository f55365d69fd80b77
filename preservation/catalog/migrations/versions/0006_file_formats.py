"""file formats: what each payload file is (PRONOM identification) and whether it opens (validation)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 04:30:00

A new table only (see preservation/catalog/format_models.py): the upgrade
adds it empty, so it is safe on a live catalog; rows appear as packages are
ingested, and re-identification fills it for packages ingested before.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

PATH = sa.String(length=1024).with_variant(sa.String(length=1024, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table('file_formats',
    sa.Column('package_id', sa.String(length=36), nullable=False),
    sa.Column('path', PATH, nullable=False),
    sa.Column('puid', sa.String(length=32), nullable=True),
    sa.Column('mime', sa.String(length=200), nullable=False),
    sa.Column('format_name', sa.String(length=300), nullable=False),
    sa.Column('format_version', sa.String(length=100), nullable=False),
    sa.Column('basis', sa.String(length=16), nullable=False),
    sa.Column('tool', sa.String(length=32), nullable=False),
    sa.Column('tool_version', sa.String(length=32), nullable=False),
    sa.Column('signature_version', sa.String(length=64), nullable=False),
    sa.Column('identified_at', sa.DateTime(), nullable=False),
    sa.Column('validation', sa.String(length=16), nullable=True),
    sa.Column('validation_kind', sa.String(length=16), nullable=True),
    sa.Column('encrypted', sa.Boolean(), nullable=False),
    sa.Column('drm', sa.Boolean(), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('findings', sa.JSON(), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['package_id'], ['packages.id'], name=op.f('fk_file_formats_package_id_packages'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('package_id', 'path', name=op.f('pk_file_formats'))
    )
    op.create_index('ix_file_formats_puid', 'file_formats', ['puid'], unique=False)
    op.create_index('ix_file_formats_signature_version', 'file_formats', ['signature_version'], unique=False)
    op.create_index('ix_file_formats_encrypted', 'file_formats', ['encrypted'], unique=False)
    op.create_index('ix_file_formats_drm', 'file_formats', ['drm'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_file_formats_drm', table_name='file_formats')
    op.drop_index('ix_file_formats_encrypted', table_name='file_formats')
    op.drop_index('ix_file_formats_signature_version', table_name='file_formats')
    op.drop_index('ix_file_formats_puid', table_name='file_formats')
    op.drop_table('file_formats')
