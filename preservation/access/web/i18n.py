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
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from babel.dates import format_datetime as _babel_datetime
from babel.dates import get_timezone_name
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations

LOCALE_DIR = Path(__file__).resolve().parents[1] / "locale"
DOMAIN = "portal"
CHINESE = "zh_Hans_CN"
ENGLISH = "en"
LANGUAGES = (CHINESE, ENGLISH)
FALLBACK = ENGLISH  # when Accept-Language names neither
LANGUAGE_NAMES = {CHINESE: "中文", ENGLISH: "English"}
HTML_LANG = {CHINESE: "zh-CN", ENGLISH: "en"}
COOKIE = "preserve_lang"
DEFAULT_TIMEZONE = "Asia/Shanghai"

_language: contextvars.ContextVar[str] = contextvars.ContextVar("portal_language", default=FALLBACK)
_zone: contextvars.ContextVar[str] = contextvars.ContextVar("portal_timezone", default=DEFAULT_TIMEZONE)


def catalog_path(language: str, suffix: str = ".po") -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}{suffix}"


@lru_cache(maxsize=None)
def translations(language: str) -> NullTranslations:
    """The language's messages: the compiled ``.mo`` when it is as new as the ``.po``, else the ``.po`` read."""
    if language == ENGLISH:
        return NullTranslations()  # the templates are written in English
    po, mo = catalog_path(language), catalog_path(language, ".mo")
    if mo.exists() and (not po.exists() or mo.stat().st_mtime >= po.stat().st_mtime):
        with mo.open("rb") as f:
            return Translations(f, domain=DOMAIN)
    import io

    with po.open("rb") as f:
        catalog = read_po(f, locale=language, domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer, domain=DOMAIN)


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


def valid_timezone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


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


def format_when(value: Any) -> str:
    """A stored UTC time in the reader's zone and language, with the zone named; '' for none."""
    if value is None or not hasattr(value, "astimezone"):
        return ""
    if isinstance(value, datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)  # the catalog keeps naive UTC
    zone = ZoneInfo(_zone.get())
    locale = Locale.parse(_language.get())
    shown = _babel_datetime(value, "yyyy-MM-dd HH:mm", tzinfo=zone, locale=locale)
    return f"{shown} {zone_label(zone, locale)}"


def zone_label(zone: ZoneInfo, locale: Locale) -> str:
    """The zone as readers name it: 中国时间 (Asia/Shanghai), China Time (Asia/Shanghai) …"""
    try:
        name = get_timezone_name(zone, width="long", zone_variant="generic", locale=locale)
    except (LookupError, ValueError):
        name = ""
    key = getattr(zone, "key", str(zone))
    return f"{name} ({key})" if name and name != key else key


def current_zone_label() -> str:
    """The reader's time zone as pages name it: 中国时间 (Asia/Shanghai)."""
    return zone_label(ZoneInfo(_zone.get()), Locale.parse(_language.get()))


def format_number(value: Any) -> str:
    if value is None:
        return ""
    return format_decimal(value, locale=Locale.parse(_language.get()))
