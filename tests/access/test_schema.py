"""The access tables on SQLite and PostgreSQL: migration 0002 up and down, and the access flow on both."""

from __future__ import annotations

from datetime import timedelta

import pytest
from alembic import command
from sqlalchemy import inspect, text

from preservation.access import accounts, entitlements, login_limits, requests
from preservation.access.delivery import fetch_verified, file_row
from preservation.access.usage import log_usage, usage_report
from preservation.catalog.db import Catalog, _alembic_config, _head_revision
from preservation.catalog.models import utcnow
from preservation.collection import add_collection
from preservation.errors import AuthenticationFailed, TooManyAttempts
from preservation.ingest import ingest

from ..fixtures import make_repo
from .world import PAYLOAD_FILE, make_delivery

ACCESS_TABLES = {"libraries", "access_users", "api_tokens", "entitlements", "trigger_events", "access_requests",
                 "access_grants", "usage_events", "login_counters"}


def test_migration_0002_up_down_up(catalog_url):
    catalog = Catalog(catalog_url)
    try:
        assert catalog.upgrade() == _head_revision(catalog_url)  # 0002, and the migrations after it
        with catalog.engine.connect() as conn:
            assert ACCESS_TABLES <= set(inspect(conn).get_table_names())
        cfg = _alembic_config(catalog_url)
        with catalog.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0001")
        with catalog.engine.connect() as conn:
            names = set(inspect(conn).get_table_names())
        assert not names & (ACCESS_TABLES | {"login_failures"}) and {"packages", "files", "events"} <= names
        assert catalog.upgrade() == _head_revision(catalog_url)
    finally:
        catalog.dispose()


def test_access_flow_on_both_databases(tmp_path, catalog_url):
    repo = make_repo(tmp_path / "home", catalog_url)
    try:
        add_collection(repo, "pca-j", "PCA", access_mode="pca")
        pid = ingest(repo, make_delivery(tmp_path / "d", 1), "pca-j", name="d", bag_info={"Year": "2012"})["package_id"]
        accounts.add_library(repo, "pku", "PKU")
        accounts.add_user(repo, "pku", "alice", "a long enough secret")
        entitlements.add_entitlement(repo, "pku", "pca-j", 2010, 2015)
        principal = accounts.authenticate_password(repo, "alice", "a long enough secret", "10.0.0.1")
        request = requests.request_access(repo, principal, package_id=pid, reason="cancelled")
        assert request["state"] == "approved"
        with repo.catalog.session() as s:
            row = file_row(s, pid, PAYLOAD_FILE)
        with fetch_verified(repo, pid, row, agent=principal.agent) as verified:
            assert verified.size == row.size
        log_usage(repo, principal, collection_id=1, package_id=pid, path=PAYLOAD_FILE, size=row.size, kind="download")
        report = usage_report(repo, utcnow().strftime("%Y-%m"))
        assert [(r["Total_Item_Requests"], r["Unique_Title_Requests"]) for r in report["title_report"]] == [(1, 1)]
        limits = login_limits.LoginLimits(per_address=2, window=timedelta(minutes=15))
        for _ in range(2):
            with pytest.raises(AuthenticationFailed):
                accounts.authenticate_password(repo, "alice", "wrong one", "10.0.0.1", limits=limits)
        with pytest.raises(TooManyAttempts):
            accounts.authenticate_password(repo, "alice", "a long enough secret", "10.0.0.1", limits=limits)
    finally:
        repo.close()


def test_migration_0004_gives_existing_keys_their_old_rights_and_never_widens_one(tmp_path, catalog_url):
    repo = make_repo(tmp_path / "home", catalog_url)
    try:
        accounts.add_library(repo, "pku", "PKU")
        accounts.add_library(repo, "office", "Office")
        accounts.add_user(repo, "pku", "alice", "a long enough secret")
        accounts.add_user(repo, "office", "carol", "a long enough secret", staff=True)
        keys = {scope: accounts.create_token(repo, "carol", scope=scope)["id"] for scope in ("read", "staff", "fixity")}
        keys["alice"] = accounts.create_token(repo, "alice")["id"]
        cfg = _alembic_config(catalog_url)
        with repo.catalog.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0003")
        with repo.catalog.engine.connect() as conn:
            revoked = {row.id for row in conn.execute(text("SELECT id FROM api_tokens WHERE revoked_at IS NOT NULL"))}
            assert "scope" not in {c["name"] for c in inspect(conn).get_columns("api_tokens")}
        # without scopes carol's read and fixity keys would be full staff keys: revoked instead
        assert revoked == {keys["read"], keys["fixity"]}
        assert repo.catalog.upgrade() == _head_revision(catalog_url)
        scopes = {t["id"]: t["scope"] for t in accounts.list_tokens(repo)}
        assert scopes[keys["staff"]] == "staff" and scopes[keys["alice"]] == "read"
    finally:
        repo.close()
