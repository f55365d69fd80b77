"""What each error code a portal page can show means, in one line of the reader's language.

The error page names the code and keeps the service's own details (English) below; this line says what
the code means.  Only the codes the portal's pages can raise are here (the routes' own refusals and the
access service's errors they pass on); an error page of any other code says what its HTTP status means.
"""

from __future__ import annotations

from typing import Callable

from preservation.access.web.i18n import gettext as _

# the code -> its meaning, looked up in the reader's language when a page is rendered
MEANINGS: dict[str, Callable[[], str]] = {
    "E110": lambda: _("Nothing with this name or number exists, or your library may not see it."),
    "E111": lambda: _("This exists already, so nothing was changed."),
    "E112": lambda: _("A value you sent cannot be used; nothing was changed."),
    "E113": lambda: _("A text you sent holds characters the repository cannot keep; nothing was changed."),
    "E114": lambda: _("This usage report cannot be made for these dates or this library."),
    "E115": lambda: _("This identifier (a DOI, ISSN or ISBN) is not well formed."),
    "E116": lambda: _("This short id matches more than one package: give more of it."),
    "E300": lambda: _("The storage holding this file failed: try again later."),
    "E302": lambda: _("A copy of this file is missing from its storage: staff have been told by the audit."),
    "E303": lambda: _("The storage holding this file cannot be reached right now: try again later."),
    "E502": lambda: _("No copy of this file passed its check right now: try again later."),
    "E800": lambda: _("Your library has no right to this: request access first."),
    "E801": lambda: _("The user name or password is not right, or the session has ended."),
    "E802": lambda: _("Too many attempts: wait a few minutes, then try again."),
    "E804": lambda: _("This account is disabled: ask your library's staff or the consortium."),
    "E805": lambda: _("Too many password reset requests: wait, then try again."),
    "E806": lambda: _("The e-mail could not be sent: try again later, or ask staff."),
}


def meaning(code: str) -> str | None:
    """The code's meaning in the current language, or None for a code a portal page does not show."""
    said = MEANINGS.get(code)
    return said() if said is not None else None
