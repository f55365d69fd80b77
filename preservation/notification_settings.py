"""The ``notifications:`` section of ``preserve.yaml``: e-mail to staff and libraries, password reset links.

``email`` is an SMTP channel exactly as ``alerts.email`` is (host, port, security, credentials,
sender); its ``recipients`` are the staff addresses told of each new access request.  Without it no
notification is sent and password reset by e-mail is not offered.  ``portal_url`` is the portal's
address as readers reach it, the only base of the links in mails (never a request's Host header).
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from preservation.monitoring_settings import EmailChannel

_CONTROL = re.compile(r"[\x00-\x20\x7f]")


class NotificationSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    email: EmailChannel | None = None
    portal_url: str | None = Field(default=None, max_length=500,
                                   description="https://… where readers reach the portal; links in mails start here")
    grant_expiry_days: int = Field(default=7, ge=1, le=365,
                                   description="a library is told this many days before a grant of it expires")
    reset_minutes: int = Field(default=30, ge=5, le=24 * 60, description="a password reset link works this long")
    resets_per_hour: int = Field(default=3, ge=1, le=100,
                                 description="reset links mailed to one user in an hour, at most")
    reset_requests_per_hour: int = Field(default=20, ge=1, le=10_000,
                                         description="reset requests accepted from one address in an hour")
    staff_language: Literal["zh", "en"] = Field(default="zh", description="the language of the mails to staff")
    max_attempts: int = Field(default=8, ge=1, le=100,
                              description="a mail the server keeps refusing is given up after this many tries")

    @field_validator("portal_url")
    @classmethod
    def _portal_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if _CONTROL.search(value) or parts.scheme not in ("http", "https") or not parts.hostname \
                or parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError("must be an http:// or https:// address such as https://access.example.org")
        return value.rstrip("/")

    @property
    def enabled(self) -> bool:
        return self.email is not None
