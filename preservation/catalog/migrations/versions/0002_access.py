"""access service: libraries, users, API tokens, entitlements, triggers, requests, grants, usage

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 10:00:00

Only new tables: nothing existing is altered, so the upgrade is safe on a
live catalog and the downgrade drops exactly what the upgrade created.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite autoincrements only INTEGER keys


def upgrade() -> None:
    op.create_table(
        "libraries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("contacts", sa.JSON(), nullable=False),
        sa.Column("ip_ranges", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_libraries")),
        sa.UniqueConstraint("code", name=op.f("uq_libraries_code")),
    )
    op.create_table(
        "login_failures",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("client_ip", sa.String(length=64), nullable=False),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_failures")),
    )
    op.create_index("ix_login_failures_who", "login_failures", ["username", "client_ip", "occurred_at"])

    op.create_table(
        "access_users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("library_id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_login_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["library_id"], ["libraries.id"], name=op.f("fk_access_users_library_id_libraries")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_users")),
        sa.UniqueConstraint("username", name=op.f("uq_access_users_username")),
    )
    op.create_index(op.f("ix_access_users_library_id"), "access_users", ["library_id"])

    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=12), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("last_used_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["access_users.id"], name=op.f("fk_api_tokens_user_id_access_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_index(op.f("ix_api_tokens_user_id"), "api_tokens", ["user_id"])

    op.create_table(
        "entitlements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("library_id", sa.Integer(), nullable=False),
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.Column("from_year", sa.Integer(), nullable=False),
        sa.Column("to_year", sa.Integer(), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["collection_id"], ["collections.id"], name=op.f("fk_entitlements_collection_id_collections")
        ),
        sa.ForeignKeyConstraint(["library_id"], ["libraries.id"], name=op.f("fk_entitlements_library_id_libraries")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_entitlements")),
        sa.UniqueConstraint("library_id", "collection_id", "from_year", "to_year", name="uq_entitlements_range"),
    )
    op.create_index(op.f("ix_entitlements_collection_id"), "entitlements", ["collection_id"])
    op.create_index(op.f("ix_entitlements_library_id"), "entitlements", ["library_id"])

    op.create_table(
        "trigger_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("occurred_on", sa.Date(), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("recorded_by", sa.String(length=100), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["collection_id"], ["collections.id"], name=op.f("fk_trigger_events_collection_id_collections")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trigger_events")),
    )
    op.create_index(op.f("ix_trigger_events_collection_id"), "trigger_events", ["collection_id"])

    op.create_table(
        "access_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("library_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.Column("package_id", sa.String(length=36), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("automatic", sa.Boolean(), nullable=False),
        sa.Column("decided_by", sa.String(length=100), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["collection_id"], ["collections.id"], name=op.f("fk_access_requests_collection_id_collections")
        ),
        sa.ForeignKeyConstraint(["library_id"], ["libraries.id"], name=op.f("fk_access_requests_library_id_libraries")),
        sa.ForeignKeyConstraint(["package_id"], ["packages.id"], name=op.f("fk_access_requests_package_id_packages")),
        sa.ForeignKeyConstraint(["user_id"], ["access_users.id"], name=op.f("fk_access_requests_user_id_access_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_requests")),
    )
    op.create_index("ix_access_requests_library_state", "access_requests", ["library_id", "state"])
    op.create_index(op.f("ix_access_requests_state"), "access_requests", ["state"])

    op.create_table(
        "access_grants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("library_id", sa.Integer(), nullable=False),
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.Column("package_id", sa.String(length=36), nullable=True),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.Column("from_year", sa.Integer(), nullable=True),
        sa.Column("to_year", sa.Integer(), nullable=True),
        sa.Column("granted_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_by", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(
            ["collection_id"], ["collections.id"], name=op.f("fk_access_grants_collection_id_collections")
        ),
        sa.ForeignKeyConstraint(["library_id"], ["libraries.id"], name=op.f("fk_access_grants_library_id_libraries")),
        sa.ForeignKeyConstraint(["package_id"], ["packages.id"], name=op.f("fk_access_grants_package_id_packages")),
        sa.ForeignKeyConstraint(
            ["request_id"], ["access_requests.id"], name=op.f("fk_access_grants_request_id_access_requests")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_grants")),
    )
    op.create_index("ix_access_grants_library_collection", "access_grants", ["library_id", "collection_id"])
    op.create_index(op.f("ix_access_grants_request_id"), "access_grants", ["request_id"])

    op.create_table(
        "usage_events",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.Column("library_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.Column("package_id", sa.String(length=36), nullable=True),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["collection_id"], ["collections.id"], name=op.f("fk_usage_events_collection_id_collections")
        ),
        sa.ForeignKeyConstraint(["library_id"], ["libraries.id"], name=op.f("fk_usage_events_library_id_libraries")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_events")),
    )
    op.create_index("ix_usage_events_library_occurred", "usage_events", ["library_id", "occurred_at"])
    op.create_index(op.f("ix_usage_events_occurred_at"), "usage_events", ["occurred_at"])


def downgrade() -> None:
    # children before parents; dropping a table drops its indexes on both databases
    for table in (
        "usage_events",
        "access_grants",
        "access_requests",
        "trigger_events",
        "entitlements",
        "api_tokens",
        "access_users",
        "login_failures",
        "libraries",
    ):
        op.drop_table(table)
