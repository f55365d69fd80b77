"""Authorization on every route: walk the application's route table, call each route as nobody."""

from __future__ import annotations

import re

from preservation.access.web import api, dashboard, fixity, portal, staff

PUBLIC = {("GET", "/"), ("GET", "/login"), ("POST", "/login")}


def concrete(path: str) -> str:
    """The route's path with its parameters filled in: numbers for ids, a UUID for packages, words otherwise."""
    def value(match: re.Match) -> str:
        name = match.group(1).split(":")[0]
        if name == "package_id":
            return "00000000-0000-4000-8000-000000000000"
        return "1" if name.endswith("_id") else "x"
    return re.sub(r"\{([^}]+)\}", value, path)


def test_no_route_answers_without_authentication(client):
    checked = 0
    routers = (api.router, fixity.router, portal.router, staff.router, dashboard.router)
    for route in [r for router in routers for r in router.routes]:
        for method in route.methods:
            if (method, route.path) in PUBLIC:
                continue
            url = concrete(route.path)
            r = client.request(method, url)
            if (method, route.path) == ("POST", "/logout"):
                assert r.status_code == 403  # no session, so no CSRF token: refused, nothing to end
            elif route.path.startswith("/api/"):
                assert r.status_code == 401, (method, route.path, r.status_code)
            else:
                # the portal sends people to the login page; forms without a session never act
                assert r.status_code == 303 and r.headers["location"].startswith("/login"), (method, route.path)
            checked += 1
    assert checked >= 25


def test_public_routes_reveal_nothing(client):
    assert client.get("/").headers["location"] == "/portal"
    page = client.get("/login")
    assert page.status_code == 200 and 'name="csrf"' in page.text and "journals" not in page.text
