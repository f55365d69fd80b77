"""Object endpoints: read (with HTTP Range), stat, guarded delete, paginated listing."""

from __future__ import annotations

import re
from typing import Iterator
from urllib.parse import unquote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from preservation.errors import AccessDenied, InvalidRequest
from preservation.layout import SCRATCH_PREFIX
from preservation.units import parse_decimal
from storage_adapters import ObjectInfo, StorageAdapter, check_key
from storage_adapters.signing import HEADER_CONFIRM_DELETE, HEADER_SIZE

from .responses import NDJSON, adapter_of, iterate_in_threads, json_response, ndjson_line, path_key
from .witness import refuse_witness_key

HEADER_MODIFIED = "X-Preserve-Modified"

_RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)")
_LIST_FLUSH_BYTES = 64 * 1024
_INVENTORY_LINE = 1000  # entries of an inventory sent in one line (one JSON value to write and read, not a thousand)


# a Range position longer than any file offset: beyond every object's end
_BEYOND = 2**63


def _position(text: str) -> int | None:
    if not text:
        return None
    try:
        return parse_decimal(text)
    except ValueError:
        return _BEYOND


class RangeNotSatisfiable(Exception):
    """The requested byte range lies outside the object (HTTP 416)."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(offset, length) for a single-range ``Range`` header, None to send everything.

    Multi-range and malformed headers are ignored, as RFC 9110 allows; a
    range that starts at or past the end raises RangeNotSatisfiable.  A
    position too long to be a file offset is past every end.
    """
    if not header:
        return None
    match = _RANGE.fullmatch(header.strip())
    if not match or (not match.group(1) and not match.group(2)):
        return None
    start, last = (_position(text) for text in match.groups())
    if start is None:
        if last == 0:
            raise RangeNotSatisfiable()
        start = max(0, size - last)
        return start, size - start
    if start >= size:
        raise RangeNotSatisfiable()
    end = min(last, size - 1) if last is not None else size - 1
    if end < start:
        return None
    return start, end - start + 1


def info_document(info: ObjectInfo) -> dict:
    document = {
        "key": info.key,
        "size": info.size,
        "modified": info.modified.isoformat() if info.modified else None,
        "checksums": dict(info.checksums),
    }
    if info.irregular is not None:
        document["irregular"] = info.irregular
    return document


def _info_headers(info: ObjectInfo) -> dict[str, str]:
    headers = {"Accept-Ranges": "bytes", HEADER_SIZE: str(info.size)}
    if info.modified:
        headers[HEADER_MODIFIED] = info.modified.isoformat()
    return headers


def _prime(chunks: Iterator[bytes]) -> bytes | None:
    """The first chunk, read before any header is sent so that errors still get their status."""
    return next(chunks, None)


async def _chain(first: bytes | None, chunks: Iterator[bytes]):
    if first:
        yield first
    async for chunk in iterate_in_threads(chunks):
        yield chunk


async def read_object(request: Request) -> Response:
    key = path_key(request)
    adapter = adapter_of(request)
    info = await run_in_threadpool(adapter.stat, key)
    headers = _info_headers(info)
    try:
        wanted = parse_range(request.headers.get("range"), info.size)
    except RangeNotSatisfiable:
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{info.size}"})
    status = 200
    offset, length = 0, info.size
    if wanted is not None:
        offset, length = wanted
        status = 206
        headers["Content-Range"] = f"bytes {offset}-{offset + length - 1}/{info.size}"
    headers["Content-Length"] = str(length)
    chunks = iter(await run_in_threadpool(adapter.read, key, offset, length))
    first = await run_in_threadpool(_prime, chunks)
    return StreamingResponse(
        _chain(first, chunks), status_code=status, headers=headers, media_type="application/octet-stream"
    )


async def head_object(request: Request) -> Response:
    key = path_key(request)
    info = await run_in_threadpool(adapter_of(request).stat, key)
    headers = {**_info_headers(info), "Content-Length": str(info.size)}
    return Response(status_code=200, headers=headers, media_type="application/octet-stream")


async def stat_object(request: Request) -> Response:
    key = path_key(request)
    info = await run_in_threadpool(adapter_of(request).stat, key)
    return json_response(info_document(info))


async def delete_object(request: Request) -> Response:
    key = path_key(request)
    refuse_witness_key(key)
    if not request.app.state.config.allow_delete and not key.startswith(SCRATCH_PREFIX):
        raise AccessDenied(
            "deleting is disabled on this node agent (its operator can start it with --allow-delete)",
            location="node agent",
        )
    confirmation = request.headers.get(HEADER_CONFIRM_DELETE)
    if confirmation is None or unquote(confirmation) != key:
        raise InvalidRequest(f"a delete needs the header {HEADER_CONFIRM_DELETE} naming the key (percent-encoded)")
    await run_in_threadpool(adapter_of(request).delete, key)
    return Response(status_code=204)


def _listing(
    adapter: StorageAdapter, prefix: str, start_after: str | None, limit: int | None, inventory: bool = False,
) -> Iterator[bytes]:
    """NDJSON lines, grouped into writes of about 64 KiB, ending with an ``end`` line.

    The ``end`` line carries ``next`` (the last key sent) when ``limit`` cut
    the listing short: pass it back as ``start_after`` for the next page.
    An entry that is not a regular file (a FIFO, socket, link, device) has a
    line of its own marked ``"irregular": "<what it is>"``, so that the
    coordinator's audit reports it; it is never an object.

    With ``inventory`` the lines are the store's ``inventory``, many entries a
    line: ``{"keys": [...], "sizes": [...]}``, a size null where the store does
    not give it for free (a store on this node's disk lists names only: an
    audit's listing costs no ``stat`` per file, and the check of the content
    finds a wrong size or kind).
    """
    after = start_after.encode("utf-8", "surrogateescape") if start_after is not None else None
    buffer: list[bytes] = []
    size = count = 0
    last: str | None = None
    truncated = False
    keys: list[str] = []
    sizes: list[int | None] = []
    entries = adapter.inventory(prefix) if inventory else (
        (info.key, info) for info in adapter.list(prefix, irregular=True))
    for key, entry in entries:
        if after is not None and key.encode("utf-8", "surrogateescape") <= after:
            continue
        if limit is not None and count >= limit:
            truncated = True
            break
        count += 1
        last = key
        if inventory:
            keys.append(key)
            sizes.append(entry)
            if len(keys) < _INVENTORY_LINE:
                continue
            line = ndjson_line({"keys": keys, "sizes": sizes})
            keys, sizes = [], []
        else:
            line = ndjson_line(info_document(entry))
        buffer.append(line)
        size += len(line)
        if size >= _LIST_FLUSH_BYTES:
            yield b"".join(buffer)
            buffer, size = [], 0
    if keys:
        buffer.append(ndjson_line({"keys": keys, "sizes": sizes}))
    buffer.append(ndjson_line({"end": True, "count": count, "next": last if truncated else None}))
    yield b"".join(buffer)


async def list_objects(request: Request) -> Response:
    params = request.query_params
    prefix = check_key(params.get("prefix", ""), allow_prefix=True)
    start_after = params.get("start_after")
    if start_after is not None:
        check_key(start_after)
    limit_text = params.get("limit")
    limit: int | None = None
    if limit_text is not None:
        try:
            limit = parse_decimal(limit_text)
        except ValueError:
            limit = 0
        if limit < 1:
            raise InvalidRequest("limit must be a positive whole number in ASCII digits")
    inventory = params.get("inventory", "0")
    if inventory not in ("0", "1"):
        raise InvalidRequest("inventory must be 0 (objects, with their sizes) or 1 (the store's inventory)")
    lines = _listing(adapter_of(request), prefix, start_after, limit, inventory == "1")
    first = await run_in_threadpool(_prime, lines)
    return StreamingResponse(_chain(first, lines), media_type=NDJSON)
