"""initial catalog

Revision ID: 0001
Revises:
Create Date: 2026-11-25 18:59:33.473179
"""

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('collections',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('title', sa.String(length=500), nullable=False),
    sa.Column('publisher', sa.String(length=300), nullable=False),
    sa.Column('licence', sa.String(length=300), nullable=False),
    sa.Column('access_mode', sa.String(length=16), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_collections')),
    sa.UniqueConstraint('key', name=op.f('uq_collections_key'))
    )
    op.create_table('event_chain_head',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_event_chain_head'))
    )
    op.create_table('events',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('event_type', sa.String(length=64), nullable=False),
    sa.Column('occurred_at', sa.DateTime(), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('agent', sa.String(length=200), nullable=False),
    sa.Column('package_id', sa.String(length=36), nullable=True),
    sa.Column('replica_id', sa.Integer(), nullable=True),
    sa.Column('node_name', sa.String(length=64), nullable=True),
    sa.Column('job_id', sa.BigInteger(), nullable=True),
    sa.Column('policy', sa.String(length=100), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_events')),
    sa.UniqueConstraint('event_id', name=op.f('uq_events_event_id'))
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_events_job_id'), ['job_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_events_package_id'), ['package_id'], unique=False)

    op.create_table('jobs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('package_id', sa.String(length=36), nullable=True),
    sa.Column('dedupe_key', sa.String(length=200), nullable=True),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('run_after', sa.DateTime(), nullable=False),
    sa.Column('lease_owner', sa.String(length=200), nullable=True),
    sa.Column('lease_expires_at', sa.DateTime(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('result', sa.JSON(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_jobs')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_jobs_dedupe_key'))
    )
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_jobs_package_id'), ['package_id'], unique=False)
        batch_op.create_index('ix_jobs_state_run_after', ['state', 'run_after'], unique=False)

    op.create_table('nodes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('org_type', sa.String(length=16), nullable=False),
    sa.Column('organisation', sa.String(length=200), nullable=False),
    sa.Column('region', sa.String(length=64), nullable=False),
    sa.Column('uri', sa.String(length=1000), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('capacity_bytes', sa.BigInteger(), nullable=True),
    sa.Column('read_budget_bytes_per_day', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_nodes')),
    sa.UniqueConstraint('name', name=op.f('uq_nodes_name'))
    )
    op.create_table('packages',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('collection_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=500), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('source_kind', sa.String(length=16), nullable=False),
    sa.Column('bagit_version', sa.String(length=8), nullable=False),
    sa.Column('payload_oxum', sa.String(length=64), nullable=False),
    sa.Column('payload_files', sa.BigInteger(), nullable=False),
    sa.Column('payload_bytes', sa.BigInteger(), nullable=False),
    sa.Column('total_bytes', sa.BigInteger(), nullable=False),
    sa.Column('bag_info', sa.JSON(), nullable=False),
    sa.Column('policy', sa.String(length=100), nullable=False),
    sa.Column('staging_path', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('preserved_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['collection_id'], ['collections.id'], name=op.f('fk_packages_collection_id_collections')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_packages'))
    )
    with op.batch_alter_table('packages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_packages_collection_id'), ['collection_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_packages_state'), ['state'], unique=False)

    op.create_table('files',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('package_id', sa.String(length=36), nullable=False),
    sa.Column('path', sa.String(length=1024).with_variant(sa.String(length=1024, collation='C'), 'postgresql'), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('sha512', sa.String(length=128), nullable=False),
    sa.Column('is_tag', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['package_id'], ['packages.id'], name=op.f('fk_files_package_id_packages'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_files')),
    sa.UniqueConstraint('package_id', 'path', name='uq_files_package_path')
    )
    op.create_table('replicas',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('package_id', sa.String(length=36), nullable=False),
    sa.Column('node_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('bytes', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('verified_at', sa.DateTime(), nullable=True),
    sa.Column('last_audit_at', sa.DateTime(), nullable=True),
    sa.Column('next_audit_at', sa.DateTime(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['node_id'], ['nodes.id'], name=op.f('fk_replicas_node_id_nodes')),
    sa.ForeignKeyConstraint(['package_id'], ['packages.id'], name=op.f('fk_replicas_package_id_packages'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_replicas')),
    sa.UniqueConstraint('package_id', 'node_id', name='uq_replicas_package_node')
    )
    with op.batch_alter_table('replicas', schema=None) as batch_op:
        batch_op.create_index('ix_replicas_next_audit', ['next_audit_at'], unique=False)
        batch_op.create_index('ix_replicas_node_state', ['node_id', 'state'], unique=False)
        batch_op.create_index(batch_op.f('ix_replicas_package_id'), ['package_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_replicas_state'), ['state'], unique=False)
    chain_head = sa.table("event_chain_head", sa.column("id", sa.Integer), sa.column("seq", sa.BigInteger), sa.column("hash", sa.String))
    op.bulk_insert(chain_head, [{"id": 1, "seq": 0, "hash": "0" * 64}])


def downgrade() -> None:
    with op.batch_alter_table('replicas', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_replicas_state'))
        batch_op.drop_index(batch_op.f('ix_replicas_package_id'))
        batch_op.drop_index('ix_replicas_node_state')
        batch_op.drop_index('ix_replicas_next_audit')

    op.drop_table('replicas')
    op.drop_table('files')
    with op.batch_alter_table('packages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_packages_state'))
        batch_op.drop_index(batch_op.f('ix_packages_collection_id'))

    op.drop_table('packages')
    op.drop_table('nodes')
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_jobs_state_run_after')
        batch_op.drop_index(batch_op.f('ix_jobs_package_id'))

    op.drop_table('jobs')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_events_package_id'))
        batch_op.drop_index(batch_op.f('ix_events_job_id'))

    op.drop_table('events')
    op.drop_table('event_chain_head')
    op.drop_table('collections')
