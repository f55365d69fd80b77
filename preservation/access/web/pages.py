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
from preservation.access.web.auth import csrf_token
from preservation.units import human_bytes

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
STATIC = Path(__file__).resolve().parents[1] / "static"


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None and hasattr(value, "strftime") else ""


_env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                          undefined=jinja2.StrictUndefined)
_env.filters["size"] = human_bytes
_env.filters["when"] = _when
_env.filters["urlpath"] = lambda path: quote(path, safe="/")
templates = Jinja2Templates(env=_env)


def render(request: Request, name: str, principal: Principal | None, *, status: int = 200,
           **context: Any) -> HTMLResponse:
    context.update(principal=principal, csrf=csrf_token(request), message=context.get("message"),
                   error=context.get("error"))
    return templates.TemplateResponse(request, name, context, status_code=status)
