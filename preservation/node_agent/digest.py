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

import contextlib
import queue
import threading
from typing import Callable, Iterator, Sequence

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from preservation.errors import InvalidKey, InvalidRequest
from storage_adapters import DigestResult, StorageAdapter, check_key
from storage_adapters.hashing import check_algorithms

from .responses import NDJSON, adapter_of, error_response, int_field, iterate_in_threads, json_body, ndjson_line

_END = object()


def _offer(results: queue.Queue, item: object, stop: threading.Event) -> bool:
    """Put ``item`` unless the consumer has gone; False if it has."""
    while not stop.is_set():
        try:
            results.put(item, timeout=0.5)
            return True
        except queue.Full:
            continue
    return False


def digest_lines(
    adapter: StorageAdapter, keys: Sequence[str], algorithms: Sequence[str], workers: int, heartbeat: float,
    on_done: Callable[[int, int, int], None] | None = None,
) -> Iterator[bytes]:
    """NDJSON lines of digest results; a blank line every ``heartbeat`` seconds without a result.

    The blank lines keep the connection (and the client's read timeout)
    alive while the node spends minutes on one very large file.
    """
    results: queue.Queue = queue.Queue(maxsize=max(4, workers * 4))
    stop = threading.Event()

    def produce() -> None:
        outcome: object = _END
        try:
            with contextlib.closing(adapter.digest_many(keys, algorithms, workers=workers)) as digests:
                for result in digests:
                    if not _offer(results, result, stop):
                        return
        except Exception as e:
            outcome = e
        _offer(results, outcome, stop)

    threading.Thread(target=produce, name="preserve-digest-feed", daemon=True).start()
    count = errors = total_read = 0
    try:
        while True:
            try:
                item = results.get(timeout=heartbeat)
            except queue.Empty:
                yield b"\n"
                continue
            if item is _END:
                break
            if isinstance(item, Exception):
                raise item
            result: DigestResult = item  # type: ignore[assignment]
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
        stop.set()
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
    findings = []
    for key in keys:
        try:
            check_key(key)
        except InvalidKey as e:
            findings.append({"key": key, "code": e.code, "message": e.message})
    if findings:
        refused = InvalidKey(f"{len(findings)} of {len(keys)} keys are not allowed", key=findings[0]["key"])
        return error_response(refused, findings=findings)
    algorithms = document.get("algorithms", ["sha256"])
    if not isinstance(algorithms, list) or not all(isinstance(a, str) for a in algorithms):
        raise InvalidRequest("'algorithms' must be a list of algorithm names")
    try:
        algorithms = check_algorithms(algorithms)
    except ValueError as e:
        raise InvalidRequest(str(e)) from e
    workers = min(int_field(document, "workers", config.max_digest_workers, minimum=1), config.max_digest_workers)
    lines = digest_lines(adapter_of(request), keys, algorithms, workers, config.digest_heartbeat,
                         on_done=request.app.state.metrics.digested)
    return StreamingResponse(iterate_in_threads(lines), media_type=NDJSON)
