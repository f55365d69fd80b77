"""search_bigrams in PL/pgSQL: the same arrays for less of the server's time

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06 14:50:00

PostgreSQL only (SQLite's bigram tables are filled in SQL by
``catalog.search_index``).  The GIN indexes on ``search_bigrams(column)``
compute the function for every title and item written; as a SQL function
with a sub-query it cost a KBART import of 83,334 titles about 1.5 s of the
server's CPU.  The PL/pgSQL definition
(:func:`~preservation.catalog.search_tables.bigram_function_sql`) gives
every value the same set of runs, so the indexes built with the old one stay
valid and are kept as they are; ``tests/search/test_bigram_function.py``
holds the two definitions equal.  The downgrade puts the SQL function back.
"""

from alembic import op

from preservation.catalog.search_tables import bigram_function_sql

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(bigram_function_sql(migration="0021"))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(bigram_function_sql(migration="0007"))
