"""Node agent back end: ``node+http://host:port[/prefix]`` and ``node+https://…``.

Talks to ``preserve node serve`` at a remote node (see docs/node-agent.md).
The optional ``/prefix`` is a key prefix on the node: every key is stored
under it, and listings are relative to it.

Digests are computed on the node (``FEATURE_NODE_DIGEST``): ``digest_many``
sends key lists and reads back one NDJSON line per key, and ``verify_many``
(an audit) sends the expected rows and reads back what the node found, a line
per batch of files (``POST /v1/verify``; an older agent without it is asked
for digests instead), so an audit moves findings over the network, not content.  ``traffic()`` (its ``traffic`` feature) counts the bytes of
every request and response this adapter sent or received: request lines,
headers and bodies (TCP and TLS framing are not counted).

Credentials are constructor options (``key_id``, ``key``, ``ca_file``) or the
environment (``PRESERVE_NODE_KEY_ID``, ``PRESERVE_NODE_KEY``), never the URI.

:class:`NodeStore` makes each request once; :class:`NodeAdapter`, what
callers open, is that store wrapped in the one retry wrapper
(:class:`~storage_adapters.wrappers.RetryingAdapter`): connection failures
and 502/503/504 answers (StorageUnavailable) are retried with exponential
back-off, a 4xx answer never is, a write only if it failed before its first
byte was sent, and a read resumes where a broken connection left it, with a
Range request.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import ssl
import threading
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Container, Iterable, Iterator, Mapping, Sequence
from urllib.parse import quote, unquote, urlsplit

import httpx

from preservation.errors import (
    AccessDenied,
    AgentProtocolError,
    CheckpointInvalid,
    ChecksumMismatch,
    ConfigError,
    InvalidKey,
    InvalidRequest,
    ObjectNotFound,
    PreservationError,
    StorageError,
    StorageFull,
    StorageUnavailable,
    UnsupportedURI,
    WitnessRefused,
    error_class,
)


from .base import (
    VERIFY_DIGEST,
    VERIFY_MISSING,
    VERIFY_NOT_REGULAR,
    VERIFY_SIZE,
    VERIFY_UNREADABLE,
    DigestResult,
    ObjectInfo,
    StorageAdapter,
    VerifyBatch,
    VerifyProblem,
    check_key,
)
from .features import FEATURE_FREE_SPACE, FEATURE_NODE_DIGEST, FEATURE_TRAFFIC, FEATURE_WITNESS
from .hashing import CHUNK_SIZE
from .wrappers import RetryingAdapter
from .signing import (
    EMPTY_SHA256,
    HEADER_CONFIRM_DELETE,
    HEADER_SIZE,
    MAX_CLOCK_SKEW,
    MIN_KEY_LENGTH,
    STREAMING_TRAILER,
    TRAILER_LENGTH,
    make_trailer,
    sign_request,
)

KEY_ENV = "PRESERVE_NODE_KEY"
KEY_ID_ENV = "PRESERVE_NODE_KEY_ID"
DEFAULT_KEY_ID = "coordinator"

_STATUS_ERRORS: dict[int, type[StorageError]] = {
    403: AccessDenied,
    404: ObjectNotFound,
    422: ChecksumMismatch,
    502: StorageUnavailable,
    503: StorageUnavailable,
    504: StorageUnavailable,
    507: StorageFull,
}


class _TrailedBody:
    """The body of a streamed write: the payload, then the trailer that authenticates it.

    ``signature`` must be set (to the request's signature) before iteration.
    An exception from the source is kept in ``source_error``, so that the
    caller re-raises the source's own error, not the transport's.
    """

    def __init__(self, source: Iterator[bytes], key: bytes) -> None:
        self._source = source
        self._key = key
        self.signature = ""
        self.size = 0
        self.sha256 = ""
        self.source_error: BaseException | None = None

    def __iter__(self) -> Iterator[bytes]:
        hasher = hashlib.sha256()
        while True:
            try:
                chunk = next(self._source)
            except StopIteration:
                break
            except BaseException as e:
                self.source_error = e
                raise
            hasher.update(chunk)
            self.size += len(chunk)
            yield chunk
        self.sha256 = hasher.hexdigest()
        yield make_trailer(self._key, self.signature, self.sha256, self.size)


class NodeStore(StorageAdapter):
    """The node agent at ``uri``, each request made once (callers open :class:`NodeAdapter`)."""

    scheme = "node+http"
    abilities = frozenset({FEATURE_NODE_DIGEST, FEATURE_TRAFFIC, FEATURE_WITNESS, FEATURE_FREE_SPACE})

    def __init__(
        self,
        uri: str,
        *,
        key_id: str | None = None,
        key: str | bytes | None = None,
        ca_file: str | None = None,
        timeout: float = 60.0,
        connect_timeout: float = 5.0,
        digest_batch: int = 1000,
        verify_batch: int = 10_000,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(uri)
        environ = os.environ if environ is None else environ
        parts = urlsplit(uri)
        scheme = parts.scheme.lower()
        if scheme not in ("node+http", "node+https"):
            raise UnsupportedURI("use node+http://host:port[/prefix] or node+https://…", uri=uri)
        if "@" in parts.netloc:
            raise UnsupportedURI(
                f"credentials never go in the URI: pass key_id/key or set {KEY_ID_ENV}/{KEY_ENV}", uri=uri
            )
        if parts.query or parts.fragment:
            raise UnsupportedURI("a node URI takes no query or fragment", uri=uri)
        try:
            port = parts.port
        except ValueError as e:
            raise UnsupportedURI(f"bad port: {e}", uri=uri) from e
        if not parts.hostname or port is None:
            raise UnsupportedURI("the host and port of the node agent are needed (node+http://host:8101)", uri=uri)
        prefix = unquote(parts.path).strip("/")
        if prefix:
            try:
                check_key(prefix)
            except InvalidKey as e:
                raise UnsupportedURI(f"bad key prefix: {e}", uri=uri) from e
        self._prefix = prefix + "/" if prefix else ""
        self._display = f"{scheme}://{parts.netloc}" + (f"/{prefix}" if prefix else "")
        self._agent = parts.netloc

        self._key_id = key_id or environ.get(KEY_ID_ENV) or DEFAULT_KEY_ID
        secret = key if key is not None else environ.get(KEY_ENV)
        if not secret:
            raise ConfigError(f"no key for the node agent at {self._display}: pass key=… or set {KEY_ENV}")
        self._key = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
        if len(self._key) < MIN_KEY_LENGTH:
            raise ConfigError(f"the key for the node agent at {self._display} is shorter than {MIN_KEY_LENGTH} characters")

        verify: ssl.SSLContext | bool = False
        if scheme == "node+https":
            try:
                verify = ssl.create_default_context(cafile=ca_file)
            except (OSError, ssl.SSLError) as e:
                raise ConfigError(f"cannot load the CA file {ca_file!r} for {self._display}: {e}") from e
        self.timeout = timeout
        self.digest_batch = digest_batch
        self.verify_batch = verify_batch  # rows per check on the node: the agent's max_digest_keys by default
        self._verifies = True  # False once the agent has shown it has no /v1/verify (an older agent)
        self._client = httpx.Client(
            base_url=f"{scheme.removeprefix('node+')}://{parts.netloc}",
            verify=verify,
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            headers={"Accept-Encoding": "identity", "User-Agent": "preserve-node-adapter"},
            follow_redirects=False,
        )
        self._traffic = 0
        self._traffic_lock = threading.Lock()

    @property
    def location(self) -> str:
        return self._display

    def traffic(self) -> int:
        return self._traffic

    def free_space(self) -> tuple[int, int] | None:
        """``(free, total)`` bytes under the agent's storage, from its health answer (``GET /v1/health``); None
        when the agent reports none (its storage is not files on its host, or an agent older than the field).

        The answer is outside text: anything but two whole numbers with free <= total is no answer (None).
        Raises StorageUnavailable when the agent does not answer or is not healthy."""
        request = self._signed("GET", "/v1/health")
        try:
            response = self._client.send(request)
        except httpx.TransportError as e:
            raise self._transport_error(e) from e
        self._count_response(response)
        if response.status_code != 200:
            raise StorageUnavailable(f"the node agent at {self._agent} is not healthy (HTTP {response.status_code})",
                                     location=self.location)
        try:
            answer = response.json()
            free, total = answer.get("free_bytes"), answer.get("total_bytes")
        except (ValueError, AttributeError):
            return None
        if type(free) is not int or type(total) is not int or not 0 <= free <= total:
            return None
        return free, total

    def close(self) -> None:
        self._client.close()

    # --- HTTP plumbing ------------------------------------------------------------

    def _count(self, n: int) -> None:
        with self._traffic_lock:
            self._traffic += n

    def _signed(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | Iterable[bytes] = b"",
        content_sha256: str | None = None,
    ) -> httpx.Request:
        request = self._client.build_request(method, path, params=params, headers=headers, content=content)
        raw_path, _, query = request.url.raw_path.partition(b"?")
        if content_sha256 is None:
            assert isinstance(content, bytes)
            content_sha256 = hashlib.sha256(content).hexdigest() if content else EMPTY_SHA256
        signed = sign_request(
            method, raw_path.decode("ascii"), query, request.headers, content_sha256, self._key_id, self._key
        )
        request.headers.update(signed)
        head = len(method) + len(request.url.raw_path) + 12
        head += sum(len(k) + len(v) + 4 for k, v in request.headers.raw) + 2
        self._count(head + (len(content) if isinstance(content, bytes) else 0))
        return request

    def _count_response(self, response: httpx.Response) -> None:
        head = 15 + len(response.reason_phrase) + sum(len(k) + len(v) + 4 for k, v in response.headers.raw) + 2
        self._count(head + response.num_bytes_downloaded)

    def _transport_error(self, e: httpx.TransportError) -> StorageError:
        if isinstance(e, httpx.ConnectError) and _is_certificate_failure(e):
            return AccessDenied(
                f"the TLS certificate of the node agent at {self._agent} is not trusted ({e}): "
                "give the CA that signed it as ca_file",
                location=self.location,
            )
        if isinstance(e, httpx.ConnectError):
            return StorageUnavailable(
                f"the node agent at {self._agent} is not answering ({e}): is `preserve node serve` running there?",
                location=self.location,
            )
        if isinstance(e, httpx.TimeoutException):
            return StorageUnavailable(
                f"the node agent at {self._agent} did not answer within {self.timeout:g} s ({type(e).__name__})",
                location=self.location,
            )
        return StorageUnavailable(
            f"the connection to the node agent at {self._agent} broke ({type(e).__name__}: {e})",
            location=self.location,
        )

    def _open(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        content: bytes = b"",
        key: str | None = None,
    ) -> httpx.Response:
        """Send one signed request; return the streaming response.

        The caller must pass the response to :meth:`_finish`.  Raises the
        translated error for a 4xx/5xx answer (StorageUnavailable for
        502/503/504), and StorageUnavailable when the agent cannot be reached.
        """
        request = self._signed(method, path, params=params, headers=headers, content=content)
        try:
            response = self._client.send(request, stream=True)
        except httpx.TransportError as e:
            raise self._transport_error(e) from e
        if response.status_code >= 400:
            try:
                raise self._error_from(response, key)
            finally:
                self._finish(response)
        return response

    def _finish(self, response: httpx.Response) -> None:
        response.close()
        self._count_response(response)

    @contextmanager
    def _exchange(self, method: str, path: str, **options: Any) -> Iterator[httpx.Response]:
        """:meth:`_open` as a context manager."""
        response = self._open(method, path, **options)
        try:
            yield response
        finally:
            self._finish(response)

    def _error_from(self, response: httpx.Response, key: str | None) -> PreservationError:
        try:
            document = json.loads(response.read())
        except (ValueError, httpx.HTTPError):
            document = {}
        if not isinstance(document, dict):
            document = {}
        return self._error_from_document(document, key, response.status_code)

    def _error_from_document(self, document: dict[str, Any], key: str | None, status: int) -> PreservationError:
        message = str(document.get("message") or f"HTTP {status}")
        if status == 401:
            return AccessDenied(
                f"the node agent refused the request ({message}): check that key id {self._key_id!r} and its key "
                f"are in the agent's keys file and that both clocks agree within {MAX_CLOCK_SKEW} s",
                location=self.location,
            )
        cls = error_class(str(document.get("code")), (StorageError, InvalidRequest),
                          _STATUS_ERRORS.get(status, StorageError))
        remote_key = (document.get("params") or {}).get("key")
        shown_key = key if key is not None else self._local_key(remote_key) if isinstance(remote_key, str) else ""
        if cls is ObjectNotFound:
            return ObjectNotFound(key=shown_key, location=self.location)
        detail = str(document.get("detail") or message)
        if cls is StorageError:
            detail = f"the node agent at {self._agent} failed: {detail}"
        # the agent's own parameters (e.g. what a NotRegularFile is) travel on; where is ours to say
        params = document.get("params")
        remote = {k: v for k, v in params.items() if k != "detail"} if isinstance(params, dict) else {}
        return cls(detail, **{**remote, "key": shown_key, "location": self.location, "uri": self.location})

    def _object_path(self, key: str) -> str:
        return "/v1/objects/" + quote(self._prefix + key, safe="/")

    def _local_key(self, remote_key: str) -> str:
        return remote_key[len(self._prefix) :] if remote_key.startswith(self._prefix) else remote_key

    # --- the storage interface ---------------------------------------------------------

    def _stat(self, key: str) -> ObjectInfo:
        with self._exchange("GET", "/v1/stat/" + quote(self._prefix + key, safe="/"), key=key) as response:
            document = json.loads(response.read())
        return _object_info(document, key)

    def _list(self, prefix: str) -> Iterator[ObjectInfo]:
        params = {"prefix": self._prefix + prefix}
        for document in self._lines("the listing", "GET", "/v1/list", params=params, key=prefix):
            yield _object_info(document, self._local_key(document["key"]))

    def _inventory(self, prefix: str) -> Iterator[tuple[str, int | None]]:
        """The node store's inventory (``GET /v1/list?inventory=1``): names, with sizes only where its store
        gives them for free (a disk there lists names only); an older agent lists objects with their sizes."""
        asked = self._prefix + prefix
        params = {"prefix": asked, "inventory": "1"}
        for document in self._lines("the inventory", "GET", "/v1/list", params=params, key=prefix):
            if "keys" not in document:  # an older agent: a line per object
                entries = [(document["key"], None if document.get("irregular") is not None else document["size"])]
            elif len(document["keys"]) != len(document["sizes"]):
                raise AgentProtocolError(f"an inventory line with {len(document['keys'])} keys and "
                                         f"{len(document['sizes'])} sizes", location=self.location)
            else:
                entries = zip(document["keys"], document["sizes"])
            for key, size in entries:
                if not isinstance(key, str):
                    raise AgentProtocolError(f"an inventory entry that is no key: {key!r}", location=self.location)
                if not key.startswith(asked):  # never another package's file taken for one of this package's
                    raise AgentProtocolError(f"an inventory of {asked!r} listed {key!r}, outside it",
                                             location=self.location)
                if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
                    size = None  # no size to trust: the check of the content finds a wrong one
                yield self._local_key(key), size

    def _lines(self, what: str, method: str, path: str, **options: Any) -> Iterator[dict[str, Any]]:
        """The documents of an NDJSON answer up to its end line; an answer cut short raises StorageUnavailable."""
        try:
            with self._exchange(method, path, **options) as response:
                for line in response.iter_lines():
                    if not line:
                        continue
                    document = json.loads(line)
                    if document.get("end"):
                        return
                    yield document
        except httpx.TransportError as e:
            raise self._transport_error(e) from e
        raise StorageUnavailable(f"the node agent at {self._agent} cut {what} short", location=self.location)

    def _read(self, key: str, offset: int, length: int | None) -> Iterator[bytes]:
        if length == 0:
            self._stat(key)
            return iter(())
        # The first request is made now, so that a missing object raises here, not on iteration.
        response = self._open("GET", self._object_path(key), headers=_range(offset, length), key=key)
        return self._read_stream(response)

    def _read_stream(self, response: httpx.Response) -> Iterator[bytes]:
        try:
            if response.status_code != 416:
                yield from response.iter_raw(CHUNK_SIZE)
        except httpx.TransportError as e:
            raise self._transport_error(e) from e
        finally:
            self._finish(response)

    def _write(self, key: str, chunks: Iterable[bytes], size: int | None) -> None:
        body = _TrailedBody(iter(chunks), self._key)
        headers = {}
        if size is not None:
            headers = {HEADER_SIZE: str(size), "Content-Length": str(size + TRAILER_LENGTH)}
        request = self._signed(
            "PUT", self._object_path(key), params={"algorithms": "sha256"}, headers=headers, content=body,
            content_sha256=STREAMING_TRAILER,
        )
        body.signature = _signature_of(request)
        try:
            response = self._client.send(request, stream=True)
        except BaseException as e:
            if body.source_error is not None:
                raise body.source_error from None
            if not isinstance(e, httpx.TransportError):
                raise
            raise self._transport_error(e) from e
        self._count(body.size + TRAILER_LENGTH)
        try:
            if response.status_code >= 400:
                raise self._error_from(response, key)
            stored = json.loads(response.read())
        finally:
            self._finish(response)
        if stored.get("size") != body.size or (stored.get("digests") or {}).get("sha256") != body.sha256:
            raise ChecksumMismatch(
                f"the node reports {stored.get('size')} bytes with sha256 {(stored.get('digests') or {}).get('sha256')}, "
                f"{body.size} bytes with sha256 {body.sha256} were sent",
                key=key,
                location=self.location,
            )

    def _delete(self, key: str) -> None:
        headers = {HEADER_CONFIRM_DELETE: quote(self._prefix + key, safe="")}
        with self._exchange("DELETE", self._object_path(key), headers=headers, key=key) as response:
            response.read()  # an empty body; success is the status _exchange already checked

    # --- digests and challenges, on the node ----------------------------------------------

    def _digest(self, key: str, algorithms: Sequence[str]) -> DigestResult:
        result = next(self._digest_batch([key], algorithms, 1))
        if result.error is not None:
            raise result.error
        return result

    def _digest_many(
        self, keys: Iterable[str], algorithms: Sequence[str], workers: int, chunked: Container[str] = frozenset(),
    ) -> Iterator[DigestResult]:
        """Digests computed on the node; never chunk digests (``chunked`` is not sent): what served bytes are
        checked against is not taken from a node's word."""
        batch: list[str] = []
        for key in keys:
            try:
                check_key(key)
            except InvalidKey as e:
                yield DigestResult(key=key, size=None, digests=None, error=e)
                continue
            batch.append(key)
            if len(batch) >= self.digest_batch:
                yield from self._digest_batch(batch, algorithms, workers)
                batch = []
        if batch:
            yield from self._digest_batch(batch, algorithms, workers)

    def _digest_batch(self, keys: list[str], algorithms: Sequence[str], workers: int) -> Iterator[DigestResult]:
        """Digest checked keys on the node, one result per key answered.  A request that fails
        raises (the retry wrapper asks again for the keys not answered, or gives each its error).

        An answer about a key that was not asked about, or about a key already answered, or one
        without the digests asked for, or an answer that ends with keys left out, is a protocol error
        (E311) for the keys not answered yet: a node never gets to say which files were checked."""
        content = json.dumps(
            {"keys": [self._prefix + k for k in keys], "algorithms": list(algorithms), "workers": workers}
        ).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        pending = set(keys)
        for document in self._lines("the digest stream", "POST", "/v1/digest", headers=headers, content=content):
            try:
                key = self._local_key(document["key"])
                if key not in pending:
                    raise KeyError(f"an answer about {key!r}, which was not asked about or was answered already")
                pending.discard(key)
                result = self._digest_result(key, document, algorithms)
            except (AttributeError, KeyError, TypeError, ValueError) as e:
                raise AgentProtocolError(f"a malformed answer to a digest request: {e!r}",
                                         location=self.location) from e
            yield result
        if pending:
            raise AgentProtocolError(f"a digest request for {len(keys)} file(s) left {len(pending)} unanswered",
                                     location=self.location)

    def _digest_result(self, key: str, document: dict[str, Any], algorithms: Sequence[str]) -> DigestResult:
        bytes_read = _count(document.get("bytes_read") or 0)
        if "error" in document:
            error = self._error_from_document(document["error"], key, 0)
            return DigestResult(key=key, size=None, digests=None, error=error, bytes_read=bytes_read)
        digests = {name: str(document["digests"][name]) for name in algorithms}
        return DigestResult(key=key, size=_count(document["size"]), digests=digests, bytes_read=bytes_read)

    def _verify_many(
        self, prefix: str, rows: Iterable[tuple], algorithms: tuple[str, ...], workers: int
    ) -> Iterator[VerifyBatch]:
        """Check the files on the node (``POST /v1/verify``), ``verify_batch`` rows a request; an agent
        that has no such endpoint (an older one: the route is not found) is checked over ``digest_many``."""
        rows = iter(rows)
        while window := list(itertools.islice(rows, self.verify_batch)):
            if self._verifies:
                lines = self._verify_request(prefix, window, algorithms, workers)
                try:
                    first = next(lines, None)
                except ObjectNotFound:  # the endpoint never answers 404 itself: the agent does not know it
                    self._verifies = False
                else:
                    if first is not None:
                        yield first
                    yield from lines
                    continue
            yield from super()._verify_many(prefix, window, algorithms, workers)

    def _verify_request(
        self, prefix: str, rows: list[tuple], algorithms: tuple[str, ...], workers: int
    ) -> Iterator[VerifyBatch]:
        # the third item (chunk digests wanted) is always false: what served bytes are checked against is
        # never taken from a node's word, only computed here from bytes whose digests were checked here
        content = json.dumps({
            "prefix": self._prefix + prefix, "algorithms": list(algorithms), "workers": workers,
            "rows": [[row[0], row[1], False, *row[2]] for row in rows],
        }).encode("utf-8")
        asked = {row[0]: row for row in rows}
        headers = {"Content-Type": "application/json"}
        batches = []
        for document in self._lines("the check", "POST", "/v1/verify", headers=headers, content=content):
            try:
                batches.append(self._verify_batch(prefix, asked, document))
            except (AttributeError, KeyError, TypeError, ValueError) as e:
                raise AgentProtocolError(f"a malformed answer to a check: {e!r}", location=self.location) from e
        self._check_accounts(batches, len(rows))
        yield from batches

    def _check_accounts(self, batches: list[VerifyBatch], sent: int) -> None:
        """The answer to a request must account for exactly the rows sent, each once: a file is either read
        whole (``checked``, a digest problem or none) or has one other problem.  Anything else (rows left
        out, a file answered twice) is a protocol error, never taken as "no problems"."""
        problems = [p for b in batches for p in b.problems]
        paths = [p.path for p in problems]
        checked = sum(b.checked for b in batches)
        other = sum(1 for p in problems if p.kind != VERIFY_DIGEST)
        if len(set(paths)) != len(paths) or checked + other != sent or len(paths) - other > checked:
            raise AgentProtocolError(
                f"a check of {sent} file(s) answered for {checked} read and {other} with another problem"
                f"{' (a file answered twice)' if len(set(paths)) != len(paths) else ''}", location=self.location)

    def _verify_batch(self, prefix: str, asked: dict[str, tuple], document: dict[str, Any]) -> VerifyBatch:
        """One line of the node's answer; an answer about a file that was not asked about is malformed
        (KeyError, ValueError).  Chunk digests in it (none are asked for) are never taken."""
        out = VerifyBatch(checked=_count(document["checked"]), bytes_read=_count(document["bytes_read"]))
        for problem in document["problems"]:
            path, kind = problem["path"], problem["kind"]
            if path not in asked:
                raise KeyError(f"a problem with {path!r}, which was not asked about")
            if kind in (VERIFY_MISSING, VERIFY_UNREADABLE, VERIFY_NOT_REGULAR):
                error = self._error_from_document(problem["error"], prefix + path, 0)
                out.problems.append(VerifyProblem(path, kind, error=error))
            elif kind == VERIFY_SIZE:
                out.problems.append(VerifyProblem(path, kind, actual=_count(problem["actual"]),
                                                  expected=_count(problem["expected"])))
            elif kind == VERIFY_DIGEST:
                out.problems.append(VerifyProblem(path, kind, algorithm=str(problem["algorithm"]),
                                                  actual=str(problem["actual"]), expected=str(problem["expected"])))
            else:
                raise ValueError(f"unknown kind of problem {kind!r}")
        return out

    def witness(self, document: Mapping[str, Any]) -> dict[str, Any]:
        """Send a checkpoint to the agent to witness (``POST /v1/witness``); its answer, with its co-signed note.

        Raises the agent's coded error: WitnessRefused (E703) for a checkpoint that does not extend the last
        one the node signed, CheckpointInvalid, InvalidRequest; StorageUnavailable when it cannot be reached.
        """
        content = json.dumps(document).encode("utf-8")
        return self._witness_call(self._signed("POST", "/v1/witness", headers={"Content-Type": "application/json"},
                                               content=content))

    def witness_key(self) -> dict[str, Any]:
        """The agent's witness public key (``GET /v1/witness/key``): its ``witness_key`` and ``witness_key_id``.

        Raises InvalidRequest when the agent is no witness, StorageUnavailable when it cannot be reached.
        """
        return self._witness_call(self._signed("GET", "/v1/witness/key"))

    def _witness_call(self, request: httpx.Request) -> dict[str, Any]:
        try:
            response = self._client.send(request)
        except httpx.TransportError as e:
            raise self._transport_error(e) from e
        self._count_response(response)
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        if response.status_code >= 400 or not isinstance(answer, dict):
            if response.status_code in (401, 502, 503, 504) or not isinstance(answer, dict):
                raise self._error_from_document(answer if isinstance(answer, dict) else {}, None,
                                                response.status_code)
            cls = error_class(str(answer.get("code")), (WitnessRefused, CheckpointInvalid, InvalidRequest),
                              StorageError)
            detail = str(answer.get("detail") or answer.get("message") or f"HTTP {response.status_code}")
            raise cls(detail, location=self.location)
        return answer

    def challenge(self, key: str, offset: int, length: int, nonce: bytes) -> str:
        """sha256(nonce ‖ bytes[offset:offset+length]) of ``key``, computed on the node.

        Compare it with :func:`storage_adapters.signing.possession_proof` over
        bytes you trust.  Raises ObjectNotFound, InvalidKey or StorageError.
        """
        key = check_key(key)
        if offset < 0 or length < 0:
            raise ValueError("offset and length must not be negative")
        content = json.dumps(
            {"key": self._prefix + key, "offset": offset, "length": length, "nonce": bytes(nonce).hex()}
        ).encode("utf-8")
        with self._exchange(
            "POST", "/v1/challenge", headers={"Content-Type": "application/json"}, content=content, key=key
        ) as response:
            return json.loads(response.read())["sha256"]


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{value!r} is not a count")
    return value


def _range(offset: int, length: int | None) -> dict[str, str]:
    if offset == 0 and length is None:
        return {}
    last = "" if length is None else str(offset + length - 1)
    return {"Range": f"bytes={offset}-{last}"}


def _signature_of(request: httpx.Request) -> str:
    return request.headers["Authorization"].rpartition("=")[2]


def _object_info(document: dict[str, Any], key: str) -> ObjectInfo:
    modified = document.get("modified")
    irregular = document.get("irregular")
    return ObjectInfo(
        key=key,
        size=int(document["size"]),
        modified=datetime.fromisoformat(modified) if modified else None,
        checksums=dict(document.get("checksums") or {}),
        irregular=str(irregular) if irregular is not None else None,
    )


def _is_certificate_failure(error: BaseException) -> bool:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class NodeAdapter(RetryingAdapter):
    """The node agent at ``uri`` (:class:`NodeStore`), its transient failures retried
    ``retries`` times with back-off starting at ``backoff`` seconds."""

    scheme = "node+http"

    def __init__(self, uri: str, *, retries: int = 4, backoff: float = 0.5, **options: Any) -> None:
        super().__init__(NodeStore(uri, **options), retries=retries, backoff=backoff)
