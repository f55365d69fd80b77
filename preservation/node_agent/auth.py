"""Authentication of every request but the health check (ASGI middleware).

The middleware verifies the signature headers (see
:mod:`storage_adapters.signing`), the body against its signed sha256 (the
body is read here, bounded, and handed on to the endpoint), and that the
nonce has not been seen within the replay window.  A refused request gets
401 with a JSON error and a log line naming the client and the reason; a
request that is malformed before any key is tried (a signature header that
is not well-formed, a query parameter given twice) gets 400.

Nonces live in memory only, so a request signed before the agent started
is refused: a request captured before a restart cannot be replayed after it.

A streamed write (PUT) is signed with ``STREAMING-TRAILER``; its body is
checked by the upload endpoint against the trailer, which is chained to the
signature left in ``scope["preserve.auth"]``.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import logging
import threading
import time
from typing import Any, Awaitable, Callable, Mapping
from urllib.parse import parse_qsl, quote

from preservation.errors import AccessDenied, InvalidRequest, PreservationError, StorageUnavailable
from preservation.text import for_log
from storage_adapters.signing import (
    HEADER_AUTHORIZATION,
    HEADER_CONTENT_SHA256,
    HEADER_KEY_ID,
    HEADER_NONCE,
    HEADER_TIMESTAMP,
    SIGNED_HEADERS,
    STREAMING_TRAILER,
    MalformedSignature,
    SignatureRefused,
    VerifiedRequest,
    verify_request,
)

AUTH_SCOPE_KEY = "preserve.auth"

log = logging.getLogger("preservation.node_agent.auth")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class NonceCacheFull(Exception):
    """More signed requests arrived within the replay window than the cache holds."""


class NonceCache:
    """Nonces seen within the replay window, forgotten once their request would be stale anyway."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._seen: set[tuple[str, str]] = set()
        self._expiry: list[tuple[float, tuple[str, str]]] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._seen)

    def remember(self, key_id: str, nonce: str, expires_at: float, now: float) -> None:
        """Record a nonce; raises SignatureRefused if it was seen, NonceCacheFull if there is no room."""
        entry = (key_id, nonce)
        with self._lock:
            while self._expiry and self._expiry[0][0] < now:
                _, old = heapq.heappop(self._expiry)
                self._seen.discard(old)
            if entry in self._seen:
                raise SignatureRefused("replayed nonce", key_id)
            if len(self._seen) >= self.capacity:
                raise NonceCacheFull()
            self._seen.add(entry)
            heapq.heappush(self._expiry, (expires_at, entry))


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "unknown client"


def log_refusal(scope: Scope, key_id: str | None, reason: str) -> None:
    """One warning per refused request: what, from where, which key id, why (each on one line)."""
    log.warning(
        "refused %s %s from %s (key id %r): %s",
        scope["method"], for_log(scope["path"]), _client(scope), key_id, for_log(reason),
    )


def malformed(reason: str) -> InvalidRequest:
    """The error a client sees for a request refused before any key was tried (sent with 400)."""
    return InvalidRequest(f"request refused: {reason}")


def refusal(reason: str) -> AccessDenied:
    """The error a client sees for a request that failed authentication (sent with 401)."""
    return AccessDenied(f"request refused: {reason}", location="node agent")


def error_body(error: PreservationError, **extra: Any) -> bytes:
    return json.dumps({**error.to_dict(), "detail": error.detail, **extra}).encode("utf-8")


async def send_json(send: Send, status: int, body: bytes, headers: Mapping[str, str] | None = None) -> None:
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw_headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


# Headers that may appear only once: the signature covers one value of each.
_ONE_VALUE_HEADERS = frozenset(
    name.lower()
    for name in (
        *SIGNED_HEADERS, HEADER_KEY_ID, HEADER_TIMESTAMP, HEADER_NONCE, HEADER_CONTENT_SHA256, HEADER_AUTHORIZATION
    )
)


class _BodyTooLarge(Exception):
    """The request body is larger than the agent accepts for its kind of request."""


def check_query(query: bytes) -> None:
    """Raise MalformedSignature when a query parameter is given twice.

    The signature covers every value (sorted), but an endpoint reads one of
    them: ``?limit=1&limit=9`` (or ``?limit=1&%6cimit=9``, the same name once
    decoded) would mean one thing to the signature and another to the handler.
    """
    names = [name for name, _ in parse_qsl(query.decode("latin-1"), keep_blank_values=True)]
    if len(names) != len(set(names)):
        repeated = sorted({name for name in names if names.count(name) > 1})
        raise MalformedSignature(f"query parameter(s) given more than once: {', '.join(repeated)}")


class SignatureMiddleware:
    """Refuse every HTTP request whose signature, body hash or nonce does not verify."""

    def __init__(
        self,
        app: Callable,
        keys: Mapping[str, bytes],
        *,
        public_paths: frozenset[str] = frozenset(),
        max_clock_skew: int,
        nonce_capacity: int,
        max_body: int,
        not_before: int,
    ) -> None:
        self.app = app
        self.keys = dict(keys)
        self.public_paths = public_paths
        self.max_clock_skew = max_clock_skew
        self.max_body = max_body
        self.not_before = not_before
        self.nonces = NonceCache(nonce_capacity)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.public_paths:
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        raw_path = (scope.get("raw_path") or quote(scope["path"]).encode("ascii")).decode("latin-1")
        names = [k.decode("latin-1").lower() for k, _ in scope["headers"]]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        client_text = _client(scope)
        now = time.time()
        try:
            # A repeated header could mean one value to the signature and another to the endpoint.
            repeated = sorted({n for n in names if n in _ONE_VALUE_HEADERS and names.count(n) > 1})
            if repeated:
                raise SignatureRefused(f"repeated header {', '.join(repeated)}", headers.get(HEADER_KEY_ID.lower()))
            check_query(scope.get("query_string", b""))
            verified = verify_request(
                method, raw_path, scope.get("query_string", b""), headers, self.keys, now=now,
                max_skew=self.max_clock_skew,
            )
            if verified.timestamp < self.not_before:
                raise SignatureRefused("signed before the agent started (a replayed request?)", verified.key_id)
            if method == "PUT" and verified.content_sha256 != STREAMING_TRAILER:
                raise SignatureRefused(f"a write must be signed with {STREAMING_TRAILER}", verified.key_id)
            if method != "PUT" and verified.content_sha256 == STREAMING_TRAILER:
                raise SignatureRefused("only writes may stream their body", verified.key_id)
            if method != "PUT":
                body = await self._read_body(receive)
                if hashlib.sha256(body).hexdigest() != verified.content_sha256:
                    raise SignatureRefused("the body does not match its signed sha256", verified.key_id)
                receive = _replay(body, receive)
            self.nonces.remember(verified.key_id, verified.nonce, verified.timestamp + self.max_clock_skew, now)
        except MalformedSignature as e:
            log_refusal(scope, e.key_id, e.reason)
            await send_json(send, 400, error_body(malformed(e.reason)))
            return
        except SignatureRefused as e:
            log_refusal(scope, e.key_id, e.reason)
            await send_json(send, 401, error_body(refusal(e.reason)), {"WWW-Authenticate": "PRESERVE-HMAC-SHA256"})
            return
        except _BodyTooLarge:
            log.warning(
                "refused %s %s from %s: body over %d bytes", method, for_log(scope["path"]), client_text, self.max_body
            )
            await send_json(send, 413, error_body(InvalidRequest(f"the request body is over {self.max_body} bytes")))
            return
        except NonceCacheFull:
            log.error(
                "refused %s %s from %s: %d signed requests within the replay window, the nonce cache is full",
                method, for_log(scope["path"]), client_text, len(self.nonces),
            )
            busy = StorageUnavailable("too many requests within the replay window", location="node agent")
            await send_json(send, 503, error_body(busy), {"Retry-After": "5"})
            return
        scope[AUTH_SCOPE_KEY] = verified
        await self.app(scope, receive, send)

    async def _read_body(self, receive: Receive) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > self.max_body:
                raise _BodyTooLarge()
            parts.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(parts)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the already-read body on once, then defers to the real one."""
    delivered = False

    async def replay() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def verified_request(scope: Scope) -> VerifiedRequest:
    """The verified signature of the request being served (set by the middleware)."""
    return scope[AUTH_SCOPE_KEY]
