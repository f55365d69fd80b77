"""Parsing of ``s3://BUCKET/PREFIX?option=value…`` node URIs.

Options: ``endpoint`` (http(s) URL of an S3-compatible service; AWS when
absent), ``region``, ``profile`` (a named profile of the AWS config files),
``addressing`` (``path`` or ``virtual``), ``retention`` (``COMPLIANCE`` or
``GOVERNANCE``) with ``retention_days``, ``create_bucket`` (``1``/``0``).

Credentials are never accepted in a URI: URIs end up in catalogs, logs and
error messages.  A URI carrying a user name, a password or an option that
looks like a key is refused, and the refusal message shows the URI with
those parts blanked out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from preservation.errors import InvalidKey, UnsupportedURI

from .base import check_key

RETENTION_MODES = ("COMPLIANCE", "GOVERNANCE")
ADDRESSING_STYLES = ("path", "virtual")
OPTIONS = ("endpoint", "region", "profile", "addressing", "retention", "retention_days", "create_bucket")
MAX_RETENTION_DAYS = 36500

_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_CREDENTIAL_HINT = (
    "credentials never go in the URI: use the AWS credential chain "
    "(environment, config files, instance role) or ?profile=NAME"
)


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str
    endpoint: str | None = None
    region: str | None = None
    profile: str | None = None
    addressing: str = "virtual"
    retention_mode: str | None = None
    retention_days: int | None = None
    create_bucket: bool = False

    @property
    def root(self) -> str:
        """What every object name starts with: ``PREFIX/`` or nothing."""
        return f"{self.prefix}/" if self.prefix else ""

    def describe(self) -> str:
        """``s3://bucket/prefix at endpoint``, for messages (carries no secrets)."""
        where = f"s3://{self.bucket}/{self.prefix}"
        return f"{where} at {self.endpoint}" if self.endpoint else where


def redact(uri: str) -> str:
    """``uri`` with any user info and the values of unknown options blanked out."""
    parts = urlsplit(uri)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rpartition("@")[2]
    query = "&".join(_redact_option(name, value) for name, value in parse_qsl(parts.query, keep_blank_values=True))
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def _redact_option(name: str, value: str) -> str:
    if name == "endpoint":
        return f"endpoint={redact(value)}"
    return f"{name}={value if name in OPTIONS else '***'}"


def parse_s3_uri(uri: str) -> S3Location:
    """Parse an ``s3://`` node URI; raises UnsupportedURI saying what is wrong."""
    shown = redact(uri)
    parts = urlsplit(uri)
    if parts.scheme != "s3":
        raise UnsupportedURI("an S3 node URI starts with s3://", uri=shown)
    if "@" in parts.netloc:
        raise UnsupportedURI(f"the URI carries a user name or password; {_CREDENTIAL_HINT}", uri=shown)
    bucket = parts.netloc
    if ":" in bucket:
        raise UnsupportedURI("put the service address in ?endpoint=URL, not after the bucket name", uri=shown)
    if not _BUCKET_NAME.fullmatch(bucket) or ".." in bucket:
        raise UnsupportedURI(f"{bucket!r} is not a valid bucket name (3-63 characters: a-z, 0-9, '.', '-')", uri=shown)
    if parts.fragment:
        raise UnsupportedURI("a fragment (#…) has no meaning here", uri=shown)

    prefix = unquote(parts.path).strip("/")
    if prefix:
        try:
            check_key(prefix)
        except InvalidKey as e:
            raise UnsupportedURI(f"bad prefix: {e}", uri=shown) from e

    options: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name not in OPTIONS:
            raise UnsupportedURI(
                f"unknown option {name!r} (known: {', '.join(OPTIONS)}); {_CREDENTIAL_HINT}", uri=shown
            )
        if name in options:
            raise UnsupportedURI(f"option {name!r} is given twice", uri=shown)
        options[name] = value

    endpoint = options.get("endpoint") or None
    if endpoint is not None:
        ep = urlsplit(endpoint)
        if ep.scheme not in ("http", "https") or not ep.hostname:
            raise UnsupportedURI("endpoint must be an http:// or https:// URL", uri=shown)
        if "@" in ep.netloc:
            raise UnsupportedURI(f"the endpoint carries a user name or password; {_CREDENTIAL_HINT}", uri=shown)
        if ep.query or ep.fragment:
            raise UnsupportedURI("the endpoint URL must not carry a query or fragment", uri=shown)
        endpoint = endpoint.rstrip("/")

    addressing = options.get("addressing") or ("path" if endpoint else "virtual")
    if addressing not in ADDRESSING_STYLES:
        raise UnsupportedURI(f"addressing must be one of {', '.join(ADDRESSING_STYLES)}", uri=shown)

    mode = options.get("retention") or None
    days_text = options.get("retention_days") or None
    days: int | None = None
    if mode is not None:
        mode = mode.upper()
        if mode not in RETENTION_MODES:
            raise UnsupportedURI(f"retention must be one of {', '.join(RETENTION_MODES)}", uri=shown)
        if days_text is None:
            raise UnsupportedURI("retention needs retention_days=N (how long each object is locked)", uri=shown)
    if days_text is not None:
        if mode is None:
            raise UnsupportedURI("retention_days needs retention=COMPLIANCE or retention=GOVERNANCE", uri=shown)
        if not days_text.isdigit() or not 1 <= int(days_text) <= MAX_RETENTION_DAYS:
            raise UnsupportedURI(f"retention_days must be a whole number from 1 to {MAX_RETENTION_DAYS}", uri=shown)
        days = int(days_text)

    create = options.get("create_bucket", "0").lower()
    if create not in _TRUE + _FALSE:
        raise UnsupportedURI("create_bucket must be 1 or 0", uri=shown)

    return S3Location(
        bucket=bucket,
        prefix=prefix,
        endpoint=endpoint,
        region=options.get("region") or None,
        profile=options.get("profile") or None,
        addressing=addressing,
        retention_mode=mode,
        retention_days=days,
        create_bucket=create in _TRUE,
    )
