"""Migration 0008 on a catalog that already holds usage: old rows get their metric, month, visitor and session
the way ``usage.record`` derives them, so old and new usage count alike; and it goes down again."""

from __future__ import annotations

from datetime import datetime

from alembic import command
from sqlalchemy import create_engine, inspect, text

from preservation.access.usage import pseudonym, session_of
from preservation.catalog import db


def test_old_usage_rows_are_filled_in_and_the_upgrade_goes_down_again(catalog_url):
    config = db._alembic_config(catalog_url)
    command.upgrade(config, "0007")
    engine = create_engine(catalog_url)
    created = {"at": datetime(2025, 1, 1), "yes": True}
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO collections (id, key, title, publisher, licence, access_mode, description, "
                              "created_at) VALUES (1, 'c', 'C', '', '', 'open', '', :at)"), created)
            conn.execute(text("INSERT INTO libraries (id, code, name, contacts, ip_ranges, active, created_at) "
                              "VALUES (1, 'pku', 'PKU', '[]', '[]', :yes, :at)"), created)
            for user_id, kind, at in ((7, "download", datetime(2026, 1, 31, 23, 59, 50)),
                                      (None, "view", datetime(2026, 2, 1, 0, 0, 5))):
                conn.execute(text("INSERT INTO usage_events (occurred_at, library_id, user_id, collection_id, "
                                  "package_id, path, bytes, kind) VALUES (:at, 1, :user, 1, NULL, '', 0, :kind)"),
                             {"at": at, "user": user_id, "kind": kind})
        command.upgrade(config, "0008")
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT metric, month, visitor, session_id FROM usage_events ORDER BY id")).all()
        assert rows[0] == ("request", "2026-01", pseudonym("user:7"),
                           session_of("user:7", datetime(2026, 1, 31, 23, 59, 50)))
        assert rows[1] == ("investigation", "2026-02", pseudonym("library:1"),
                           session_of("library:1", datetime(2026, 2, 1, 0, 0, 5)))
        command.downgrade(config, "0007")
        columns = {c["name"] for c in inspect(engine).get_columns("usage_events")}
        assert not columns & {"metric", "month", "visitor", "session_id", "item_id", "title_id"}
    finally:
        engine.dispose()
