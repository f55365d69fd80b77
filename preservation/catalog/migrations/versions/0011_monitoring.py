"""monitoring: heartbeats, node_probes, alerts, alert_deliveries; indexes for the last day's events and audits

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 05:20:00

New tables only, plus two indexes on existing tables (events.occurred_at,
replicas.last_audit_at) for the metrics collector: safe on a live catalog
(see preservation/catalog/monitoring_models.py).
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

DELIVERY_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "heartbeats",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False),
        sa.Column("stopped_at", sa.DateTime(), nullable=True),
        sa.Column("doing", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_heartbeats")),
        sa.UniqueConstraint("role", "name", name="uq_heartbeats_role_name"),
    )
    op.create_index("ix_heartbeats_last_seen_at", "heartbeats", ["last_seen_at"], unique=False)
    op.create_table(
        "node_probes",
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("checked_at", sa.DateTime(), nullable=False),
        sa.Column("reachable", sa.Boolean(), nullable=False),
        sa.Column("unreachable_since", sa.DateTime(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["node_id"], ["nodes.id"], name=op.f("fk_node_probes_node_id_nodes"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("node_id", name=op.f("pk_node_probes")),
    )
    op.create_table(
        "alerts",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=500), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False),
        sa.Column("resolved_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_alerts")),
    )
    op.create_index("ix_alerts_resolved_at", "alerts", ["resolved_at"], unique=False)
    op.create_table(
        "alert_deliveries",
        sa.Column("id", DELIVERY_ID, autoincrement=True, nullable=False),
        sa.Column("alert_key", sa.String(length=200), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_deliveries")),
    )
    op.create_index("ix_alert_deliveries_key_channel", "alert_deliveries", ["alert_key", "channel", "sent_at"],
                    unique=False)
    op.create_index("ix_alert_deliveries_sent_at", "alert_deliveries", ["sent_at"], unique=False)
    op.create_index("ix_events_occurred_at", "events", ["occurred_at"], unique=False)
    op.create_index("ix_replicas_last_audit", "replicas", ["last_audit_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_replicas_last_audit", table_name="replicas")
    op.drop_index("ix_events_occurred_at", table_name="events")
    op.drop_index("ix_alert_deliveries_sent_at", table_name="alert_deliveries")
    op.drop_index("ix_alert_deliveries_key_channel", table_name="alert_deliveries")
    op.drop_table("alert_deliveries")
    op.drop_index("ix_alerts_resolved_at", table_name="alerts")
    op.drop_table("alerts")
    op.drop_table("node_probes")
    op.drop_index("ix_heartbeats_last_seen_at", table_name="heartbeats")
    op.drop_table("heartbeats")
