"""Request signing between the node adapter (client) and the node agent (server).

Every request except the health check carries::

    X-Preserve-Key-Id:          which shared key signed it
    X-Preserve-Timestamp:       Unix seconds when it was signed
    X-Preserve-Nonce:           32 random hex digits, never reused
    X-Preserve-Content-SHA256:  sha256 of the body, or STREAMING-TRAILER
    Authorization:              PRESERVE-HMAC-SHA256 Signature=<hex>

The signature is HMAC-SHA256, under the key named by the key id, of the
canonical request: the method, the raw (percent-encoded) path, the canonical
query, the key id, the timestamp, the nonce, the values of the few headers
that change a request's meaning (``SIGNED_HEADERS``) and the body sha256.

A streamed write cannot know its sha256 before the last byte is sent, so its
body is the payload followed by a fixed-length *trailer* carrying the sha256
and size of the payload and an HMAC over them chained to the request
signature (see :func:`make_trailer`).  The agent hashes the payload as it
arrives and makes the object visible only if the trailer verifies.

This module is shared by both ends, so it depends on nothing but the
standard library and :mod:`preservation.units` (which imports nothing).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from typing import Iterable, Mapping
from urllib.parse import parse_qsl, quote

from preservation.units import parse_decimal

ALGORITHM = "PRESERVE-HMAC-SHA256"

HEADER_KEY_ID = "X-Preserve-Key-Id"
HEADER_TIMESTAMP = "X-Preserve-Timestamp"
HEADER_NONCE = "X-Preserve-Nonce"
HEADER_CONTENT_SHA256 = "X-Preserve-Content-SHA256"
HEADER_AUTHORIZATION = "Authorization"
HEADER_SIZE = "X-Preserve-Size"
HEADER_CONFIRM_DELETE = "X-Preserve-Confirm-Delete"

# Headers whose values are part of the signature (lower case, in this order).
SIGNED_HEADERS = ("range", HEADER_SIZE.lower(), HEADER_CONFIRM_DELETE.lower())

STREAMING_TRAILER = "STREAMING-TRAILER"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

MAX_CLOCK_SKEW = 300
NONCE_PATTERN = re.compile(r"^[0-9a-f]{32,64}$")
KEY_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
MIN_KEY_LENGTH = 16

_TRAILER_MAGIC = b"PRESERVE-TRAILER-1 "
_SIZE_DIGITS = 20
# magic, sha256 hex, space, zero-padded size, space, mac hex, newline
TRAILER_LENGTH = len(_TRAILER_MAGIC) + 64 + 1 + _SIZE_DIGITS + 1 + 64 + 1


class SignatureRefused(Exception):
    """A request's signature did not verify; ``reason`` is safe to show the client."""

    def __init__(self, reason: str, key_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.key_id = key_id


class MalformedSignature(SignatureRefused):
    """A signature header that is not even well-formed: a bad request (400), not a failed login (401)."""


def canonical_query(query: str | bytes) -> str:
    """The query as sorted, uniformly percent-encoded ``name=value`` pairs."""
    if isinstance(query, bytes):
        query = query.decode("latin-1")
    pairs = parse_qsl(query, keep_blank_values=True, errors="surrogateescape")
    encoded = sorted(
        (quote(k, safe="-_.~", errors="surrogateescape"), quote(v, safe="-_.~", errors="surrogateescape"))
        for k, v in pairs
    )
    return "&".join(f"{k}={v}" for k, v in encoded)


def canonical_request(
    method: str,
    raw_path: str,
    query: str | bytes,
    key_id: str,
    timestamp: str,
    nonce: str,
    headers: Mapping[str, str],
    content_sha256: str,
) -> bytes:
    """The exact bytes that are signed.  ``headers`` is looked up in lower case."""
    lowered = {k.lower(): v for k, v in headers.items()}
    lines = [
        ALGORITHM,
        method.upper(),
        raw_path,
        canonical_query(query),
        key_id,
        timestamp,
        nonce,
        *(f"{name}:{lowered.get(name, '').strip()}" for name in SIGNED_HEADERS),
        content_sha256,
    ]
    return "\n".join(lines).encode("utf-8", "surrogateescape")


def compute_signature(key: bytes, canonical: bytes) -> str:
    return hmac.new(key, canonical, hashlib.sha256).hexdigest()


def new_nonce() -> str:
    return secrets.token_hex(16)


def sign_request(
    method: str,
    raw_path: str,
    query: str | bytes,
    headers: Mapping[str, str],
    content_sha256: str,
    key_id: str,
    key: bytes,
    timestamp: int | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """Return the headers to add to a request so that the agent accepts it."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or new_nonce()
    canonical = canonical_request(method, raw_path, query, key_id, ts, nonce, headers, content_sha256)
    return {
        HEADER_KEY_ID: key_id,
        HEADER_TIMESTAMP: ts,
        HEADER_NONCE: nonce,
        HEADER_CONTENT_SHA256: content_sha256,
        HEADER_AUTHORIZATION: f"{ALGORITHM} Signature={compute_signature(key, canonical)}",
    }


@dataclass(frozen=True)
class VerifiedRequest:
    """Who signed a request, and the signature (the chain link for a trailer)."""

    key_id: str
    key: bytes
    signature: str
    timestamp: int
    nonce: str
    content_sha256: str


def verify_request(
    method: str,
    raw_path: str,
    query: str | bytes,
    headers: Mapping[str, str],
    keys: Mapping[str, bytes],
    now: float | None = None,
    max_skew: int = MAX_CLOCK_SKEW,
) -> VerifiedRequest:
    """Check the signature headers of a request (not the nonce's freshness, not the body).

    ``headers`` is looked up in lower case.  Raises :class:`SignatureRefused`
    with a short reason for anything missing, unknown, stale or forged.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    key_id = lowered.get(HEADER_KEY_ID.lower(), "")
    timestamp = lowered.get(HEADER_TIMESTAMP.lower(), "")
    nonce = lowered.get(HEADER_NONCE.lower(), "")
    content_sha256 = lowered.get(HEADER_CONTENT_SHA256.lower(), "")
    authorization = lowered.get(HEADER_AUTHORIZATION.lower(), "")
    if not (key_id and timestamp and nonce and content_sha256 and authorization):
        raise SignatureRefused("the request is not signed", key_id or None)
    scheme, _, params = authorization.partition(" ")
    label, _, signature = params.strip().partition("=")
    if scheme != ALGORITHM or label != "Signature" or not re.fullmatch(r"[0-9a-f]{64}", signature):
        raise MalformedSignature("malformed Authorization header", key_id)
    if not KEY_ID_PATTERN.fullmatch(key_id):
        raise MalformedSignature("malformed key id", None)
    key = keys.get(key_id)
    if key is None:
        raise SignatureRefused("unknown key id", key_id)
    try:
        ts = parse_decimal(timestamp)
    except ValueError as e:
        raise MalformedSignature(f"malformed timestamp ({HEADER_TIMESTAMP}: Unix seconds in ASCII digits)",
                                 key_id) from e
    current = time.time() if now is None else now
    if abs(current - ts) > max_skew:
        raise SignatureRefused(f"stale timestamp (more than {max_skew} s from the agent's clock)", key_id)
    if not NONCE_PATTERN.fullmatch(nonce):
        raise MalformedSignature("malformed nonce", key_id)
    if content_sha256 != STREAMING_TRAILER and not re.fullmatch(r"[0-9a-f]{64}", content_sha256):
        raise MalformedSignature("malformed content sha256", key_id)
    canonical = canonical_request(method, raw_path, query, key_id, timestamp, nonce, lowered, content_sha256)
    if not hmac.compare_digest(compute_signature(key, canonical), signature):
        raise SignatureRefused("bad signature", key_id)
    return VerifiedRequest(key_id, key, signature, ts, nonce, content_sha256)


# --- the trailer of a streamed body ---------------------------------------------


def _trailer_mac(key: bytes, request_signature: str, sha256: str, size: int) -> str:
    message = f"{_TRAILER_MAGIC.decode().strip()}\n{request_signature}\n{sha256}\n{size}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def make_trailer(key: bytes, request_signature: str, sha256: str, size: int) -> bytes:
    """The fixed-length trailer that ends a streamed body of ``size`` bytes hashing to ``sha256``."""
    mac = _trailer_mac(key, request_signature, sha256, size)
    trailer = _TRAILER_MAGIC + f"{sha256} {size:0{_SIZE_DIGITS}d} {mac}\n".encode()
    assert len(trailer) == TRAILER_LENGTH
    return trailer


def verify_trailer(trailer: bytes, key: bytes, request_signature: str) -> tuple[str, int]:
    """Check a trailer's MAC; return the (sha256, size) it announces.

    Raises :class:`SignatureRefused` when it is malformed or was not made with
    ``key`` for the request signed ``request_signature``.
    """
    if len(trailer) != TRAILER_LENGTH or not trailer.startswith(_TRAILER_MAGIC) or not trailer.endswith(b"\n"):
        raise SignatureRefused("the body does not end with a valid trailer")
    try:
        sha256, size_text, mac = trailer[len(_TRAILER_MAGIC) : -1].decode("ascii").split(" ")
        size = int(size_text)
    except ValueError as e:
        raise SignatureRefused("the body does not end with a valid trailer") from e
    if not hmac.compare_digest(_trailer_mac(key, request_signature, sha256, size), mac):
        raise SignatureRefused("the trailer signature does not match")
    return sha256, size


def possession_proof(nonce: bytes, chunks: Iterable[bytes]) -> str:
    """sha256(nonce ‖ bytes): the answer to a challenge, computable only by a holder of the bytes."""
    h = hashlib.sha256(nonce)
    for chunk in chunks:
        h.update(chunk)
    return h.hexdigest()
