"""The portal's message catalogs and time formatting, for whoever speaks to a library: pages and e-mails.

The web layer (``access.web.i18n``) decides a request's language and zone and formats through here;
the notifications write their mails in a library's language and zone through the same catalogs, so a
message is translated once, in ``locale/<lang>/LC_MESSAGES/portal.po``.  The wheel build compiles the
catalogs to ``.mo`` (``build_hooks.py``); a checkout without the compiled file reads the ``.po``.
"""

from __future__ import annotations

import io
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale
from babel.dates import format_datetime as _babel_datetime
from babel.dates import get_timezone_name
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

from preservation.access.reasons import TEMPLATES, Reason

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "portal"
CHINESE = "zh_Hans_CN"
ENGLISH = "en"
LANGUAGES = (CHINESE, ENGLISH)
DEFAULT_TIMEZONE = "Asia/Shanghai"


def catalog_path(language: str, suffix: str = ".po") -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}{suffix}"


@lru_cache(maxsize=None)
def translations(language: str) -> NullTranslations:
    """The language's messages: the compiled ``.mo`` when it is as new as the ``.po``, else the ``.po`` read."""
    if language == ENGLISH:
        return NullTranslations()  # the messages are written in English
    po, mo = catalog_path(language), catalog_path(language, ".mo")
    if mo.exists() and (not po.exists() or mo.stat().st_mtime >= po.stat().st_mtime):
        with mo.open("rb") as f:
            return Translations(f, domain=DOMAIN)
    with po.open("rb") as f:
        catalog = read_po(f, locale=language, domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer, domain=DOMAIN)


def say_reason(reason: Reason, gettext: Callable[..., str]) -> str:
    """A reason of the service (:class:`Reason`) in the language of ``gettext`` (``gettext(message, **values)``,
    a page's or a mail's): its English template is the message, its parameters fill it, and a parameter that is
    itself a reason (an access mode, a span of a title entitlement) is said the same way.  Plain text."""
    return gettext(TEMPLATES[reason.code], **{name: _reason_value(value, gettext)
                                               for name, value in reason.params.items()})


def _reason_value(value: Any, gettext: Callable[..., str]) -> str:
    if isinstance(value, Reason):
        return say_reason(value, gettext)
    if isinstance(value, (list, tuple)):
        # the separator of a list of spans: a Chinese enumeration comma
        return gettext(", ").join(_reason_value(v, gettext) for v in value)
    return str(value)


def valid_timezone(name: str | None) -> bool:
    """True for an IANA zone name this machine knows (``Asia/Shanghai``)."""
    if not name or len(name) > 64:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def zone_label(zone: ZoneInfo, locale: Locale) -> str:
    """The zone as readers name it: 中国时间 (Asia/Shanghai), China Time (Asia/Shanghai) …"""
    try:
        name = get_timezone_name(zone, width="long", zone_variant="generic", locale=locale)
    except (LookupError, ValueError):
        name = ""
    key = getattr(zone, "key", str(zone))
    return f"{name} ({key})" if name and name != key else key


def format_time(value: Any, language: str, zone: str) -> str:
    """A stored UTC time in ``zone`` and ``language``, with the zone named; '' for none."""
    if value is None or not hasattr(value, "astimezone"):
        return ""
    if isinstance(value, datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)  # the catalog keeps naive UTC
    tz = ZoneInfo(zone if valid_timezone(zone) else DEFAULT_TIMEZONE)
    locale = Locale.parse(language if language in LANGUAGES else ENGLISH)
    shown = _babel_datetime(value, "yyyy-MM-dd HH:mm", tzinfo=tz, locale=locale)
    return f"{shown} {zone_label(tz, locale)}"
