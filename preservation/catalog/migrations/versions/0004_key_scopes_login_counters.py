"""access service: API key scopes, and login attempts counted before the password is checked

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 01:30:00

``api_tokens.scope``: each existing key keeps what it could do on the JSON
API — a library user's key becomes ``read``, a staff user's key ``staff``.
A staff key is no longer accepted by the fixity API (``/api/v2``), whose
clients send the key in the URL: after upgrading, give the fixity tool a key
made with ``preserve library token create USER --scope fixity``.

``login_counters`` replaces ``login_failures``: one row per username and
address (and per username from any address, ``*``), incremented atomically.
The failures of the last window are not carried over (at worst an attacker
gets one more window of attempts, once, at the upgrade).
"""

from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("scope", sa.String(length=16), nullable=True))
    tokens = sa.table("api_tokens", sa.column("user_id", sa.Integer()), sa.column("scope", sa.String()))
    users = sa.table("access_users", sa.column("id", sa.Integer()), sa.column("role", sa.String()))
    staff_ids = sa.select(users.c.id).where(users.c.role == "staff")
    op.execute(tokens.update().where(tokens.c.user_id.in_(staff_ids)).values(scope="staff"))
    op.execute(tokens.update().where(tokens.c.scope.is_(None)).values(scope="read"))
    with op.batch_alter_table("api_tokens") as batch:
        batch.alter_column("scope", existing_type=sa.String(length=16), nullable=False)

    op.create_table(
        "login_counters",
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("client_ip", sa.String(length=64), nullable=False),
        sa.Column("window_start", sa.DateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("username", "client_ip", name=op.f("pk_login_counters")),
    )
    op.create_index(op.f("ix_login_counters_window_start"), "login_counters", ["window_start"])
    op.drop_index("ix_login_failures_who", table_name="login_failures")
    op.drop_table("login_failures")


def downgrade() -> None:
    # Without scopes every key is a key of its user's role: revoke the keys that would
    # gain rights (fixity keys, and read keys of staff users) rather than widen them.
    tokens = sa.table("api_tokens", sa.column("user_id", sa.Integer()), sa.column("scope", sa.String()),
                      sa.column("revoked_at", sa.DateTime()))
    users = sa.table("access_users", sa.column("id", sa.Integer()), sa.column("role", sa.String()))
    staff_ids = sa.select(users.c.id).where(users.c.role == "staff")
    widened = sa.or_(tokens.c.scope == "fixity", sa.and_(tokens.c.scope == "read", tokens.c.user_id.in_(staff_ids)))
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    op.execute(tokens.update().where(widened, tokens.c.revoked_at.is_(None)).values(revoked_at=now))
    op.create_table(
        "login_failures",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("client_ip", sa.String(length=64), nullable=False),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_failures")),
    )
    op.create_index("ix_login_failures_who", "login_failures", ["username", "client_ip", "occurred_at"])
    op.drop_index(op.f("ix_login_counters_window_start"), table_name="login_counters")
    op.drop_table("login_counters")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("scope")
