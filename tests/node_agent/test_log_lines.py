"""No request can forge a line of the agent's log or send an escape sequence to its reader.

Paths, key ids and reasons reach the log through ``preservation.text.for_log``
(uvicorn's access log through the server's filter): a ``%0a`` in a path is
shown as ``\\n``, an ESC as ``\\x1b``, and every request is one line.
"""

from __future__ import annotations

import logging

from preservation.text import VisibleArguments

from .agents import raw_request
from .test_processes import start_agent

FORGED = "2026-01-01 00:00:00,000 WARNING preservation.node_agent: FORGED"
# the forged line after a %0a, then a colour change and a cursor movement
ATTACK = "/v1/objects/x%0a" + FORGED.replace(" ", "%20") + "%1b[31mred%1b[2J%c2%9b1m"


def test_a_path_with_a_line_break_and_escapes_is_one_visible_line(agent, caplog):
    caplog.set_level(logging.WARNING, logger="preservation.node_agent")
    raw_request(agent.port, "GET", ATTACK, sign=False)
    raw_request(agent.port, "GET", ATTACK, headers={"X-Preserve-Key-Id": "k\x1b[31m"}, sign=False)
    lines = [r.getMessage() for r in caplog.records if "FORGED" in r.getMessage()]
    assert len(lines) == 2
    for line in lines:
        assert "\n" not in line and "\x1b" not in line and "\x9b" not in line
        assert "x\\n" + FORGED in line
        assert "\\x1b[31mred\\x1b[2J\\x9b1m" in line


def test_the_agent_process_log_has_one_line_per_request(tmp_path):
    agent = start_agent(tmp_path, "logged", access_log=True).wait_ready()
    try:
        for _ in range(3):
            assert raw_request(agent.port, "GET", ATTACK, sign=False).status == 401
    finally:
        agent.stop()
    text = agent.log_path.read_bytes().decode("utf-8")
    assert "\x1b" not in text and "\x9b" not in text
    lines = text.splitlines()
    assert not [line for line in lines if line.startswith(FORGED)]
    refusals = [line for line in lines if "refused GET" in line]
    access = [line for line in lines if '"GET /v1/objects/x' in line]
    assert len(refusals) == 3 and len(access) == 3, text
    assert all("x\\n" + FORGED in line for line in refusals)


def test_the_access_log_filter_shows_control_characters():
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/v1/objects/x\nFORGED\x1b[2J", "1.1", 401), None,
    )
    assert VisibleArguments().filter(record)
    assert record.getMessage() == '127.0.0.1:5 - "GET /v1/objects/x\\nFORGED\\x1b[2J HTTP/1.1" 401'


def test_without_access_log_only_the_refusals_are_logged(tmp_path):
    agent = start_agent(tmp_path, "quiet").wait_ready()
    try:
        for _ in range(3):
            assert raw_request(agent.port, "GET", ATTACK, sign=False).status == 401
    finally:
        agent.stop()
    lines = agent.log_path.read_bytes().decode("utf-8").splitlines()
    assert len([line for line in lines if "refused GET" in line]) == 3
    assert not [line for line in lines if '"GET /v1/objects/x' in line]
