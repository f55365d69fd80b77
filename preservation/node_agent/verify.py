"""The node-side check of many files: ``POST /v1/verify``.

An audit through a node agent sends the catalog's rows of a copy (path,
size, expected digests) and the node checks them with its storage's own ``verify_many``: for a
store on the node's disk that is the local audit itself
(:mod:`storage_adapters.fsverify`: files opened in their checked
directories, read ahead while others hash, checker processes for small
files, pages dropped behind), so an audit through an agent reads the disk
as an audit on the node would.  Only what it finds crosses the network:
one NDJSON line per batch of files — how many were checked, the bytes
read, the problems — and a last line ``{"end": true, ...}`` with the
totals (a stream without it was cut short).  Blank lines keep the
connection alive while a very large file is read.

The request::

    {"prefix": "<package>/", "algorithms": ["sha256"], "workers": 2,
     "rows": [["data/a.pdf", 1234, false, "<hex digest>", ...], ...]}

with the digests of each row in the order of ``algorithms``.  The third
item of a row is a boolean kept for the form of the request and ignored:
the node never sends chunk digests, since the coordinator takes what
served bytes are checked against only from reads it checked itself.  At most
``max_digest_keys`` rows; every ``prefix + path`` passes the storage
layer's key check before any file is read.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from preservation.errors import InvalidRequest
from preservation.units import MAX_INT64
from storage_adapters import StorageAdapter, check_key
from storage_adapters.base import VERIFY_DIGEST, VerifyBatch, VerifyProblem

from .digest import refused_keys, requested_algorithms, requested_workers
from .responses import NDJSON, adapter_of, iterate_in_threads, json_body, ndjson_line, with_heartbeat

MAX_DIGEST_CHARS = 128  # a sha512 in hex


def batch_document(batch: VerifyBatch) -> dict[str, Any]:
    """One line of the answer: what the node found in one batch of files."""
    return {
        "checked": batch.checked,
        "bytes_read": batch.bytes_read,
        "problems": [_problem_document(p) for p in batch.problems],
    }


def _problem_document(problem: VerifyProblem) -> dict[str, Any]:
    document: dict[str, Any] = {"path": problem.path, "kind": problem.kind}
    if problem.error is not None:
        document["error"] = {**problem.error.to_dict(), "detail": problem.error.detail}
    for name in ("algorithm", "actual", "expected"):
        value = getattr(problem, name)
        if value is not None:
            document[name] = value
    return document


def verify_lines(
    adapter: StorageAdapter, prefix: str, rows: list[tuple], algorithms: tuple[str, ...], workers: int,
    heartbeat: float, on_done: Callable[[int, int, int], None] | None = None,
) -> Iterator[bytes]:
    """NDJSON lines of what ``adapter.verify_many`` finds, a line per batch; a blank line every ``heartbeat``
    seconds without one."""
    batches = with_heartbeat(lambda: adapter.verify_many(prefix, rows, algorithms, workers=workers),
                             heartbeat, workers * 2)
    files = problems = total_read = 0
    try:
        for batch in batches:
            if batch is None:
                yield b"\n"
                continue
            files += batch.checked + sum(1 for p in batch.problems if p.kind != VERIFY_DIGEST)
            problems += len(batch.problems)
            total_read += batch.bytes_read
            yield ndjson_line(batch_document(batch))
        yield ndjson_line({"end": True, "files": files, "problems": problems, "bytes_read": total_read})
    finally:
        batches.close()
        if on_done is not None:  # the agent's metrics, as for digests: files read, those with a problem, bytes
            on_done(files, problems, total_read)


def _rows(document: dict[str, Any], algorithms: tuple[str, ...], limit: int) -> list[tuple]:
    rows = document.get("rows")
    if not isinstance(rows, list):
        raise InvalidRequest("'rows' must be a list of [path, size, chunks, digest …]")
    if len(rows) > limit:
        raise InvalidRequest(f"at most {limit} rows per request, {len(rows)} were sent")
    width = 3 + len(algorithms)
    out = []
    for row in rows:
        if not isinstance(row, list) or len(row) != width:
            raise InvalidRequest(f"each row must be [path, size, chunks, then one digest per algorithm]: {width} items")
        path, size, chunks, *digests = row
        if not isinstance(path, str):
            raise InvalidRequest("a row's path must be a string")
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_INT64:
            raise InvalidRequest(f"a row's size must be an integer from 0 to {MAX_INT64}")
        if not isinstance(chunks, bool):
            raise InvalidRequest("a row's third item must be true or false (it is ignored)")
        if not all(isinstance(d, str) and len(d) <= MAX_DIGEST_CHARS for d in digests):
            raise InvalidRequest(f"a row's digests must be strings of at most {MAX_DIGEST_CHARS} characters")
        out.append((path, size, tuple(digests)))
    return out


async def verify_objects(request: Request) -> Response:
    config = request.app.state.config
    document = await json_body(request)
    prefix = document.get("prefix", "")
    if not isinstance(prefix, str):
        raise InvalidRequest("'prefix' must be a string: a directory of keys, ending in '/', or empty")
    check_key(prefix, allow_prefix=True)  # InvalidKey: 400, the prefix named
    if prefix and not prefix.endswith("/"):
        raise InvalidRequest("'prefix' must end in '/' (a directory of keys) or be empty")
    algorithms = requested_algorithms(document)
    if list(algorithms) != document.get("algorithms", ["sha256"]):
        raise InvalidRequest(f"give the algorithms by their canonical names, once each: {', '.join(algorithms)}")
    rows = _rows(document, algorithms, config.max_digest_keys)
    refused = refused_keys(prefix + row[0] for row in rows)
    if refused is not None:
        return refused
    lines = verify_lines(adapter_of(request), prefix, rows, algorithms, requested_workers(document, config),
                         config.digest_heartbeat, on_done=request.app.state.metrics.digested)
    return StreamingResponse(iterate_in_threads(lines), media_type=NDJSON)
