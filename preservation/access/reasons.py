"""The access service's reasons as codes with parameters: one registry of their English wording.

A reason the access policy or a read right gives (``the package's year 2019 is outside the entitled
years 2015-2018: staff decide``) is a :class:`Reason`: a stable code from :data:`TEMPLATES` and its
parameters.  It *is* its English sentence (a ``str``), so the CLI, the API, events and error messages
keep the words they always had; the portal reads ``code`` and ``params`` and says it in the reader's
language (``access.web.reasons``).  A parameter is a number, a date or a name as text, another Reason
(a word such as an access mode, or a span of a title entitlement), or a list of Reasons.

``TEMPLATES`` is the one place this English lives.  Its templates are marked with :func:`_` only so
that the portal's message extraction (``babel.cfg``) finds them; nothing here translates.
"""

from __future__ import annotations

from typing import Any, Mapping


def _(template: str) -> str:
    """Marks an English template for the portal's message catalog; returns it unchanged."""
    return template


TEMPLATES: dict[str, str] = {
    # read rights
    "collection-open": _("the collection is open"),
    "grant": _("grant %(grant)s"),
    "grant-scoped": _("grant %(grant)s (%(scope)s)"),
    "no-grant-package": _("no active grant covers this package (%(mode)s collection)"),
    "no-grant-item": _("no active grant covers this item (%(mode)s collection)"),
    "mode-collection": _("%(mode)s collection"),
    # the access policy
    "open-to-all": _("the collection is open to every member library"),
    "no-trigger": _("no trigger event is recorded for this collection: staff decide"),
    "trigger-opened": _("trigger event %(event)s (%(kind)s, %(date)s) opened the collection"),
    "no-entitlement": _("the library holds no entitlement to this collection: staff decide"),
    "pca-years": _("post-cancellation access to the entitled years %(years)s"),
    "pca-title-entitlements": _("post-cancellation access to title entitlements: %(spans)s"),
    "pca-years-title-entitlements": _(
        "post-cancellation access to the entitled years %(years)s; title entitlements: %(spans)s"),
    "year-unknown": _("the package's year is unknown, so no entitlement can cover it: staff decide"),
    "year-within-entitlement": _("the package's year %(year)s is within the entitled years %(years)s"),
    "year-outside-entitlement": _("the package's year %(year)s is outside the entitled years %(years)s: "
                                  "staff decide"),
    "dark": _("the collection is dark: only staff can open it"),
    "title-entitlement-item": _("title entitlement %(entitlement)s covers this item (%(date)s)"),
    "title-entitlement-covers": _("title entitlement %(entitlement)s covers %(span)s"),
    "issue-year-within-entitlement": _("the issue's year %(year)s is within the entitled years %(years)s"),
    "title-entitlement-issue": _("title entitlement %(entitlement)s covers this issue (%(date)s)"),
    "no-entitlement-issue": _("no entitlement of the library covers this issue (%(date)s): staff decide"),
    "no-entitlement-title": _("the library holds no entitlement to this title or its collection: staff decide"),
    "no-entitlement-volumes": _("no title entitlement of the library covers volume %(volumes)s: staff decide"),
    "issue-readable": _("every article of the issue is readable"),
    "issue-undated": _("an issue of no known year is requested article by article"),
    # what a title entitlement or grant covers
    "undated": _("undated"),
    "span-whole-title": _("the whole title"),
    "span-dates": _("%(first)s to %(last)s"),
    "span-now": _("now"),
    "span-volume": _("volume %(volume)s"),
    "span-volumes": _("volumes %(first)s-%(last)s"),
    "span-dates-volumes": _("%(dates)s, %(volumes)s"),
    "span-years": _("%(span)s, years %(first)s-%(last)s"),
    # words inside reasons: access modes, grant scopes, trigger kinds
    "mode-dark": _("dark"),
    "mode-trigger": _("trigger"),
    "mode-pca": _("pca"),
    "mode-open": _("open"),
    "scope-item": _("item"),
    "scope-issue": _("issue"),
    "scope-volume": _("volume"),
    "scope-title": _("title"),
    "scope-package": _("package"),
    "scope-collection": _("collection"),
    "kind-publisher_ceased": _("publisher_ceased"),
    "kind-title_discontinued": _("title_discontinued"),
    "kind-back_issues_removed": _("back_issues_removed"),
    "kind-catastrophic_failure": _("catastrophic_failure"),
}

LIST_SEPARATOR = ", "


class Reason(str):
    """A reason: its English sentence, with the ``code`` and ``params`` it was made from."""

    code: str
    params: dict[str, Any]

    def __new__(cls, code: str, **params: Any) -> "Reason":
        """Raises KeyError for a code that is not in :data:`TEMPLATES` (a programming error)."""
        text = TEMPLATES[code] % {name: english(value) for name, value in params.items()}
        reason = super().__new__(cls, text)
        reason.code = code
        reason.params = dict(params)
        return reason

    def __reduce__(self) -> Any:
        return (_rebuild, (self.code, self.params))

    def to_dict(self) -> dict[str, Any]:
        """``{"code": …, "params": {…}}``, nested reasons as such dicts: what the catalog stores."""
        return {"code": self.code, "params": {name: _plain(value) for name, value in self.params.items()}}


def _rebuild(code: str, params: dict[str, Any]) -> Reason:
    return Reason(code, **params)


def english(value: Any) -> str:
    """A parameter's English text (a list of reasons joined by commas)."""
    if isinstance(value, (list, tuple)):
        return LIST_SEPARATOR.join(english(v) for v in value)
    return str(value)


def _plain(value: Any) -> Any:
    if isinstance(value, Reason):
        return value.to_dict()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _from_plain(value: Any) -> Any:
    if isinstance(value, dict):
        return from_dict(value)
    if isinstance(value, list):
        return [_from_plain(v) for v in value]
    if value is None or isinstance(value, (str, int)) and not isinstance(value, bool):
        return value
    raise ValueError(f"a reason's parameter cannot be {type(value).__name__}")


def from_dict(data: Mapping[str, Any]) -> Reason:
    """The Reason of :meth:`Reason.to_dict`; raises ValueError when ``data`` is not one (an unknown code,
    other parameters than its template names)."""
    if not isinstance(data, Mapping) or set(data) != {"code", "params"} or not isinstance(data["params"], Mapping):
        raise ValueError("a reason is {code, params}")
    code = data["code"]
    if not isinstance(code, str) or code not in TEMPLATES:
        raise ValueError(f"unknown reason code {code!r}")
    params = {str(name): _from_plain(value) for name, value in data["params"].items()}
    try:
        return Reason(code, **params)
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"the parameters of {code} do not fit its template: {e}") from None


def restore(text: str | None, coded: Any) -> str | None:
    """A reason read back from the catalog: the Reason its stored code and parameters make when they make
    one with the same English, else the stored text as it is (rows from before codes, a staff member's own
    words)."""
    if text is None or not coded:
        return text
    try:
        reason = from_dict(coded)
    except ValueError:
        return text
    return reason if reason == text else text


def coded(value: Any) -> dict[str, Any] | None:
    """What the catalog stores beside a reason's text: its code and parameters, None for plain text."""
    return value.to_dict() if isinstance(value, Reason) else None


def word(prefix: str, value: str) -> Reason | str:
    """An access mode, grant scope or trigger kind as a Reason (``prefix`` mode, scope or kind), or the value
    itself when the registry does not know it."""
    code = f"{prefix}-{value}"
    return Reason(code) if code in TEMPLATES else value
