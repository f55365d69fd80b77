"""The node-side digest endpoint: ``POST /v1/digest``.

The request names up to ``max_digest_keys`` keys and the algorithms; the
adapter's ``digest_many`` reads every object here, on the node, with worker
threads, and one NDJSON line per key goes back as soon as that key is done —
digests, or the error that stopped it, with the bytes read for it.  A last
line ``{"end": true, ...}`` carries the totals; a stream without it was cut
short.  While a very large object is being read, blank lines keep the
connection alive.  Only digests cross the network.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator, Sequence

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from preservation.errors import InvalidKey, InvalidRequest
from storage_adapters import StorageAdapter, check_key
from storage_adapters.hashing import check_algorithms

from .config import AgentConfig
from .responses import (
    NDJSON,
    adapter_of,
    error_response,
    int_field,
    iterate_in_threads,
    json_body,
    ndjson_line,
    with_heartbeat,
)


def digest_lines(
    adapter: StorageAdapter, keys: Sequence[str], algorithms: Sequence[str], workers: int, heartbeat: float,
    on_done: Callable[[int, int, int], None] | None = None,
) -> Iterator[bytes]:
    """NDJSON lines of digest results; a blank line every ``heartbeat`` seconds without a result.

    The blank lines keep the connection (and the client's read timeout)
    alive while the node spends minutes on one very large file.
    """
    results = with_heartbeat(lambda: adapter.digest_many(keys, algorithms, workers=workers), heartbeat, workers * 4)
    count = errors = total_read = 0
    try:
        for result in results:
            if result is None:
                yield b"\n"
                continue
            count += 1
            total_read += result.bytes_read
            if result.error is not None:
                errors += 1
                error = {**result.error.to_dict(), "detail": result.error.detail}
                yield ndjson_line({"key": result.key, "error": error, "bytes_read": result.bytes_read})
            else:
                yield ndjson_line(
                    {"key": result.key, "size": result.size, "digests": dict(result.digests or {}),
                     "bytes_read": result.bytes_read}
                )
        yield ndjson_line({"end": True, "count": count, "errors": errors, "bytes_read": total_read})
    finally:
        results.close()
        if on_done is not None:  # the agent's metrics: what was digested, even on a stream cut short
            on_done(count, errors, total_read)


async def digest_objects(request: Request) -> Response:
    config = request.app.state.config
    document = await json_body(request)
    keys = document.get("keys")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise InvalidRequest("'keys' must be a list of object keys")
    if len(keys) > config.max_digest_keys:
        raise InvalidRequest(f"at most {config.max_digest_keys} keys per request, {len(keys)} were sent")
    refused = refused_keys(keys)
    if refused is not None:
        return refused
    algorithms = requested_algorithms(document)
    lines = digest_lines(adapter_of(request), keys, algorithms, requested_workers(document, config),
                         config.digest_heartbeat, on_done=request.app.state.metrics.digested)
    return StreamingResponse(iterate_in_threads(lines), media_type=NDJSON)


def refused_keys(keys: Iterable[str]) -> Response | None:
    """The answer refusing a request whose keys are not all allowed (each bad key named), or None."""
    findings = []
    count = 0
    for key in keys:
        count += 1
        try:
            check_key(key)
        except InvalidKey as e:
            findings.append({"key": key, "code": e.code, "message": e.message})
    if not findings:
        return None
    refused = InvalidKey(f"{len(findings)} of {count} keys are not allowed", key=findings[0]["key"])
    return error_response(refused, findings=findings)


def requested_algorithms(document: dict[str, Any]) -> tuple[str, ...]:
    """The request's ``algorithms`` (sha256 when absent), canonical; raises InvalidRequest."""
    algorithms = document.get("algorithms", ["sha256"])
    if not isinstance(algorithms, list) or not all(isinstance(a, str) for a in algorithms):
        raise InvalidRequest("'algorithms' must be a list of algorithm names")
    try:
        return check_algorithms(algorithms)
    except ValueError as e:
        raise InvalidRequest(str(e)) from e


def requested_workers(document: dict[str, Any], config: AgentConfig) -> int:
    """The request's ``workers``, at most the agent's ``max_digest_workers``; raises InvalidRequest."""
    return min(int_field(document, "workers", config.max_digest_workers, minimum=1), config.max_digest_workers)
