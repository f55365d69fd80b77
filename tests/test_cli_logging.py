"""Logs (issue 19 point 5): library chatter silenced, levels, files, JSON lines, dated access lines, job lines."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest

from preservation import logsetup
from preservation.errors import ConfigError
from preservation.ingest import ingest
from preservation.node_agent.server import build_server
from preservation.runtime.handlers import default_registry
from preservation.runtime.worker import Worker, WorkerOptions

from .fixtures import make_repo

DATED = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (INFO|WARNING|DEBUG|ERROR) ")


@pytest.fixture
def logs():
    """Configure logging into a buffer; put the test's logging back afterwards."""
    buffers = []

    def configure(level="info", **options) -> io.StringIO:
        buffer = io.StringIO()
        buffers.append(logsetup.configure(level, stream=buffer, **options))
        return buffer

    yield configure
    for restore in reversed(buffers):
        restore()


def test_per_request_library_lines_are_silenced_unless_debugging(logs):
    out = logs("info")
    logging.getLogger("httpx").info("HTTP Request: GET https://node/v1/objects/%E7%89%A9 200 OK")
    logging.getLogger("botocore.endpoint").info("Sending http request")
    logging.getLogger("urllib3.connectionpool").warning("Connection pool is full")
    logging.getLogger("preserve.worker").info("job 6 (audit, package p, node n) succeeded")
    text = out.getvalue()
    assert "HTTP Request" not in text and "Sending http request" not in text
    assert "Connection pool is full" in text and "job 6 (audit, package p, node n) succeeded" in text
    assert all(DATED.match(line) for line in text.splitlines()), text
    out = logs("debug")
    logging.getLogger("httpx").info("HTTP Request: GET /x")
    assert "HTTP Request" in out.getvalue()
    out = logs("warning")
    logging.getLogger("preserve.worker").info("job 7 succeeded")
    assert out.getvalue() == ""


def test_json_lines_carry_the_context_and_escape_the_message(logs):
    out = logs("info", log_format="json")
    logging.getLogger("preserve.incidents").warning("finding %s in %s", "A002", "data/a\x1b[31m\nb.xml",
                                                    extra={"package": "p1", "node": "n1", "path": "data/a.xml"})
    [line] = out.getvalue().splitlines()
    record = json.loads(line)
    assert record["level"] == "WARNING" and record["logger"] == "preserve.incidents"
    assert record["package"] == "p1" and record["node"] == "n1" and record["path"] == "data/a.xml"
    assert "\x1b" not in record["message"] and "\n" not in record["message"] and "A002" in record["message"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", record["time"])


def test_bad_options_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="log level"):
        logsetup.configure("verbose")
    with pytest.raises(ConfigError, match="log format"):
        logsetup.configure("info", log_format="xml")
    with pytest.raises(ConfigError, match="cannot write the log file"):
        logsetup.configure("info", log_file=tmp_path / "missing-dir" / "x.log")


def test_the_cli_options_reach_the_log(run_cli, tmp_path):
    run_cli("init")
    run_cli("--log-level", "loud", "status", exit_code=2)
    log_file = tmp_path / "preserve.log"
    run_cli("--log-level", "debug", "--log-file", str(log_file), "status")
    assert log_file.exists()
    out = run_cli("--log-file", str(tmp_path / "no" / "dir" / "x.log"), "status", exit_code=4)
    assert "E100" in out.stderr


@pytest.mark.parametrize("access_log", [True, False])
def test_access_lines_are_dated_and_a_node_agents_are_off_by_default(logs, access_log):
    out = logs("info", access_log=access_log)
    build_server(lambda *a: None, "127.0.0.1", 0)  # uvicorn applies its log settings here
    logging.getLogger("uvicorn.access").info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5", "GET", "/v1/health", "1.1", 200)
    text = out.getvalue()
    if access_log:
        assert DATED.match(text) and '"GET /v1/health HTTP/1.1" 200' in text
    else:
        assert "/v1/health" not in text


def test_job_lines_name_kind_package_and_node(run_cli, sample_delivery, caplog):
    repo = make_repo(run_cli.home)
    try:
        package_id = ingest(repo, str(sample_delivery), "journals", replicate=False)["package_id"]
        with caplog.at_level(logging.INFO, logger="preserve.worker"):
            Worker(repo, default_registry(), WorkerOptions(once=True)).run()
    finally:
        repo.close()
    done = [r for r in caplog.records if r.name == "preserve.worker" and r.getMessage().endswith("succeeded")]
    assert len(done) == 3
    nodes = set()
    for record in done:
        assert f"(replicate, package {package_id}, node " in record.getMessage()
        assert record.kind == "replicate" and record.package == package_id
        nodes.add(record.node)
    assert nodes == {"uni-pku", "cas-nsl", "inst-istic"}
