"""HTTP responses that carry package bytes: one file (with Range) or a whole package as zip.

Authorization comes first, then the catalog row, then the Range header is
checked against the catalog's size, and only then are bytes read, each chunk
verified before it is sent (:mod:`preservation.access.delivery`): the first
one before the response starts, so a failure there is still an error status;
when no copy has a later chunk right the response is cut short, never
continued with a wrong byte.

A file opens in the browser (``inline``) only when the catalog identified it
as a PDF, a raster image or plain text (:mod:`preservation.access.viewing`);
it is then sent with its type, ``nosniff`` and a sandboxing CSP, so the
document has an opaque origin and runs no script of the portal's.  Anything
else (HTML, SVG, XML, unknown) is an attachment of type
``application/octet-stream``.
"""

from __future__ import annotations

import base64
import codecs
import re
from typing import Iterator
from urllib.parse import quote

from fastapi.responses import JSONResponse, Response, StreamingResponse

from preservation.access.accounts import Principal
from preservation.access.as_of import reading, served_file
from preservation.access.delivery import ChunkedFile, VerifiedFile, get_package, iter_package_zip, open_verified
from preservation.access.usage import log_usage
from preservation.access.viewing import ATTACHMENT, Viewing, stored_viewing
from preservation.catalog.access_models import USAGE_DOWNLOAD
from preservation.errors import InvalidRequest
from preservation.repository import Repository

_RANGE_RE = re.compile(r"^bytes=([0-9]*)-([0-9]*)$")
# a served file must never run as a page of this site: sandboxed (an opaque origin, no scripts, no forms), and
# fetching nothing; an image or text shown inline may style itself inline and show its own pixels
FILE_CSP = "default-src 'none'; sandbox"
TEXT_SNIFF = 64 * 1024
INLINE_CSP = "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; frame-ancestors 'none'"


class RangeNotSatisfiable(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


def _position(digits: str, size: int) -> int:
    """A byte position as sent; any position past the end means "past the end" (``size + 1``).

    A Range header may carry thousands of digits: they are compared by length
    before ``int()`` (which refuses more than 4,300 digits) ever sees them.
    """
    digits = digits.lstrip("0") or "0"
    return size + 1 if len(digits) > len(str(size)) else min(int(digits), size + 1)


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """A single ``bytes=`` range → (start, end exclusive); None means send everything.

    Multiple or malformed ranges are ignored (RFC 9110 allows it); a range
    that starts past the end raises RangeNotSatisfiable.
    """
    if not header:
        return None
    match = _RANGE_RE.match(header.strip().replace(" ", ""))
    if not match or (not match.group(1) and not match.group(2)):
        return None
    first, last = match.group(1), match.group(2)
    if not first:
        suffix = _position(last, size)
        if suffix == 0:
            raise RangeNotSatisfiable(size)
        return max(0, size - suffix), size
    start = _position(first, size)
    end = size if not last else min(_position(last, size) + 1, size)
    if last and _position(last, size) < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable(size)
    return start, end


def _content_type(viewing: Viewing, verified: VerifiedFile | ChunkedFile) -> str:
    """The type sent; plain text says UTF-8 only when its first 64 KiB are UTF-8 (else the browser guesses,
    as it does for a GB18030 file, rather than being told a wrong charset)."""
    if viewing.media_type != "text/plain":
        return viewing.media_type
    try:
        codecs.getincrementaldecoder("utf-8")().decode(verified.head(TEXT_SNIFF), final=False)
    except UnicodeDecodeError:
        return "text/plain"
    return "text/plain; charset=utf-8"


def content_disposition(name: str, disposition: str = "attachment") -> str:
    fallback = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\;' else "_" for ch in name) or "file"
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def file_response(
    repo: Repository, principal: Principal, package_id: str, path: str, *, range_header: str | None,
    if_range: str | None, exact: bool = True, inline: bool = False,
) -> Response:
    """The verified bytes of one file of the state the reader reads (``as_of.reading``: ``exact`` False for an
    item's file, which staff get from the newest version kept); ``inline``: a file the browser may show opens in
    it (the portal's links; the API always sends attachments).  Raises NotFound, AccessRefused, NoVerifiedSource."""
    with repo.catalog.session() as s:
        package = get_package(s, package_id)
        state = reading(s, principal, package, path=path, exact=exact)  # a grant of an item holding it opens it
        collection_id = package.collection_id
        holder, row = served_file(s, state, path)
        viewing = stored_viewing(s, holder, row.path) if inline else ATTACHMENT
    etag = f'"{row.sha256}"'
    if if_range is not None and if_range.strip() != etag:
        range_header = None
    wanted = parse_range(range_header, row.size)
    start, end = wanted or (0, row.size)
    verified = open_verified(repo, holder, row, agent=principal.agent, start=start, end=end)
    log_usage(repo, principal, collection_id=collection_id, package_id=state.version_id, path=path,
              size=end - start, kind=USAGE_DOWNLOAD)
    headers = {
        "Content-Length": str(end - start),
        "Accept-Ranges": "bytes",
        "ETag": etag,
        "Content-Disposition": content_disposition(path.rsplit("/", 1)[-1], viewing.disposition),
        "Content-Security-Policy": INLINE_CSP if viewing.inline else FILE_CSP,
        "X-Content-Type-Options": "nosniff",
        "Content-Type": _content_type(viewing, verified),
        "X-Preserve-Source": verified.source,
        "X-Preserve-Version": str(state.number),
    }
    if wanted is None:
        headers["Repr-Digest"] = f"sha-256=:{base64.b64encode(bytes.fromhex(row.sha256)).decode()}:"
    else:
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{row.size}"

    def body() -> Iterator[bytes]:
        try:
            yield from verified.chunks(start, end)
        finally:
            verified.close()

    return StreamingResponse(body(), status_code=206 if wanted else 200, headers=headers)


def not_satisfiable(size: int) -> Response:
    refused = InvalidRequest(f"the requested range starts at or past the end of the file ({size} bytes)")
    return JSONResponse({"error": refused.to_dict()}, status_code=416, headers={"Content-Range": f"bytes */{size}"})


def zip_response(repo: Repository, principal: Principal, package_id: str) -> Response:
    """The whole package as a streamed zip; the first file is verified before the response starts."""
    with repo.catalog.session() as s:
        package = get_package(s, package_id)
        state = reading(s, principal, package)
        collection_id = package.collection_id
    served = state.version_id
    chunks = iter_package_zip(repo, served, agent=principal.agent, versioned=state.versioned)
    first = next(chunks, b"")  # errors before any byte is sent become a proper error response
    sent = 0

    def body() -> Iterator[bytes]:
        nonlocal sent
        try:
            sent += len(first)
            yield first
            for chunk in chunks:
                sent += len(chunk)
                yield chunk
        finally:
            chunks.close()
            log_usage(repo, principal, collection_id=collection_id, package_id=served, path="", size=sent,
                      kind=USAGE_DOWNLOAD)

    headers = {"Content-Disposition": content_disposition(f"{served}.zip"), "Content-Security-Policy": FILE_CSP,
               "X-Preserve-Version": str(state.number)}
    return StreamingResponse(body(), media_type="application/zip", headers=headers)
