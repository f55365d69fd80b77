"""Confirmations after an action: "Request 12 was sent", "Request 12 approved" … on the page the reader lands on.

An action (a POST answered with a 303) calls :func:`confirm` with one of the known keys of ``MESSAGES`` and
whole numbers only; the key and numbers wait in the signed session cookie until the next page rendered
takes them (:func:`take`), in that page's language.  No text a client sent is ever shown back: an unknown
key or a value that is not a whole number is dropped, so even a forged session could only pick one of these
sentences.
"""

from __future__ import annotations

from typing import Any, Callable

from fastapi import Request

from preservation.access.web.i18n import gettext

SESSION_KEY = "flash"

# each message is looked up when the page is rendered, in the reader's language, then filled with its numbers
MESSAGES: dict[str, Callable[[], str]] = {
    "requested": lambda: gettext("Your request %(id)s was sent. Staff will decide; its state is below."),
    "requested_granted": lambda: gettext(
        "Your request %(id)s was granted at once by the access policy: you can open it now."),
    "approved": lambda: gettext("Request %(id)s approved: the library can now open what it asked for."),
    "denied": lambda: gettext("Request %(id)s denied: the library sees your reason."),
    "revoked": lambda: gettext("Grant %(id)s revoked: the library can no longer open it."),
    "trigger_opened": lambda: gettext(
        "Trigger event %(id)s recorded: the collection is now open to every member library "
        "(%(approved)s waiting requests approved)."),
    "trigger_recorded": lambda: gettext(
        "Trigger event %(id)s recorded. The collection is not one a trigger event opens, so nothing was opened."),
    "logged_out": lambda: gettext("You are logged out."),
}


def confirm(request: Request, key: str, **numbers: int) -> None:
    """Keep the confirmation ``key`` (with its whole-number values) for the next page this reader sees."""
    if key not in MESSAGES:
        raise ValueError(f"unknown confirmation {key!r}")  # a programming error, never the client's input
    request.session[SESSION_KEY] = [key, {name: int(value) for name, value in numbers.items()}]


def confirm_request(request: Request, created: dict[str, Any]) -> None:
    """The confirmation of a request just made: sent to staff, or granted at once by the access policy."""
    confirm(request, "requested_granted" if created.get("state") == "approved" else "requested", id=created["id"])


def take(request: Request) -> str | None:
    """The waiting confirmation in the page's language, removed from the session; None when there is none."""
    if SESSION_KEY not in request.session:
        return None
    waiting: Any = request.session.pop(SESSION_KEY)
    if not (isinstance(waiting, list) and len(waiting) == 2 and waiting[0] in MESSAGES
            and isinstance(waiting[1], dict)):
        return None
    key, values = waiting
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values.values()):
        return None
    try:
        return MESSAGES[key]() % values
    except (KeyError, TypeError, ValueError):  # a number missing: nothing rather than a half-filled sentence
        return None
