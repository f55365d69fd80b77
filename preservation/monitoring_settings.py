"""The ``monitoring:`` and ``alerts:`` sections of ``preserve.yaml``.

Parsed strictly (no unknown keys, numbers are numbers within their ranges,
addresses are single plain addresses); secrets (the SMTP password, the
webhook URL, which often carries a token, and webhook headers) are
``SecretStr`` so that they never appear in a repr, a log line or an error.
"""

from __future__ import annotations

import ipaddress
import re
from email.utils import parseaddr
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

# Every kind of alert (preservation.alerts raises them; docs/operations.md lists them).
ALERT_COPY_DAMAGED = "copy_damaged"  # a copy is corrupt or missing
ALERT_PACKAGE_AT_RISK = "package_at_risk"  # a package is degraded or damaged
ALERT_DEAD_JOB = "dead_job"
ALERT_AUDIT_COVERAGE = "audit_coverage"  # a node's share of copies audited within the interval is below the minimum
ALERT_NODE_UNREACHABLE = "node_unreachable"
ALERT_PROCESS_SILENT = "process_silent"  # a worker or scheduler stopped writing heartbeats without stopping
ALERT_KINDS = (ALERT_COPY_DAMAGED, ALERT_PACKAGE_AT_RISK, ALERT_DEAD_JOB, ALERT_AUDIT_COVERAGE,
               ALERT_NODE_UNREACHABLE, ALERT_PROCESS_SILENT)
AlertKind = Literal["copy_damaged", "package_at_risk", "dead_job", "audit_coverage", "node_unreachable",
                    "process_silent"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HOST = re.compile(r"^[A-Za-z0-9.\-]{1,253}$|^\[[0-9A-Fa-f:.]+\]$")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class MonitoringSettings(_Strict):
    heartbeat_seconds: float = Field(default=15.0, ge=1, le=3600,
                                     description="how often workers and the scheduler write their heartbeat")
    silent_after_seconds: float = Field(default=120.0, ge=2, le=86_400,
                                        description="a process not heard from for this long has gone silent")
    probe_timeout_seconds: float = Field(default=30.0, gt=0, le=600,
                                         description="a node probe that takes longer counts as unreachable")
    node_unreachable_alert_seconds: float = Field(
        default=900.0, ge=0, le=30 * 86_400,
        description="a node unreachable for this long raises an alert and is shown as unreachable")
    audit_coverage_min: float = Field(default=0.9, ge=0, le=1,
                                      description="alert when a node's copies audited within the interval fall below")
    forget_stopped_after_days: float = Field(default=7.0, gt=0, le=3650,
                                             description="heartbeat rows of stopped or silent processes kept this long")
    metrics_allow: list[str] = Field(default_factory=lambda: ["127.0.0.0/8", "::1/128"], max_length=100,
                                     description="networks whose clients may read `preserve serve`'s /metrics")

    @field_validator("metrics_allow")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for network in value:
            try:
                ipaddress.ip_network(network, strict=True)
            except ValueError as e:
                raise ValueError(f"{network!r} is not a network such as 10.0.0.0/8 ({e})") from None
        return value

    def metrics_allowed(self, host: str | None) -> bool:
        """Whether a client at ``host`` may read the catalog's metrics."""
        try:
            address = ipaddress.ip_address(host or "")
        except ValueError:
            return False
        return any(address in ipaddress.ip_network(n) for n in self.metrics_allow)

    @field_validator("silent_after_seconds")
    @classmethod
    def _silence_after_beats(cls, value: float, info) -> float:
        beat = info.data.get("heartbeat_seconds", 15.0)
        if value < 2 * beat:
            raise ValueError("must be at least twice heartbeat_seconds (one late heartbeat is not silence)")
        return value


def plain_address(value: str) -> str:
    """``value`` when it is one plain address such as ops@example.org; raises ValueError otherwise."""
    if _CONTROL.search(value):
        raise ValueError("an e-mail address cannot hold control characters")
    name, address = parseaddr(value)
    local, at, domain = address.rpartition("@")
    if name or address != value.strip() or not at or not local or not domain or " " in address or "," in value:
        raise ValueError("must be one plain address such as ops@example.org")
    return address


class EmailChannel(_Strict):
    host: str
    port: int = Field(default=25, ge=1, le=65_535)
    security: Literal["none", "starttls", "tls"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    sender: str
    recipients: list[str] = Field(min_length=1, max_length=100)
    timeout_seconds: float = Field(default=30.0, gt=0, le=600)

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        if not _HOST.match(value):
            raise ValueError("must be a host name or an IP address")
        return value

    @field_validator("username")
    @classmethod
    def _username(cls, value: str | None) -> str | None:
        if value is not None and (not value or _CONTROL.search(value)):
            raise ValueError("must be a non-empty name without control characters")
        return value

    @field_validator("sender")
    @classmethod
    def _sender(cls, value: str) -> str:
        return plain_address(value)

    @field_validator("recipients")
    @classmethod
    def _recipients(cls, value: list[str]) -> list[str]:
        return [plain_address(v) for v in value]


class WebhookChannel(_Strict):
    url: SecretStr = Field(description="http(s) URL the alerts are POSTed to as JSON; secret: it often holds a token")
    headers: dict[str, SecretStr] = Field(default_factory=dict, max_length=20)
    timeout_seconds: float = Field(default=10.0, gt=0, le=600)

    @field_validator("url")
    @classmethod
    def _url(cls, value: SecretStr) -> SecretStr:
        text = value.get_secret_value()
        parts = urlsplit(text)
        # the message never repeats the URL: it may carry a token
        if _CONTROL.search(text) or parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        return value

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for name, secret in value.items():
            if not _HEADER_NAME.match(name) or _CONTROL.search(secret.get_secret_value()):
                raise ValueError("header names must be tokens and values must not hold control characters")
        return value

    @property
    def display(self) -> str:
        """Where alerts go, without the path or query that may carry a token."""
        parts = urlsplit(self.url.get_secret_value())
        return f"{parts.scheme}://{parts.hostname}{':' + str(parts.port) if parts.port else ''}/…"


class DigestSettings(_Strict):
    enabled: bool = False
    hour: int = Field(default=7, ge=0, le=23, description="UTC hour after which the day's digest is sent")


class AlertSettings(_Strict):
    email: EmailChannel | None = None
    webhook: WebhookChannel | None = None
    kinds: list[AlertKind] = Field(default_factory=lambda: list(ALERT_KINDS))
    immediate: bool = Field(default=True, description="send each new alert at the tick that finds it")
    repeat_after_hours: float = Field(default=24.0, gt=0, le=24 * 365,
                                      description="an alert still open is sent again after this long, not before")
    max_per_hour: int = Field(default=30, ge=1, le=10_000, description="messages per channel per hour, at most")
    digest: DigestSettings = Field(default_factory=DigestSettings)

    @property
    def channels(self) -> list[str]:
        return [name for name in ("email", "webhook") if getattr(self, name) is not None]
