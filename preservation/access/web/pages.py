"""Rendering portal pages: one Jinja2 environment (autoescaping on), shared page context."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from preservation.access.accounts import Principal
from preservation.access.web import flash, i18n, reason_words
from preservation.access.web.auth import csrf_token, reader_zone
from preservation.units import human_bytes

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
STATIC = Path(__file__).resolve().parents[1] / "static"


_env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                          undefined=jinja2.StrictUndefined, extensions=["jinja2.ext.i18n"])
# newstyle: {{ _("… %(name)s …", name=value) }} — the value is escaped, the translation looked up per request
_env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
_env.filters["size"] = human_bytes
_env.filters["when"] = i18n.format_when
_env.filters["number"] = i18n.format_number
_env.filters["urlpath"] = lambda path: quote(path, safe="/")
_env.globals["reason"] = reason_words.say  # the service's reasons in the reader's language
templates = Jinja2Templates(env=_env)


def render(request: Request, name: str, principal: Principal | None, *, status: int = 200,
           **context: Any) -> HTMLResponse:
    """A page in the reader's language, its times in the reader's zone (a library's own, or the setting)."""
    with i18n.use(i18n.current_language(), reader_zone(principal) or i18n.current_timezone()):
        return _render(request, name, principal, status=status, **context)


def _render(request: Request, name: str, principal: Principal | None, *, status: int,
            **context: Any) -> HTMLResponse:
    language = i18n.current_language()
    context.update(principal=principal, csrf=csrf_token(request),
                   message=context.get("message") or flash.take(request),
                   error=context.get("error"), html_lang=i18n.HTML_LANG[language], language=language,
                   languages=i18n.LANGUAGE_NAMES, here=request.url.path, zone=i18n.current_zone_label())
    return templates.TemplateResponse(request, name, context, status_code=status)
