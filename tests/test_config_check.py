"""`preserve config check`: a healthy home passes, and each failing check is reported with its code and
makes the command exit 1 (warnings do not); nothing is created on a wrong home, nothing left on a node."""

from __future__ import annotations

import http.server
import json
import shutil
import threading

import pytest
import yaml
from sqlalchemy import text

from preservation import codes
from preservation.errors import StorageUnavailable
from preservation.nodes import add_node
from preservation.repository import Repository
from preservation.settings import DEFAULT_POLICY
from storage_adapters.features import free_space
from storage_adapters.node import NodeStore

from .fixtures import make_repo
from .node_agent.agents import KEY, KEY_ID

SMALL = "1M"  # the free-space margin of these tests (the machine's disk need not hold the default 1 GiB)


@pytest.fixture
def home(tmp_path):
    repo = make_repo(tmp_path / "home")
    repo.close()
    return tmp_path / "home"


def _check(run_cli, home, *extra, exit_code=0):
    result = run_cli("config", "check", "--json", "--min-free", SMALL, *extra, home=home, exit_code=exit_code)
    return result.json()


def _by(report, code):
    return [c for c in report["checks"] if c["code"] == code]


def _config(home):
    path = home / "preserve.yaml"
    return path, yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def test_a_healthy_home_passes_and_the_probes_leave_nothing(run_cli, home):
    report = _check(run_cli, home)
    assert report["passed"] is True and report["counts"]["fail"] == 0
    assert report["count"] == len(report["checks"]) > 10
    for node in ("uni-pku", "cas-nsl", "inst-istic"):
        mine = {c["check"]: c["status"] for c in report["checks"] if c["subject"] == node}
        assert mine == {"node credentials": "ok", "node reachable": "ok", "node writable": "ok",
                        "node free space": "ok"}, mine
        assert not any((node_root_of(home, node) / ".preserve" / "tmp").glob("config-check-*"))
    statuses = {c["check"]: c["status"] for c in report["checks"] if not c["subject"] or c["check"].startswith(
        ("config", "policy", "catalog", "checkpoint"))}
    assert statuses["catalog"] == statuses["catalog schema"] == statuses["policy"] == "ok"
    text_out = run_cli("config", "check", "--min-free", SMALL, home=home).output
    assert "config check of" in text_out and " fail" in text_out


def node_root_of(home, node):
    return home / "nodes" / node


def test_an_unparsable_config_fails(run_cli, home):
    (home / "preserve.yaml").write_text("catalog_url: [unclosed\n", encoding="utf-8")
    report = _check(run_cli, home, exit_code=1)
    [bad] = _by(report, codes.CONFIG_UNREADABLE)
    assert bad["status"] == "fail" and report["count"] == 1


def test_a_config_others_may_change_fails_and_one_others_may_read_warns(run_cli, home):
    path, data = _config(home)
    data["access_secret"] = "s" * 40
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    path.chmod(0o644)
    report = _check(run_cli, home)  # a warning only: exit 0
    assert [c["status"] for c in _by(report, codes.CONFIG_READABLE)] == ["warn"]
    path.chmod(0o666)
    report = _check(run_cli, home, exit_code=1)
    assert [c["status"] for c in _by(report, codes.CONFIG_WRITABLE)] == ["fail"]


def test_a_bad_policy_fails(run_cli, home, tmp_path):
    policy = tmp_path / "bad-policy.yaml"
    policy.write_text(DEFAULT_POLICY.read_text(encoding="utf-8").replace("copies: 3", "copies: 0"), encoding="utf-8")
    path, data = _config(home)
    data["policy"] = str(policy)
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    report = _check(run_cli, home, exit_code=1)
    [bad] = _by(report, codes.CONFIG_POLICY)
    assert "E101" in bad["message"] and "copies" in bad["message"]


def test_a_key_file_others_may_read_fails_and_a_missing_one_too(run_cli, home):
    _, data = _config(home)
    key = home / data["checkpoints"]["key"]
    key.chmod(0o644)
    report = _check(run_cli, home, exit_code=1)
    assert [c["status"] for c in _by(report, codes.KEY_EXPOSED)] == ["fail"]
    key.unlink()
    report = _check(run_cli, home, exit_code=1)
    assert [c["status"] for c in _by(report, codes.KEY_MISSING)] == ["fail"]


def test_a_wrong_home_fails_and_nothing_is_created(run_cli, tmp_path):
    wrong = tmp_path / "typo"
    wrong.mkdir()
    report = _check(run_cli, wrong, exit_code=1)
    assert [c["status"] for c in _by(report, codes.CATALOG_UNREACHABLE)] == ["fail"]
    assert [c["status"] for c in _by(report, codes.CONFIG_ABSENT)] == ["warn"]
    assert list(wrong.iterdir()) == []


def test_a_catalog_behind_the_migrations_fails(run_cli, home):
    repo = make_repo_again(home)
    with repo.catalog.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    repo.close()
    report = _check(run_cli, home, exit_code=1)
    [bad] = _by(report, codes.CATALOG_NOT_AT_HEAD)
    assert "E202" in bad["message"]
    assert not [c for c in report["checks"] if c["check"].startswith("node")]  # not guessed at


def make_repo_again(home):
    from preservation.repository import Repository

    return Repository.open(home)


def test_a_node_agent_without_credentials_fails_naming_node_credentials(run_cli, home):
    repo = make_repo_again(home)
    with repo.catalog.engine.begin() as conn:
        conn.execute(text("INSERT INTO nodes (name, org_type, organisation, region, uri, status, created_at) "
                          "VALUES ('agent-x', 'cas', '', 'beijing', 'node+http://127.0.0.1:9/', 'active', "
                          "CURRENT_TIMESTAMP)"))
    repo.close()
    report = _check(run_cli, home, exit_code=1)
    [bad] = _by(report, codes.NODE_NO_CREDENTIALS)
    assert bad["subject"] == "agent-x" and "node_credentials" in bad["message"]


def test_an_unmounted_node_root_fails(run_cli, home, sample_delivery):
    from preservation.ingest import ingest

    repo = make_repo_again(home)
    ingest(repo, sample_delivery, "journals")  # copies on the node: an empty root is a disk not mounted
    repo.close()
    root = node_root_of(home, "cas-nsl")
    shutil.rmtree(root)
    report = _check(run_cli, home, exit_code=1)
    [bad] = _by(report, codes.NODE_NOT_ANSWERING)
    assert bad["subject"] == "cas-nsl" and "mounted" in bad["message"]


def test_a_node_that_refuses_the_probe_write_fails(run_cli, home):
    root = node_root_of(home, "inst-istic")
    (root / ".preserve").mkdir(parents=True, exist_ok=True)
    (root / ".preserve" / "tmp").write_bytes(b"a file where the temporary directory should be")
    report = _check(run_cli, home, exit_code=1)
    [bad] = _by(report, codes.NODE_NOT_WRITABLE)
    assert bad["subject"] == "inst-istic"


def test_free_space_short_fails_and_low_warns(run_cli, home):
    report = _check(run_cli, home, "--min-free", "1000P", exit_code=1)
    short = _by(report, codes.SPACE_SHORT)
    assert {c["check"] for c in short} >= {"free space: staging", "node free space"}
    free = shutil.disk_usage(home).free
    report = _check(run_cli, home, "--min-free", str(int(free * 0.6)))
    assert "free space: staging" in {c["check"] for c in _by(report, codes.SPACE_LOW)}


def test_a_node_over_its_capacity_fails(run_cli, home, sample_delivery):
    from preservation.ingest import ingest

    repo = make_repo_again(home)
    ingest(repo, sample_delivery, "journals")
    with repo.catalog.engine.begin() as conn:
        conn.execute(text("UPDATE nodes SET capacity_bytes = 1000 WHERE name = 'uni-pku'"))
    repo.close()
    report = _check(run_cli, home, exit_code=1)
    [bad] = _by(report, codes.SPACE_SHORT)
    assert bad["check"] == "node capacity" and bad["subject"] == "uni-pku"


@pytest.mark.parametrize("size", ["12Q", "-1", "１G", ""])
def test_a_bad_margin_is_a_usage_error_in_json(run_cli, home, size):
    result = run_cli("config", "check", "--json", "--min-free", size, home=home, exit_code=None)
    assert result.exit_code == 2
    assert json.loads(result.stderr)["error"]["code"] == "E112" and result.output == ""



# --- free space of stores not on this host: S3 reports none, a node agent says its own ------------------------

def test_an_s3_node_reports_no_free_space_and_says_so_as_an_info_row(run_cli, home, s3_env, s3_bucket):
    repo = Repository.open(home)
    try:
        add_node(repo, "inst-s3", "institute", "wuhan", s3_env.uri(s3_bucket, "inst"))
        add_node(repo, "uni-s3", "university", "beijing", s3_env.uri(s3_bucket, "uni"), capacity_bytes=5 * 10 ** 12)
    finally:
        repo.close()
    report = _check(run_cli, home)
    assert report["passed"] is True and report["counts"]["info"] == 2
    rows = {c["subject"]: c for c in report["checks"] if c["check"] == "node free space"}
    for name in ("inst-s3", "uni-s3"):
        assert rows[name]["status"] == "info" and rows[name]["code"] is None
        assert rows[name]["message"].startswith("not reported by the backend")
    assert "nothing bounds what is placed there" in rows["inst-s3"]["message"]
    assert "capacity 5.0 TB, 0 B used" in rows["uni-s3"]["message"]
    text_out = run_cli("config", "check", "--min-free", SMALL, home=home).output
    assert "2 info" in text_out and "not reported by the backend" in text_out


class _HealthAnswers(http.server.BaseHTTPRequestHandler):
    """A stand-in for a node agent whose health answer the test chooses (what a hostile or broken agent sends)."""

    answer: tuple[int, bytes] = (200, b"{}")

    def do_GET(self):  # noqa: N802 - the name http.server calls
        status, body = self.answer
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("body, expected", [
    (b'{"status": "ok", "free_bytes": 10, "total_bytes": 20}', (10, 20)),
    (b'{"status": "ok"}', None),  # a storage not on the agent's host, or an agent older than the field
    (b'{"status": "ok", "free_bytes": -1, "total_bytes": 20}', None),
    (b'{"status": "ok", "free_bytes": 30, "total_bytes": 20}', None),
    (b'{"status": "ok", "free_bytes": "10", "total_bytes": 20}', None),
    (b'{"status": "ok", "free_bytes": 1.5, "total_bytes": 20}', None),
    (b'{"status": "ok", "free_bytes": true, "total_bytes": 20}', None),
    (b'[1, 2]', None),
    (b'not json \x1b[31m', None),
])
def test_an_agents_health_answer_is_outside_text(body, expected):
    handler = type("Answers", (_HealthAnswers,), {"answer": (200, body)})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    store = NodeStore(f"node+http://127.0.0.1:{server.server_address[1]}", key_id=KEY_ID, key=KEY)
    try:
        assert free_space(store) == expected
        handler.answer = (503, b'{"status": "unavailable"}')
        with pytest.raises(StorageUnavailable):
            free_space(store)
    finally:
        store.close()
        server.shutdown()
        server.server_close()
