"""Helpers for tests that need a real service.

Locally a missing service skips the test; with CI=true it fails instead, so a
CI run can never go green by skipping what it was meant to check.
"""

from __future__ import annotations

import os
import socket

import pytest

ON_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def service_missing(what: str) -> None:
    """Skip (locally) or fail (CI) because ``what`` is not available."""
    if ON_CI:
        pytest.fail(f"{what} is required on CI but is not available", pytrace=False)
    pytest.skip(f"{what} not available")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


POSTGRES_URL = os.environ.get("PRESERVE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def postgres_unusable(error: Exception) -> None:
    """Skip (locally) or fail (CI) because the test server at POSTGRES_URL refused ``error``'s request."""
    service_missing(f"PostgreSQL at {POSTGRES_URL} ({type(error).__name__}: {error})")
