"""The operator's tour through `preserve`, in-process, checking exit codes and JSON."""

from __future__ import annotations

import sqlite3

from devtools.demo import make_sample_delivery

from .corruption import flip_bit

NODES = [("uni-pku", "university", "beijing"), ("cas-nsl", "cas", "beijing"), ("inst-istic", "institute", "wuhan")]


def _network(run_cli, tmp_path):
    run_cli("init")
    for name, org_type, region in NODES:
        run_cli("node", "add", name, "--type", org_type, "--region", region, "--uri", (tmp_path / name).as_uri(),
                "--create")
    run_cli("collection", "add", "journals", "--title", "期刊", "--publisher", "P", "--licence", "L")


def test_tour(run_cli, tmp_path):
    _network(run_cli, tmp_path)
    assert [n["name"] for n in run_cli("node", "list", "--json").json()["nodes"]] == ["cas-nsl", "inst-istic", "uni-pku"]
    assert run_cli("collection", "list", "--json").json()["collections"][0]["key"] == "journals"
    delivery = make_sample_delivery(tmp_path / "delivery", megabytes=1)
    ingested = run_cli("ingest", str(delivery), "--collection", "journals", "--inline", "--json").json()
    assert ingested["ok"] and ingested["state"] == "preserved"
    status = run_cli("status", "--json").json()
    assert status["packages"]["preserved"]["count"] == 1
    assert status["replicas"]["verified"] == 3
    assert sorted(n["org_type"] for n in status["nodes"] if n["verified"]) == ["cas", "institute", "university"]
    assert run_cli("audit", "--json").json()["ok"]
    assert run_cli("events", "verify", "--json").json()["ok"]
    events = run_cli("events", "list", "--package", ingested["package_id"], "--json").json()
    assert events["events"][0]["event_type"] == "ingestion" and events["count"] == len(events["events"])
    pid = ingested["package_id"]
    target = tmp_path / "cas-nsl" / pid / "data/期刊/物理学报/2024/元数据.xml"
    flip_bit(target)
    out = run_cli("audit", exit_code=1)
    assert "cas-nsl" in out.output and "元数据.xml" in out.output and "A002" in out.output
    report = run_cli("audit", "--package", pid, "--json", exit_code=1).json()
    assert report["replicas_failed"] == 1
    restored = run_cli("restore", pid, str(tmp_path / "restored"), "--json").json()
    assert restored["files"] > 0


def test_usage_errors_have_codes_and_exit_codes(run_cli, tmp_path):
    out = run_cli("status", exit_code=7)
    assert "E201" in out.stderr and "preserve init" in out.stderr
    _network(run_cli, tmp_path)
    out = run_cli("node", "add", "uni-pku", "--type", "cas", "--region", "x", "--uri", (tmp_path / "z").as_uri(),
                  exit_code=6)
    assert "exists already" in out.stderr
    out = run_cli("node", "add", "n9", "--type", "cas", "--region", "x", "--uri", "ftp://example/x", exit_code=4)
    assert "E308" in out.stderr
    out = run_cli("ingest", str(tmp_path / "nope"), "--collection", "journals", exit_code=2)
    assert "does not exist" in out.stderr
    out = run_cli("audit", "--package", "nope", exit_code=5)
    assert "no package" in out.stderr


def test_rejected_delivery_lists_every_finding(run_cli, tmp_path):
    _network(run_cli, tmp_path)
    d = tmp_path / "bad"
    d.mkdir()
    (d / "a\nb").write_text("x")
    (d / "caf\u00e9").write_text("1")
    (d / "cafe\u0301").write_text("2")
    out = run_cli("ingest", str(d), "--collection", "journals", "--json", exit_code=10)
    body = out.json()
    assert not body["ok"] and len(body["findings"]) >= 2


def test_tampered_event_is_named_by_verify(run_cli, tmp_path):
    _network(run_cli, tmp_path)
    delivery = make_sample_delivery(tmp_path / "delivery", megabytes=1)
    run_cli("ingest", str(delivery), "--collection", "journals", "--inline")
    db = sqlite3.connect(run_cli.home / "catalog.sqlite")
    db.execute("UPDATE events SET outcome = 'success', agent = 'mallory' WHERE seq = 4")
    db.commit()
    db.close()
    out = run_cli("events", "verify", exit_code=1)
    assert "event 4" in out.stderr
    assert run_cli("events", "verify", "--json", exit_code=1).json()["first_break"]["seq"] == 4


def test_outdated_catalog_tells_operator_to_upgrade(run_cli, tmp_path):
    _network(run_cli, tmp_path)
    db = sqlite3.connect(run_cli.home / "catalog.sqlite")
    db.execute("DELETE FROM alembic_version")
    db.commit()
    db.close()
    out = run_cli("node", "list", exit_code=7)
    assert "E202" in out.stderr and "preserve catalog upgrade" in out.stderr
