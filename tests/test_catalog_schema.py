"""The migrations build exactly the tables the models describe, on SQLite and on PostgreSQL.

A model changed without a migration (or a migration that drifts from its
model) shows up here as a difference alembic's autogenerate finds between a
freshly upgraded catalog and ``Base.metadata``; and every migration goes down
to nothing and back up again.
"""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

import preservation.catalog.access_models  # noqa: F401  (registers the tables on Base.metadata)
import preservation.catalog.library_models  # noqa: F401
import preservation.catalog.format_models  # noqa: F401
import preservation.catalog.version_models  # noqa: F401
import preservation.catalog.monitoring_models  # noqa: F401
import preservation.catalog.sample_models  # noqa: F401
import preservation.catalog.chunk_models  # noqa: F401
from preservation.catalog import db
from preservation.catalog.db import Catalog
from preservation.catalog.models import Base
from preservation.catalog.search_tables import include_object


def _context(conn) -> MigrationContext:
    # the search index (FTS5 tables, GIN indexes) lives in migration 0007 only: see search_tables
    return MigrationContext.configure(conn, opts={"include_object": include_object})


def _differences(catalog: Catalog) -> list:
    with catalog.engine.connect() as conn:
        return compare_metadata(_context(conn), Base.metadata)


def test_migrated_catalog_matches_the_models(catalog):
    assert _differences(catalog) == []


def test_every_model_table_is_created_by_the_migrations(catalog):
    tables = set(inspect(catalog.engine).get_table_names())
    assert set(Base.metadata.tables) <= tables


def test_migrations_go_down_to_nothing_and_back_up(catalog, catalog_url):
    config = db._alembic_config(catalog_url)
    command.downgrade(config, "base")
    left = set(inspect(catalog.engine).get_table_names()) - {"alembic_version"}
    assert left == set()
    command.upgrade(config, "head")
    assert _differences(catalog) == []


def test_a_model_change_without_migration_is_seen(catalog):
    from sqlalchemy import Column, Integer, MetaData, Table

    extra = MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(extra)
    Table("not_migrated", extra, Column("id", Integer, primary_key=True))
    with catalog.engine.connect() as conn:
        diff = compare_metadata(_context(conn), extra)
    assert [d[0] for d in diff] == ["add_table"]
