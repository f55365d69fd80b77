"""``/metrics``, ``/healthz`` and ``/readyz`` of the access service.

``/metrics`` carries the catalog's gauges (:mod:`preservation.metrics`) and
this service's requests by route template; it names nodes and counts
holdings, so only clients in ``monitoring.metrics_allow`` (loopback by
default) may read it: others get 403.  ``/healthz``: the process answers.
``/readyz``: the catalog answers and its migrations are current (503 with
the reason otherwise, so that a load balancer stops sending requests).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry
from starlette.concurrency import run_in_threadpool

from preservation.errors import AccessRefused
from preservation.http_metrics import metrics_response
from preservation.metrics import catalog_registry, readiness
from preservation.repository import Repository

router = APIRouter(include_in_schema=False)


def metrics_registry(repo: Repository) -> CollectorRegistry:
    """The registry /metrics shows: the catalog's gauges; the request metrics are added to it by the app."""
    return catalog_registry(repo)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    repo: Repository = request.app.state.repo
    host = request.client.host if request.client else None
    if not repo.settings.monitoring.metrics_allowed(host):
        raise AccessRefused("metrics are served only to the networks in monitoring.metrics_allow")
    # the catalog's gauges are computed now, with blocking queries: off the event loop
    return await run_in_threadpool(metrics_response, request.app.state.metrics_registry)


@router.get("/healthz")
async def healthz() -> Response:
    return JSONResponse({"status": "ok"})


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    problem = await run_in_threadpool(readiness, request.app.state.repo)
    if problem:
        return JSONResponse({"status": "not ready", "reason": problem}, status_code=503)
    return JSONResponse({"status": "ready"})
