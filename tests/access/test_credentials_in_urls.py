"""Credentials in URLs (the fixity API's api_key): one plain spelling, sent once, and masked in the access log
by their decoded name, whatever the client sent."""

from __future__ import annotations

import contextlib
import logging
from typing import Iterator

import httpx
import pytest

from .live import running_service
from .world import FIXITY_KEY


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextlib.contextmanager
def logged_lines() -> Iterator[list[str]]:
    """The access log's lines while the block runs (call it once the service runs: uvicorn sets up its loggers)."""
    logger = logging.getLogger("uvicorn.access")
    handler = Lines()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler.lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.mark.parametrize("query", [
    "username=carol&api%5Fkey={key}",
    "username=carol&%61pi_key={key}",
    "username=carol&API_KEY={key}",
    "username=carol&api_key={key}&api_key={key}",
    "username=carol&api_key=wrong&api_key={key}",
    "username=carol&username=carol&api_key={key}",
    "user%6Eame=carol&api_key={key}",
])
def test_encoded_or_repeated_credentials_are_refused_and_never_logged(world, query):
    key = world.tokens[FIXITY_KEY]
    with running_service(world.repo) as url, logged_lines() as lines:
        r = httpx.get(f"{url}/api/v2/file/?{query.format(key=key)}")
        plain = httpx.get(f"{url}/api/v2/file/?username=carol&api_key={key}")
    assert r.status_code == 400 and r.json()["error"]["code"] == "E112", r.text
    assert plain.status_code == 200
    assert len(lines) == 2 and not any(key in line for line in lines), lines
    assert "api_key=***" in lines[1]



def test_the_access_log_shows_request_targets_as_text(world):
    from preservation.access.web.auth import ServiceConfig
    from preservation.access.web.server import build_server
    from preservation.text import VisibleArguments

    build_server(world.repo, ServiceConfig(secret="s" * 40, cookie_secure=False), "127.0.0.1", 0)
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:1", "GET", "/x\n2026 fake\x1b[2J", "1.1", 404), None)
    access = logging.getLogger("uvicorn.access")
    assert any(isinstance(f, VisibleArguments) for f in access.filters)
    for f in access.filters:
        f.filter(record)
    assert record.getMessage() == '127.0.0.1:1 - "GET /x\\n2026 fake\\x1b[2J HTTP/1.1" 404'
