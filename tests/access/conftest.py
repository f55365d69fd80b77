"""Fixtures of the access tests: a copied consortium world, an in-process client, a live server."""

from __future__ import annotations

import warnings

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's note about httpx vs httpx2 in its test client
    from fastapi.testclient import TestClient

from preservation.access.web.app import create_app
from preservation.access.web.auth import ServiceConfig

from .world import PASSWORD, build_template, copy_world

SECRET = "test-session-secret-" + "x" * 32


@pytest.fixture(scope="session")
def world_template(tmp_path_factory):
    base = tmp_path_factory.mktemp("access-template")
    packages, tokens = build_template(base / "home", base / "deliveries")
    return base / "home", packages, tokens


@pytest.fixture
def world(world_template, tmp_path):
    template, packages, tokens = world_template
    w = copy_world(template, packages, tokens, tmp_path / "home")
    try:
        yield w
    finally:
        w.repo.close()


def make_client(world, client: tuple[str, int] = ("127.0.0.1", 50000), **config) -> TestClient:
    """An in-process client of a fresh app over ``world`` (``config`` overrides ServiceConfig fields)."""
    settings = {"secret": SECRET, "cookie_secure": False, **config}
    return TestClient(create_app(world.repo, ServiceConfig(**settings)), follow_redirects=False, client=client)


@pytest.fixture
def client(world):
    with make_client(world) as c:
        yield c


def login(client: TestClient, username: str, password: str = PASSWORD):
    """Log in through the form (fetching its CSRF token first); returns the POST response."""
    page = client.get("/login")
    token = csrf_of(page.text)
    return client.post("/login", data={"username": username, "password": password, "csrf": token, "next": "/portal"})


def csrf_of(html: str) -> str:
    marker = 'name="csrf" value="'
    start = html.index(marker) + len(marker)
    return html[start: html.index('"', start)]
