"""What every endpoint shares: error statuses, JSON error bodies, NDJSON streaming."""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import re
import threading
from typing import Any, AsyncIterator, Callable, Iterator, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from preservation.errors import (
    AccessDenied,
    CheckpointInvalid,
    ChecksumMismatch,
    InvalidKey,
    InvalidRequest,
    ObjectNotFound,
    PreservationError,
    ReadOnlyStorage,
    RetentionLocked,
    StorageError,
    StorageFull,
    StorageUnavailable,
    WitnessRefused,
)
from preservation.text import for_log
from preservation.units import MAX_INT64
from storage_adapters import StorageAdapter, check_key

from .auth import error_body

log = logging.getLogger("preservation.node_agent")

T = TypeVar("T")
_END = object()

NDJSON = "application/x-ndjson"

# Every body the agent takes is an object of lists of strings: nothing needs to nest deeper.
MAX_JSON_DEPTH = 4
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_JSON_NESTING = re.compile(rb"[\[\]{}]")

_STATUS: tuple[tuple[type[PreservationError], int], ...] = (
    (ObjectNotFound, 404),
    (InvalidKey, 400),
    (InvalidRequest, 400),
    (ChecksumMismatch, 422),
    (StorageFull, 507),
    (AccessDenied, 403),
    (ReadOnlyStorage, 403),
    (RetentionLocked, 409),
    (StorageUnavailable, 503),
    (WitnessRefused, 409),
    (CheckpointInvalid, 400),
)


def status_for(error: PreservationError) -> int:
    for cls, status in _STATUS:
        if isinstance(error, cls):
            return status
    return 500


def error_response(error: PreservationError, **extra: Any) -> Response:
    return Response(error_body(error, **extra), status_code=status_for(error), media_type="application/json")


async def preservation_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PreservationError)
    if status_for(exc) >= 500:
        log.error("%s %s failed: %s", request.method, for_log(request.url.path), for_log(exc))
    return error_response(exc)


async def unexpected_error_handler(request: Request, exc: Exception) -> Response:
    log.exception("%s %s failed unexpectedly", request.method, for_log(request.url.path), exc_info=exc)
    return error_response(StorageError(f"internal error in the node agent ({type(exc).__name__}): see the agent's log"))


def adapter_of(request: Request) -> StorageAdapter:
    return request.app.state.adapter


def path_key(request: Request) -> str:
    """The object key from the URL path, through the base-layer key check (InvalidKey → 400)."""
    return check_key(request.path_params["key"])


def json_depth(body: bytes, limit: int) -> int:
    """How deep ``body``'s arrays and objects nest, counted up to ``limit + 1`` (no parse);
    0 when there are too few brackets in it to pass ``limit``.

    The body's size is bounded already (the middleware reads at most
    ``max_json_body``); its depth is not, and the JSON parser recurses once
    per level: 100,000 levels end in a RecursionError, not an answer.
    """
    if body.count(b"[") + body.count(b"{") <= limit:  # the usual body: too few brackets to nest deeper
        return 0
    depth = deepest = 0
    for bracket in _JSON_NESTING.finditer(_JSON_STRING.sub(b'""', body)):
        if bracket.group() in (b"[", b"{"):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    break
        else:
            depth -= 1
    return deepest


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object; raises InvalidRequest for anything else, or one nested too deep."""
    body = await request.body()
    if json_depth(body, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise InvalidRequest(f"the request body nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        document = json.loads(body)
    except ValueError as e:
        raise InvalidRequest(f"the request body is not JSON: {e}") from e
    if not isinstance(document, dict):
        raise InvalidRequest("the request body must be a JSON object")
    return document


def int_field(
    document: dict[str, Any], name: str, default: int | None = None, minimum: int = 0, maximum: int = MAX_INT64
) -> int:
    """The integer ``document[name]`` within [minimum, maximum]; raises InvalidRequest.

    The default maximum is what a file offset can be (63 bits): a seek past it overflows.
    """
    value = document.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise InvalidRequest(f"{name!r} must be an integer from {minimum} to {maximum}")
    return value


def ndjson_line(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=True, separators=(",", ":")).encode("ascii") + b"\n"


async def iterate_in_threads(iterator: Iterator[bytes]) -> AsyncIterator[bytes]:
    """Drive a blocking iterator from the event loop, one item per thread hop, and close it at the end.

    Closing matters when the client goes away mid-stream: the generator's
    ``finally`` blocks (open files, worker pools) run now, not at garbage
    collection.
    """
    sentinel = object()
    try:
        while True:
            item = await run_in_threadpool(next, iterator, sentinel)
            if item is sentinel:
                return
            yield item  # type: ignore[misc]
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            await run_in_threadpool(close)


def json_response(document: dict[str, Any], status_code: int = 200) -> JSONResponse:
    return JSONResponse(document, status_code=status_code)


def with_heartbeat(produce: Callable[[], Iterator[T]], heartbeat: float, ahead: int) -> Iterator[T | None]:
    """The items of ``produce()``, made on a thread of their own, with None every ``heartbeat`` seconds
    that passes without one (a stream answer sends a blank line then, so that the connection and the
    client's read timeout stay alive while the node spends minutes on one very large file).

    At most ``ahead`` items wait to be taken; an error of the producer is raised here.  Closing this
    generator stops the producer at its next item (its iterator is closed on its thread).
    """
    results: queue.Queue = queue.Queue(maxsize=max(4, ahead))
    stop = threading.Event()

    def offer(item: object) -> bool:
        while not stop.is_set():
            try:
                results.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        outcome: object = _END
        try:
            with contextlib.closing(produce()) as items:
                for item in items:
                    if not offer(item):
                        return
        except Exception as e:
            outcome = e
        offer(outcome)

    threading.Thread(target=run, name="preserve-agent-feed", daemon=True).start()
    try:
        while True:
            try:
                item = results.get(timeout=heartbeat)
            except queue.Empty:
                yield None
                continue
            if item is _END:
                return
            if isinstance(item, Exception):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
