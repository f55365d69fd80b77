"""titles, their identifiers and expected coverage, library title entitlements, items and their files

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 04:40:00

New tables only (see preservation/catalog/library_models.py): the upgrade
adds them empty, so it is safe on a live catalog; items appear as packages
are ingested (or re-read), titles as KBART files are imported.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table('titles',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('collection_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('title', sa.String(length=1000), nullable=False),
    sa.Column('title_transliterated', sa.String(length=1000), nullable=False),
    sa.Column('title_english', sa.String(length=1000), nullable=False),
    sa.Column('publisher', sa.String(length=300), nullable=False),
    sa.Column('kbart', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['collection_id'], ['collections.id'], name=op.f('fk_titles_collection_id_collections')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_titles'))
    )
    op.create_index('ix_titles_collection_kind', 'titles', ['collection_id', 'kind'], unique=False)
    op.create_table('expected_coverage',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('title_id', sa.Integer(), nullable=False),
    sa.Column('first_date', sa.String(length=10), nullable=False),
    sa.Column('first_volume', sa.String(length=32), nullable=False),
    sa.Column('first_issue', sa.String(length=32), nullable=False),
    sa.Column('last_date', sa.String(length=10), nullable=False),
    sa.Column('last_volume', sa.String(length=32), nullable=False),
    sa.Column('last_issue', sa.String(length=32), nullable=False),
    sa.Column('embargo_info', sa.String(length=32), nullable=False),
    sa.Column('coverage_depth', sa.String(length=32), nullable=False),
    sa.Column('line_no', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['title_id'], ['titles.id'], name=op.f('fk_expected_coverage_title_id_titles'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_expected_coverage'))
    )
    op.create_index(op.f('ix_expected_coverage_title_id'), 'expected_coverage', ['title_id'], unique=False)
    op.create_table('items',
    sa.Column('id', BIG_ID, autoincrement=True, nullable=False),
    sa.Column('package_id', sa.String(length=36), nullable=False),
    sa.Column('title_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('doi', sa.String(length=300), nullable=True),
    sa.Column('item_title', sa.Text(), nullable=False),
    sa.Column('authors', sa.Text(), nullable=False),
    sa.Column('language', sa.String(length=16), nullable=False),
    sa.Column('year', sa.Integer(), nullable=True),
    sa.Column('published', sa.String(length=10), nullable=False),
    sa.Column('volume', sa.String(length=32), nullable=False),
    sa.Column('issue', sa.String(length=32), nullable=False),
    sa.Column('first_page', sa.String(length=32), nullable=False),
    sa.Column('last_page', sa.String(length=32), nullable=False),
    sa.Column('isbn', sa.String(length=13), nullable=False),
    sa.Column('source_format', sa.String(length=16), nullable=False),
    sa.Column('metadata_path', sa.String(length=1024), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['package_id'], ['packages.id'], name=op.f('fk_items_package_id_packages'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['title_id'], ['titles.id'], name=op.f('fk_items_title_id_titles')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_items'))
    )
    op.create_index(op.f('ix_items_package_id'), 'items', ['package_id'], unique=False)
    op.create_index('ix_items_title_year_volume_issue', 'items', ['title_id', 'year', 'volume', 'issue'], unique=False)
    op.create_index('uq_items_doi', 'items', ['doi'], unique=True, sqlite_where=sa.text('doi IS NOT NULL'), postgresql_where=sa.text('doi IS NOT NULL'))
    op.create_table('title_entitlements',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('library_id', sa.Integer(), nullable=False),
    sa.Column('title_id', sa.Integer(), nullable=False),
    sa.Column('first_date', sa.String(length=10), nullable=False),
    sa.Column('first_volume', sa.String(length=32), nullable=False),
    sa.Column('first_issue', sa.String(length=32), nullable=False),
    sa.Column('last_date', sa.String(length=10), nullable=False),
    sa.Column('last_volume', sa.String(length=32), nullable=False),
    sa.Column('last_issue', sa.String(length=32), nullable=False),
    sa.Column('line_no', sa.Integer(), nullable=False),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['library_id'], ['libraries.id'], name=op.f('fk_title_entitlements_library_id_libraries')),
    sa.ForeignKeyConstraint(['title_id'], ['titles.id'], name=op.f('fk_title_entitlements_title_id_titles'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_title_entitlements'))
    )
    op.create_index('ix_title_entitlements_library_title', 'title_entitlements', ['library_id', 'title_id'], unique=False)
    op.create_index(op.f('ix_title_entitlements_title_id'), 'title_entitlements', ['title_id'], unique=False)
    op.create_table('title_identifiers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('title_id', sa.Integer(), nullable=False),
    sa.Column('scheme', sa.String(length=16), nullable=False),
    sa.Column('value', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['title_id'], ['titles.id'], name=op.f('fk_title_identifiers_title_id_titles'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_title_identifiers')),
    sa.UniqueConstraint('title_id', 'scheme', 'value', name='uq_title_identifiers_title_scheme_value')
    )
    op.create_index('ix_title_identifiers_scheme_value', 'title_identifiers', ['scheme', 'value'], unique=False)
    op.create_table('item_files',
    sa.Column('id', BIG_ID, autoincrement=True, nullable=False),
    sa.Column('item_id', BIG_ID, nullable=False),
    sa.Column('package_id', sa.String(length=36), nullable=False),
    sa.Column('path', sa.String(length=1024), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['items.id'], name=op.f('fk_item_files_item_id_items'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_item_files')),
    sa.UniqueConstraint('item_id', 'path', name='uq_item_files_item_path')
    )
    op.create_index('ix_item_files_package_path', 'item_files', ['package_id', 'path'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_item_files_package_path', table_name='item_files')
    op.drop_table('item_files')
    op.drop_index('ix_title_identifiers_scheme_value', table_name='title_identifiers')
    op.drop_table('title_identifiers')
    op.drop_index(op.f('ix_title_entitlements_title_id'), table_name='title_entitlements')
    op.drop_index('ix_title_entitlements_library_title', table_name='title_entitlements')
    op.drop_table('title_entitlements')
    op.drop_index('uq_items_doi', table_name='items', sqlite_where=sa.text('doi IS NOT NULL'), postgresql_where=sa.text('doi IS NOT NULL'))
    op.drop_index('ix_items_title_year_volume_issue', table_name='items')
    op.drop_index(op.f('ix_items_package_id'), table_name='items')
    op.drop_table('items')
    op.drop_index(op.f('ix_expected_coverage_title_id'), table_name='expected_coverage')
    op.drop_table('expected_coverage')
    op.drop_index('ix_titles_collection_kind', table_name='titles')
    op.drop_table('titles')
