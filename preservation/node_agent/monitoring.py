"""The node agent's monitoring routes: ``/metrics``, ``/healthz``, ``/readyz`` (no signature needed).

``/metrics`` counts what crosses the agent: bytes read from and written to
its storage through the object routes, digests computed on the node (and the
bytes they read), and requests by route template and status
(:mod:`preservation.http_metrics`).  None of it names an object.
``/healthz`` says the process answers; ``/readyz`` that its storage answers
too (the agent has no catalog).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from preservation.errors import PreservationError
from preservation.http_metrics import metrics_response
from storage_adapters import exists

from .responses import adapter_of

OBJECT_ROUTE = "/v1/objects/{key:path}"
HEALTHZ, READYZ, METRICS = "/healthz", "/readyz", "/metrics"
PUBLIC_PATHS = frozenset({HEALTHZ, READYZ, METRICS})
PROBE_KEY = "preserve-node-agent-health-probe"  # never written: a stat of it proves the storage answers


class AgentMetrics:
    """The agent's counters, in a registry of its own (several agents may share a test process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.read_bytes = Counter("preserve_agent_read_bytes", "Bytes of objects sent to clients",
                                  registry=self.registry)
        self.written_bytes = Counter("preserve_agent_written_bytes", "Bytes of uploads received (with trailers)",
                                     registry=self.registry)
        self.digests = Counter("preserve_agent_digests", "Objects digested on the node, by outcome", ["outcome"],
                               registry=self.registry)
        self.digest_bytes = Counter("preserve_agent_digest_bytes", "Bytes read on the node to compute digests",
                                    registry=self.registry)

    def on_bytes(self, method: str, route: str, received: int, sent: int) -> None:
        if route != OBJECT_ROUTE:
            return
        if method == "GET":
            self.read_bytes.inc(sent)
        elif method == "PUT":
            self.written_bytes.inc(received)

    def digested(self, count: int, errors: int, bytes_read: int) -> None:
        self.digests.labels("ok").inc(count - errors)
        self.digests.labels("error").inc(errors)
        self.digest_bytes.inc(bytes_read)


async def metrics(request: Request) -> Response:
    return metrics_response(request.app.state.metrics.registry)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    try:
        await run_in_threadpool(exists, adapter_of(request), PROBE_KEY)
    except PreservationError as e:
        return JSONResponse({"status": "not ready", "reason": f"{e.code}: the storage does not answer"},
                            status_code=503)
    return JSONResponse({"status": "ready"})
