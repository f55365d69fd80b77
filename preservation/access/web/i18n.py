"""The portal's two languages: Simplified Chinese and English.

One place decides a request's language and holds the translations:

* the language is the ``preserve_lang`` cookie when it names one we have (the switch in the page header
  sets it), else the first of Chinese (any ``zh`` tag) or English in ``Accept-Language`` by q-value, else
  English (a client that states no language is usually a script, and scripts read English);
* messages are gettext catalogs, ``locale/<lang>/LC_MESSAGES/portal.po`` in the package. The wheel build
  compiles them to ``.mo`` (``build_hooks.py``); a checkout without the compiled file reads the ``.po``;
* dates, times and numbers are formatted by Babel for the language, and times are shown in the
  reader's time zone (``Asia/Shanghai`` unless configured) with the zone named.

The CLI's messages stay English and never pass through here.
"""

from __future__ import annotations

import contextvars
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.numbers import format_decimal

from preservation.access.localisation import (  # noqa: F401  (catalog_path, translations: devtools, tests)
    CHINESE,
    DEFAULT_TIMEZONE,
    DOMAIN,
    ENGLISH,
    LANGUAGES,
    LOCALE_DIR,
    catalog_path,
    format_time,
    translations,
    valid_timezone,
    zone_label,
)

FALLBACK = ENGLISH  # when Accept-Language names neither
LANGUAGE_NAMES = {CHINESE: "中文", ENGLISH: "English"}
HTML_LANG = {CHINESE: "zh-CN", ENGLISH: "en"}
COOKIE = "preserve_lang"

_language: contextvars.ContextVar[str] = contextvars.ContextVar("portal_language", default=FALLBACK)
_zone: contextvars.ContextVar[str] = contextvars.ContextVar("portal_timezone", default=DEFAULT_TIMEZONE)


def accepted(header: str | None) -> list[str]:
    """The language tags of an ``Accept-Language`` header, best first (q-values honoured, bad parts skipped)."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((header or "")[:1000].split(",")[:30]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        name, _, number = params.strip().partition("=")
        if name.strip() == "q":
            try:
                quality = float(number)
            except ValueError:
                continue
        if tag.strip() and 0 < quality <= 1:
            ranked.append((-quality, position, tag.strip()))
    return [tag for _, _, tag in sorted(ranked)]


def negotiate(cookie: str | None, accept_language: str | None) -> str:
    """The request's language: a valid cookie, else the best ``Accept-Language`` match, else English."""
    if cookie in LANGUAGES:
        return cookie
    for tag in accepted(accept_language):
        if tag == "*":
            break
        try:
            language = Locale.parse(tag.replace("_", "-"), sep="-").language
        except (ValueError, UnknownLocaleError):
            continue
        if language == "zh":  # Traditional Chinese readers still read Simplified better than English
            return CHINESE
        if language == "en":
            return ENGLISH
    return FALLBACK


class LanguageMiddleware:
    """Sets the language (and the default time zone) of every HTTP request before any route runs."""

    def __init__(self, app: Any, *, timezone_name: str = DEFAULT_TIMEZONE) -> None:
        self.app = app
        self.timezone_name = timezone_name

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {}
        for name, value in scope.get("headers", []):
            if name in (b"accept-language", b"cookie"):
                headers[name] = value.decode("latin-1")
        cookie = None
        for part in headers.get(b"cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE:
                cookie = value
        with use(negotiate(cookie, headers.get(b"accept-language")), self.timezone_name):
            await self.app(scope, receive, send)


class use:
    """``with use(language, zone):`` — the language and time zone of the request being answered."""

    def __init__(self, language: str, zone: str | None = None) -> None:
        self.language = language if language in LANGUAGES else FALLBACK
        self.zone = zone if zone and valid_timezone(zone) else DEFAULT_TIMEZONE

    def __enter__(self) -> "use":
        self._tokens = (_language.set(self.language), _zone.set(self.zone))
        return self

    def __exit__(self, *exc: Any) -> None:
        _language.reset(self._tokens[0])
        _zone.reset(self._tokens[1])


def current_language() -> str:
    return _language.get()


def current_timezone() -> str:
    return _zone.get()


def gettext(message: str, **variables: Any) -> str:
    """``message`` in the current language, then ``%(name)s`` placeholders filled from ``variables``."""
    text = translations(_language.get()).ugettext(message)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, n: int, **variables: Any) -> str:
    text = translations(_language.get()).ungettext(singular, plural, n)
    return text % dict(variables, num=n)


def format_when(value: Any, zone: str | None = None) -> str:
    """A stored UTC time in ``zone`` (default: the reader's) and the reader's language, zone named; '' for none."""
    return format_time(value, _language.get(), zone or _zone.get())


def current_zone_label(zone: str | None = None) -> str:
    """A time zone (default: the reader's) as pages name it, in the reader's language: 中国时间 (Asia/Shanghai)."""
    return zone_label(ZoneInfo(zone or _zone.get()), Locale.parse(_language.get()))


def format_number(value: Any) -> str:
    if value is None:
        return ""
    return format_decimal(value, locale=Locale.parse(_language.get()))
