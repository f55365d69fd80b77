"""accounts and notifications: contact address, time zone and language of a library; users' e-mail and
session epoch; password reset tokens; queued e-mail notifications

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 11:00:00

``libraries`` gains ``contact_email`` (decisions and expiring grants are mailed there), ``timezone``
(an IANA name; null is the ``access_timezone`` setting) and ``language`` (of its mails; null is
Chinese).  ``access_users`` gains ``email`` (where a password reset link goes) and
``session_epoch``: a portal session is valid only while it carries the user's current epoch, which
disabling the user or resetting the password moves on.  ``password_resets`` keeps the sha256 of each
reset token, never the token; ``notifications`` is the queue of e-mails, one row per piece of news
(``key`` unique), so that none is sent twice, also after a restart.  Every new column is nullable or
has a default, so existing rows keep their meaning.
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

LIBRARY_COLUMNS = (("contact_email", 254), ("timezone", 64), ("language", 16))


def upgrade() -> None:
    with op.batch_alter_table("libraries") as batch:
        for name, length in LIBRARY_COLUMNS:
            batch.add_column(sa.Column(name, sa.String(length=length), nullable=True))
    with op.batch_alter_table("access_users") as batch:
        batch.add_column(sa.Column("email", sa.String(length=254), nullable=True))
        batch.add_column(sa.Column("session_epoch", sa.Integer(), server_default="0", nullable=False))
    op.create_table(
        "password_resets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.Column("client_ip", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["access_users.id"], name=op.f("fk_password_resets_user_id_access_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_password_resets")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_password_resets_token_hash")),
    )
    op.create_index(op.f("ix_password_resets_user_id"), "password_resets", ["user_id"])
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("recipient", sa.String(length=254), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("key", name=op.f("uq_notifications_key")),
    )
    op.create_index("ix_notifications_unsent", "notifications", ["sent_at", "next_attempt_at"])


def _drop_columns(table: str, names: list[str]) -> None:
    """Drop plain columns in place.  On SQLite a batch copy would drop and re-create ``libraries`` and
    ``access_users``, which other tables' rows reference: refused while foreign keys are enforced."""
    if op.get_bind().dialect.name == "sqlite":
        for name in names:  # SQLite 3.35+ drops a column with no index or constraint in place
            op.execute(f'ALTER TABLE "{table}" DROP COLUMN "{name}"')
        return
    with op.batch_alter_table(table) as batch:
        for name in names:
            batch.drop_column(name)


def downgrade() -> None:
    op.drop_index("ix_notifications_unsent", table_name="notifications")
    op.drop_table("notifications")
    op.drop_index(op.f("ix_password_resets_user_id"), table_name="password_resets")
    op.drop_table("password_resets")
    _drop_columns("access_users", ["session_epoch", "email"])
    _drop_columns("libraries", [name for name, _ in reversed(LIBRARY_COLUMNS)])
