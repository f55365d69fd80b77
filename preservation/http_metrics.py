"""Request metrics for the HTTP services (``preserve serve``, the node agent), labelled by route template.

A request is counted under the template of the route it matched
(``/api/packages/{package_id}``), never its raw path: a path carries ids and
names from outside, and a label per path would grow without bound.  Requests
that match no route are counted under ``(unmatched)``; methods outside the
usual few under ``OTHER``.
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNMATCHED = "(unmatched)"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})

ByteHook = Callable[[str, str, int, int], None]  # method, route template, bytes received, bytes sent


def route_template(routes: Sequence[BaseRoute], scope: Scope) -> str:
    """The path template of the first top-level route that fully matches ``scope`` (a mount: its prefix plus
    ``/{path}``).  Routers included as a whole have no template of their own: the router names the route it
    chose in ``scope["route"]``, which :class:`RequestMetrics` prefers."""
    for route in routes:
        path = getattr(route, "path", None)
        if not isinstance(path, str):
            continue
        match, _child = route.matches(scope)
        if match == Match.FULL:
            if isinstance(route, Mount):  # a mount's own routes are files: one label for all of them
                return f"{path}/{{path}}"
            return path
    return UNMATCHED


class RequestMetrics:
    """ASGI middleware: requests by service, method, route template and status; latency; body bytes."""

    def __init__(self, app: ASGIApp, *, registry: CollectorRegistry, service: str, routes: Sequence[BaseRoute],
                 on_bytes: ByteHook | None = None) -> None:
        self.app = app
        self.service = service
        self.routes = routes
        self.on_bytes = on_bytes
        self.requests = Counter("preserve_http_requests", "HTTP requests by service, method, route and status",
                                ["service", "method", "route", "status"], registry=registry)
        self.latency = Histogram("preserve_http_request_duration_seconds",
                                 "Time to the end of the response, by service, method and route",
                                 ["service", "method", "route"], registry=registry,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"] if scope["method"] in METHODS else "OTHER"
        matched = route_template(self.routes, scope)
        started = time.perf_counter()
        status = {"code": 500}
        sizes = {"in": 0, "out": 0}

        async def counting_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                sizes["in"] += len(message.get("body", b""))
            return message

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            elif message["type"] == "http.response.body":
                sizes["out"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, counting_receive, counting_send)
        finally:
            chosen = getattr(scope.get("route"), "path", None)  # set by the router that handled the request
            route = chosen if isinstance(chosen, str) else matched
            self.requests.labels(self.service, method, route, str(status["code"])).inc()
            self.latency.labels(self.service, method, route).observe(time.perf_counter() - started)
            if self.on_bytes is not None:
                self.on_bytes(method, route, sizes["in"], sizes["out"])


def metrics_response(registry: CollectorRegistry) -> Response:
    """The registry in the Prometheus text format."""
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST,
                    headers={"cache-control": "no-store"})
