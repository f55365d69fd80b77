"""Proof of possession: ``POST /v1/challenge``.

The auditor sends a key, a byte range and a fresh random nonce; the node
answers sha256(nonce ‖ bytes[offset:offset+length]).  The nonce is new each
time, so the answer cannot have been computed in advance or kept instead of
the bytes; the auditor compares it with the answer computed from a copy it
trusts.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from preservation.errors import InvalidRequest
from storage_adapters import StorageAdapter, check_key
from storage_adapters.signing import possession_proof

from .responses import adapter_of, int_field, json_body, json_response

MIN_NONCE_BYTES = 16
MAX_NONCE_BYTES = 1024


def _nonce(value: object) -> bytes:
    try:
        nonce = bytes.fromhex(value) if isinstance(value, str) else b""
    except ValueError:
        nonce = b""
    if not MIN_NONCE_BYTES <= len(nonce) <= MAX_NONCE_BYTES:
        raise InvalidRequest(f"'nonce' must be {MIN_NONCE_BYTES} to {MAX_NONCE_BYTES} random bytes, hex-encoded")
    return nonce


def prove(adapter: StorageAdapter, key: str, offset: int, length: int, nonce: bytes) -> tuple[str, int]:
    read = 0

    def counted():
        nonlocal read
        for chunk in adapter.read(key, offset, length):
            read += len(chunk)
            yield chunk

    return possession_proof(nonce, counted()), read


async def answer_challenge(request: Request) -> Response:
    document = await json_body(request)
    key = check_key(document.get("key"))
    offset = int_field(document, "offset", 0)
    length = int_field(document, "length")
    nonce = _nonce(document.get("nonce"))
    proof, read = await run_in_threadpool(prove, adapter_of(request), key, offset, length, nonce)
    return json_response({"key": key, "offset": offset, "length": length, "bytes_read": read, "sha256": proof})
