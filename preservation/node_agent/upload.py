"""The streaming write endpoint: ``PUT /v1/objects/{key}``.

The body is the payload followed by the fixed-length trailer of
:mod:`storage_adapters.signing`.  The payload streams through the local
adapter's atomic ``write`` as it arrives; the trailer is held back, and the
last payload chunk is handed on only once the trailer's MAC verifies and the
payload's sha256 and size match it.  Any failure (bad trailer, mismatch, the
client going away, the agent dying) therefore ends the adapter's write
before its commit, and nothing becomes visible under the key.
"""

from __future__ import annotations

import hashlib
import logging
from typing import AsyncIterator, Iterable, Iterator

import anyio.from_thread
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from preservation.errors import ChecksumMismatch, InvalidRequest
from preservation.text import for_log
from preservation.units import parse_decimal
from storage_adapters.hashing import check_algorithms
from storage_adapters.signing import HEADER_SIZE, TRAILER_LENGTH, SignatureRefused, VerifiedRequest, verify_trailer

from .auth import error_body, log_refusal, refusal, verified_request
from .responses import adapter_of, json_response, path_key
from .witness import refuse_witness_key

log = logging.getLogger("preservation.node_agent")

# Body pieces from the server are gathered into blocks of about this size
# before crossing to the writer thread (one thread hop per block, not per piece).
BLOCK_SIZE = 1024 * 1024


def payload_of(pieces: Iterable[bytes], auth: VerifiedRequest, key: str) -> Iterator[bytes]:
    """The payload of a trailed body; raises before the last chunk unless the trailer holds.

    Raises :class:`SignatureRefused` for a missing or forged trailer and
    :class:`ChecksumMismatch` when the payload is not what the trailer announces.
    """
    hasher = hashlib.sha256()
    size = 0
    tail = b""
    pending: bytes | None = None
    for piece in pieces:
        data = tail + piece
        if len(data) <= TRAILER_LENGTH:
            tail = data
            continue
        cut = len(data) - TRAILER_LENGTH
        chunk, tail = data[:cut], data[cut:]
        hasher.update(chunk)
        size += len(chunk)
        if pending is not None:
            yield pending
        pending = chunk
    announced_sha256, announced_size = verify_trailer(tail, auth.key, auth.signature)
    if announced_size != size:
        raise ChecksumMismatch(
            f"received {size} bytes, the trailer announces {announced_size}", key=key, location="node agent"
        )
    if announced_sha256 != hasher.hexdigest():
        raise ChecksumMismatch(
            f"received bytes with sha256 {hasher.hexdigest()}, the trailer announces {announced_sha256}",
            key=key, location="node agent",
        )
    if pending is not None:
        yield pending


def _blocks_from_loop(body: AsyncIterator[bytes]) -> Iterator[bytes]:
    """Pull the request body, block by block, from the event loop into this worker thread."""

    async def next_block() -> bytes | None:
        parts: list[bytes] = []
        total = 0
        while total < BLOCK_SIZE:
            try:
                piece = await body.__anext__()
            except StopAsyncIteration:
                break
            if piece:
                parts.append(piece)
                total += len(piece)
        return b"".join(parts) if parts else None

    while True:
        block = anyio.from_thread.run(next_block)
        if block is None:
            return
        yield block


def _size_header(request: Request) -> int | None:
    text = request.headers.get(HEADER_SIZE)
    if text is None:
        return None
    try:
        return parse_decimal(text)
    except ValueError as e:
        raise InvalidRequest(f"{HEADER_SIZE} must be a byte count in ASCII digits: {e}") from e


def _algorithms(request: Request) -> tuple[str, ...]:
    try:
        return check_algorithms(request.query_params.get("algorithms", "sha256").split(","))
    except ValueError as e:
        raise InvalidRequest(str(e)) from e


async def write_object(request: Request) -> Response:
    key = path_key(request)
    refuse_witness_key(key)
    size = _size_header(request)
    algorithms = _algorithms(request)
    auth = verified_request(request.scope)
    adapter = adapter_of(request)
    body = request.stream()

    def write():
        return adapter.write(key, payload_of(_blocks_from_loop(body), auth, key), size=size, algorithms=algorithms)

    try:
        result = await run_in_threadpool(write)
    except ClientDisconnect:
        log.warning("the client went away while writing %s; nothing was stored", for_log(key))
        return Response(status_code=400)
    except SignatureRefused as e:
        log_refusal(request.scope, auth.key_id, e.reason)
        return Response(error_body(refusal(e.reason)), status_code=401, media_type="application/json")
    return json_response({"key": result.key, "size": result.size, "digests": dict(result.digests)}, status_code=201)

