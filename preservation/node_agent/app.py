"""The node agent: an ASGI app in front of one local storage adapter.

Routes (all but the health check need a signed request, see
:mod:`preservation.node_agent.auth`)::

    GET    /v1/health              is the agent up and its storage reachable, and the free space under a storage
                                   on this host (``free_bytes``, ``total_bytes``)
    GET    /healthz, /readyz       process up; process and storage up (see .monitoring; unsigned)
    GET    /metrics                Prometheus metrics: bytes read and written, digests, requests (unsigned)
    GET    /v1/objects/{key}       read, with HTTP Range
    HEAD   /v1/objects/{key}       size and modification time as headers
    PUT    /v1/objects/{key}       streaming atomic write (body = payload + trailer)
    DELETE /v1/objects/{key}       guarded delete (--allow-delete and a confirmation header)
    GET    /v1/stat/{key}          size, modification time, stored checksums as JSON
    GET    /v1/list                NDJSON listing: prefix, start_after, limit
    POST   /v1/digest              digests computed on the node, streamed back as NDJSON
    POST   /v1/verify              files checked on the node against expected sizes and digests (an audit), what
                                   was found streamed back as NDJSON (see .verify)
    POST   /v1/challenge           proof of possession: sha256(nonce ‖ byte range)
    POST   /v1/witness             check, co-sign and keep a checkpoint of the event log (see .witness)
    GET    /v1/witness/key         the agent's witness public key (its operator confirms the fingerprint)

Every key passes the storage layer's key check before any I/O (400 with the
reason otherwise); errors come back as JSON carrying the PreservationError
code, with statuses from :func:`preservation.node_agent.responses.status_for`.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from typing import Any, AsyncIterator

import anyio.to_thread
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from preservation.errors import PreservationError
from preservation.http_metrics import RequestMetrics
from storage_adapters import StorageAdapter, exists, sweep_temporary

from .auth import SignatureMiddleware
from .challenge import answer_challenge
from .config import AgentConfig
from .digest import digest_objects
from .monitoring import HEALTHZ, METRICS, PUBLIC_PATHS, READYZ, AgentMetrics, healthz, metrics, readyz
from .objects import delete_object, head_object, list_objects, read_object, stat_object
from .responses import adapter_of, preservation_error_handler, unexpected_error_handler
from .upload import write_object
from .verify import verify_objects
from .witness import witness_checkpoint, witness_public_key

HEALTH_PATH = "/v1/health"
# A key that is never written: stat-ing it proves the storage answers.
HEALTH_PROBE_KEY = "preserve-node-agent-health-probe"

log = logging.getLogger("preservation.node_agent")


async def health(request: Request) -> Response:
    adapter = adapter_of(request)
    try:
        await run_in_threadpool(exists, adapter, HEALTH_PROBE_KEY)
    except PreservationError as e:
        log.error("health check: the storage does not answer: %s", e)
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ok", **await run_in_threadpool(_storage_space, adapter)})


def _storage_space(adapter: StorageAdapter) -> dict[str, Any]:
    """``free_bytes`` and ``total_bytes`` of the filesystem under a storage on this host (what `preserve config
    check` weighs against the copies still to come); nothing for a storage that is not files here."""
    local = adapter.features.local
    if local is None:
        return {}
    try:
        usage = shutil.disk_usage(local.root)
    except OSError as e:
        log.error("health check: cannot measure the free space of %s: %s", local.root, e)
        return {}
    return {"free_bytes": usage.free, "total_bytes": usage.total}


async def object_endpoint(request: Request) -> Response:
    handlers = {"GET": read_object, "HEAD": head_object, "PUT": write_object, "DELETE": delete_object}
    return await handlers[request.method](request)


def create_app(adapter: StorageAdapter, config: AgentConfig) -> Starlette:
    """The agent app serving ``adapter``; the app owns the adapter from now on and closes it at shutdown."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Every upload holds a worker thread for its whole duration: allow many at once.
        anyio.to_thread.current_default_thread_limiter().total_tokens = config.worker_threads
        swept = await run_in_threadpool(sweep_temporary, adapter)
        if swept:
            log.info("removed %d leftovers of interrupted writes in %s", swept, adapter.location)
        log.info("node agent serving %s (delete %s)", adapter.location, "allowed" if config.allow_delete else "refused")
        try:
            yield
        finally:
            await run_in_threadpool(adapter.close)

    routes = [
        Route(HEALTH_PATH, health, methods=["GET"]),
        Route("/v1/objects/{key:path}", object_endpoint, methods=["GET", "HEAD", "PUT", "DELETE"]),
        Route("/v1/stat/{key:path}", stat_object, methods=["GET"]),
        Route("/v1/list", list_objects, methods=["GET"]),
        Route("/v1/digest", digest_objects, methods=["POST"]),
        Route("/v1/verify", verify_objects, methods=["POST"]),
        Route("/v1/challenge", answer_challenge, methods=["POST"]),
        Route("/v1/witness", witness_checkpoint, methods=["POST"]),
        Route("/v1/witness/key", witness_public_key, methods=["GET"]),
        Route(METRICS, metrics, methods=["GET"]),
        Route(HEALTHZ, healthz, methods=["GET"]),
        Route(READYZ, readyz, methods=["GET"]),
    ]
    agent_metrics = AgentMetrics()
    middleware = [
        # outermost: requests refused by the signature check are counted too
        Middleware(RequestMetrics, registry=agent_metrics.registry, service="node_agent", routes=routes,
                   on_bytes=agent_metrics.on_bytes),
        Middleware(
            SignatureMiddleware,
            keys=config.keys,
            public_paths=frozenset({HEALTH_PATH}) | PUBLIC_PATHS,
            max_clock_skew=config.max_clock_skew,
            nonce_capacity=config.nonce_capacity,
            max_body=config.max_json_body,
            # whole seconds, as timestamps are signed: a request signed in an earlier second than
            # this start cannot have been meant for this run of the agent
            not_before=int(time.time()),
        )
    ]
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={PreservationError: preservation_error_handler, Exception: unexpected_error_handler},
        lifespan=lifespan,
    )
    app.state.adapter = adapter
    app.state.config = config
    app.state.metrics = agent_metrics
    return app
