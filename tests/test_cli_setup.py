"""Forgiving setup (issue 19 point 9) and the package commands (point 8)."""

from __future__ import annotations

import json
import os
import uuid
from types import SimpleNamespace

from sqlalchemy import func, select

from preservation.catalog.models import Package
from preservation import ingest as ingest_module
from preservation.ingest import ingest

from .fixtures import make_repo


def test_a_wrong_home_creates_nothing(run_cli, tmp_path):
    wrong = tmp_path / "typo"
    for args in (("status",), ("node", "list", "--json"), ("events", "list"), ("package", "list")):
        out = run_cli(*args, exit_code=7, home=wrong)
        assert "E201" in out.stderr or "E201" in out.stdout
    assert not wrong.exists()
    wrong.mkdir()
    out = run_cli("status", "--json", exit_code=7, home=wrong)
    error = json.loads(out.stderr)["error"]
    assert error["code"] == "E201" and "--home" in error["message"]
    assert list(wrong.iterdir()) == []


def test_a_config_holding_node_keys_readable_by_others_is_warned_about(run_cli, caplog):
    run_cli("init")
    config = run_cli.home / "preserve.yaml"
    config.write_text("node_credentials:\n  n1: {key_id: coordinator, key: 0123456789abcdef0123}\n", encoding="utf-8")
    os.chmod(config, 0o644)
    run_cli("node", "list")
    warned = [r.getMessage() for r in caplog.records if r.name == "preserve.config"]
    assert len(warned) == 1 and "chmod 600" in warned[0] and "644" in warned[0]
    caplog.clear()
    os.chmod(config, 0o600)
    run_cli("node", "list")
    assert not [r for r in caplog.records if r.name == "preserve.config"]


def test_an_identical_delivery_is_refused_unless_allowed(run_cli, sample_delivery):
    repo = make_repo(run_cli.home)
    try:
        first = ingest(repo, str(sample_delivery), "journals")["package_id"]
        out = run_cli("ingest", str(sample_delivery), "--collection", "journals", "--json", exit_code=23)
        error = json.loads(out.stderr)["error"]
        assert error["code"] == "E505" and first in error["message"] and error["params"]["package"] == first
        with repo.catalog.session() as s:
            assert s.scalar(select(func.count()).select_from(Package)) == 1
        assert [p.name for p in (repo.settings.home / "staging").iterdir() if p.name != first] == []
        second = run_cli("ingest", str(sample_delivery), "--collection", "journals", "--allow-duplicate",
                         "--json").json()
        assert second["package_id"] != first
        (sample_delivery / "新.txt").write_text("one more file", encoding="utf-8")
        third = run_cli("ingest", str(sample_delivery), "--collection", "journals", "--json").json()
        assert third["package_id"] not in (first, second["package_id"])
    finally:
        repo.close()


def test_package_list_and_show_with_prefixes(run_cli, sample_delivery):
    repo = make_repo(run_cli.home)
    try:
        ids = [ingest(repo, str(sample_delivery), "journals", name=f"p{i}", replicate=i == 0)["package_id"]
               for i in range(3)]
    finally:
        repo.close()
    page = run_cli("package", "list", "--json").json()
    assert page["total"] == 3 and page["count"] == 3 and [p["package_id"] for p in page["packages"]] == ids
    assert page["packages"][0]["verified_copies"] == 3 and page["packages"][1]["copies"] == 3
    second = run_cli("package", "list", "--limit", "1", "--offset", "1", "--json").json()
    assert second["count"] == 1 and second["total"] == 3 and second["packages"][0]["name"] == "p1"
    assert run_cli("package", "list", "--state", "preserved", "--json").json()["total"] == 1
    assert run_cli("package", "list", "--name", "p2", "--json").json()["packages"][0]["package_id"] == ids[2]
    assert run_cli("package", "list", "--name", "%", "--json").json()["total"] == 0
    assert run_cli("package", "list", "--node", "uni-pku", "--json").json()["total"] == 3
    run_cli("package", "list", "--collection", "nope", exit_code=5)
    run_cli("package", "list", "--node", "nope", exit_code=5)
    run_cli("package", "list", "--limit", "0", exit_code=2)
    run_cli("package", "list", "--offset", "-1", exit_code=2)
    text = run_cli("package", "list").output
    assert ids[0][:8] in text and "p0" in text and "3/3 verified" in text

    shown = run_cli("package", "show", ids[0][:8], "--json").json()
    assert shown["package_id"] == ids[0] and shown["state"] == "preserved" and len(shown["replicas"]) == 3
    assert shown["events"] > 0 and shown["bag_info"]["Bag-Group-Identifier"] == "journals"
    assert "copies" in run_cli("package", "show", ids[1]).output
    assert run_cli("package", "show", ids[1], "--json").json()["jobs"][0]["kind"] == "replicate"
    run_cli("package", "show", "abc", exit_code=2)
    out = run_cli("package", "show", "ffffffff-0000", "--json", exit_code=5)
    assert json.loads(out.stderr)["error"]["code"] == "E110"
    out = run_cli("package", "show", "x\x1b[31m", exit_code=5)
    assert "\x1b" not in out.stderr


def test_an_ambiguous_prefix_lists_the_candidates(run_cli, sample_delivery, monkeypatch):
    ids = ["abcdef01-0000-4000-8000-000000000001", "abcdef01-0000-4000-8000-000000000002"]
    chosen = iter(uuid.UUID(i) for i in ids)  # two ids that share their first eight characters
    monkeypatch.setattr(ingest_module, "uuid", SimpleNamespace(uuid4=lambda: next(chosen)))
    repo = make_repo(run_cli.home)
    try:
        assert [ingest(repo, str(sample_delivery), "journals", replicate=False)["package_id"] for _ in ids] == ids
    finally:
        repo.close()
    out = run_cli("package", "show", "abcdef01", "--json", exit_code=20)
    error = json.loads(out.stderr)["error"]
    assert error["code"] == "E116" and error["params"]["candidates"] == ids
    assert ids[1] in error["message"] and "more characters" in error["message"]
    run_cli("restore", "abcd", "/nonexistent/x", exit_code=20)
    assert run_cli("package", "show", ids[1].upper(), "--json").json()["package_id"] == ids[1]


def test_packages_events_and_incidents_on_both_catalogs(run_cli, sample_delivery, catalog_url):
    repo = make_repo(run_cli.home, catalog_url)
    try:
        ids = [ingest(repo, str(sample_delivery), "journals", name=f"文献_{i}%")["package_id"] for i in range(2)]
    finally:
        repo.close()
    page = run_cli("package", "list", "--name", "_1%", "--json").json()
    assert [p["package_id"] for p in page["packages"]] == [ids[1]] and page["total"] == 1
    assert run_cli("package", "list", "--collection", "journals", "--limit", "1", "--json").json()["total"] == 2
    assert run_cli("package", "show", ids[0][:8].upper(), "--json").json()["verified_copies"] == 3
    ingestion = run_cli("events", "list", "--package", ids[1][:10], "--type", "ingestion", "--since", "1h",
                        "--json").json()
    assert ingestion["count"] == 1 and ingestion["events"][0]["package_id"] == ids[1]
    assert run_cli("events", "list", "--outcome", "failure", "--json").json()["count"] == 0
    found = run_cli("status", "--since", "2000-01-01", "--json").json()["incidents"]
    assert found["damage_found"] == found["dead_jobs"] == found["repaired"] == 0 and found["recent"] == []
