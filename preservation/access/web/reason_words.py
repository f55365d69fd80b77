"""The access service's reasons in the reader's language.

A :class:`preservation.access.reasons.Reason` (a read right's or the access policy's reason) is said
through the portal's catalog: its English template is the message, its parameters fill it, and a
parameter that is itself a reason (an access mode, a span of a title entitlement) is said the same way.
Any other text (a staff member's own words, a request decided before reasons had codes) is shown as it
is, marked ``lang="en"`` when it is the service's.
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from preservation.access.localisation import say_reason
from preservation.access.reasons import Reason
from preservation.access.web.i18n import gettext as _


def translate(reason: Reason) -> str:
    """The reason in the current language (plain text, not yet escaped)."""
    return say_reason(reason, _)


def say(value: Any, css: str = "why") -> Markup:
    """A reason as HTML for a page: translated when it has a code, else its English marked ``lang="en"``."""
    if isinstance(value, Reason):
        return Markup('<span class="{}" data-reason="{}">{}</span>').format(css, value.code, translate(value))
    return Markup('<span class="{}" lang="en">{}</span>').format(css, "" if value is None else value)
