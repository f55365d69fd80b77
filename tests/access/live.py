"""The access service on a free 127.0.0.1 port, in a thread of the test process."""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Iterator

from preservation.access.web.auth import ServiceConfig
from preservation.access.web.server import build_server
from preservation.repository import Repository

from ..services import free_port
from .conftest import SECRET


@contextlib.contextmanager
def running_service(repo: Repository, **config) -> Iterator[str]:
    """Serve ``repo`` over plain HTTP until the block ends; yields the base URL (no trailing slash)."""
    port = free_port()
    settings = {"secret": SECRET, "cookie_secure": False, **config}
    server = build_server(repo, ServiceConfig(**settings), "127.0.0.1", port, log_level="warning")
    thread = threading.Thread(target=server.run, name="access-service", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the access service did not start on 127.0.0.1:{port}")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
