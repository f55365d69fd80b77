"""E-mail notifications of the access service: who is told what, in which language, sent exactly once.

* **Staff** (``notifications.email.recipients``) are told of each new request that waits for them.
* **A library** (its ``contact_email``) is told of each decision on its requests and, once,
  ``notifications.grant_expiry_days`` before a grant of it expires; in the library's language (Chinese
  unless set to English) with times in its zone.
* **A user** is told when failed logins lock the account, and receives password reset links.

News is found by :func:`scan` (the scheduler runs :func:`tick` each minute) and queued as a row of
``notifications`` whose ``key`` (``request:17:new``, ``grant:4:expiring``, ``lockout:3:…``) is unique,
so nothing is queued twice, also after a restart; :func:`deliver_due` claims each row before it sends,
so two processes never send the same one, and retries with back-off what a server refused.  A reset
link is never queued: the catalog keeps only its hash, so it is sent at once (:func:`send_reset_link`).

Every text from outside (reasons, names, titles) goes into the plain-text body with its control
characters made visible, and into a subject only through :func:`preservation.mail.header_text` (one
line, cut): no header can be injected.
"""

from __future__ import annotations

import logging
import smtplib
from datetime import datetime, timedelta
from typing import Any, Callable

from sqlalchemy import delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from preservation import mail
from preservation.access import requests as access_requests
from preservation.access.localisation import CHINESE, ENGLISH, format_time, say_reason, translations
from preservation.access.password_reset import ResetLink
from preservation.access.reasons import Reason
from preservation.catalog.access_models import (
    REQUEST_PENDING,
    AccessGrant,
    AccessRequest,
    AccessUser,
    Library,
    Notification,
)
from preservation.catalog.library_models import Title
from preservation.catalog.models import Package, utcnow
from preservation.repository import Repository
from preservation.text import for_log

log = logging.getLogger("preserve.notifications")

KIND_NEW_REQUEST = "new_request"
KIND_DECISION = "decision"
KIND_GRANT_EXPIRING = "grant_expiring"
KIND_LOCKOUT = "lockout"
LOOKBACK = timedelta(days=2)  # news older than this when first seen (notifications just configured) is not sent
CLAIM = timedelta(minutes=5)  # a claimed row is left alone this long by other senders
BATCH = 50
_NOTIFICATIONS = Notification.__table__
Translate = Callable[..., str]


def _translator(language: str | None) -> Translate:
    messages = translations(language if language in (CHINESE, ENGLISH) else CHINESE)

    def translate(message: str, **variables: Any) -> str:
        text = messages.ugettext(message)
        return text % variables if variables else text

    return translate


def _when(value: datetime | None, language: str | None, zone: str) -> str:
    return format_time(value, language or CHINESE, zone)


def queue(session: Session, key: str, kind: str, recipient: str, subject: str, body: str) -> bool:
    """Queue one mail in the caller's transaction; False when news with this key was queued before."""
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    now = utcnow()
    # RETURNING says whether the row went in; rowcount after ON CONFLICT DO NOTHING did not, on one catalog
    inserted = session.execute(insert(_NOTIFICATIONS).values(
        key=key[:200], kind=kind, recipient=recipient, subject=mail.header_text(subject), body=body,
        created_at=now, next_attempt_at=now, attempts=0).on_conflict_do_nothing().returning(_NOTIFICATIONS.c.id))
    return inserted.scalar_one_or_none() is not None


# --- what the mails say ---------------------------------------------------------------------------------


def _asked(request: dict[str, Any]) -> str:
    """What a request or grant names, as librarians do: the collection, then its package, title or article."""
    part = request.get("item_title") or request.get("title") or request.get("package_name")
    return f"{request['collection_title']} — {part}" if part else request["collection_title"]


def _link(repo: Repository, path: str) -> str:
    base = repo.settings.notifications.portal_url
    return f"{base}{path}" if base else path


def _new_request_mail(repo: Repository, request: dict[str, Any]) -> tuple[str, str]:
    settings = repo.settings
    language = CHINESE if settings.notifications.staff_language == "zh" else ENGLISH
    _ = _translator(language)
    what = _asked(request)
    subject = _("New access request from %(library)s: %(what)s", library=request["library_name"], what=what)
    body = "\n".join([
        _("%(library)s asks for access.", library=request["library_name"]), "",
        _("Asked for: %(what)s", what=what),
        _("Asked by: %(user)s", user=request["user"]),
        _("Asked at: %(when)s", when=_when(request["created_at"], language, settings.access_timezone)),
        _("Reason given:"), request["reason"], "",
        _("Decide on the pending requests page: %(link)s", link=_link(repo, "/staff/requests")),
    ])
    return subject, body


def _decision_mail(repo: Repository, request: dict[str, Any], library: Library) -> tuple[str, str]:
    language, zone = library.language or CHINESE, library.timezone or repo.settings.access_timezone
    _ = _translator(language)
    what = _asked(request)
    approved = request["state"] != "denied"
    subject = (_("Access approved: %(what)s", what=what) if approved
               else _("Access request declined: %(what)s", what=what))
    lines = [_("Your access request of %(when)s has been approved.",
               when=_when(request["created_at"], language, zone)) if approved else
             _("Your access request of %(when)s has been declined.",
               when=_when(request["created_at"], language, zone)), "",
             _("Asked for: %(what)s", what=what), _("Asked by: %(user)s", user=request["user"])]
    why = request.get("why")
    if why and request.get("automatic"):  # the service's words: said in the library's language, as pages say them
        lines.append(_("Decided by the access policy") + _(": ") + (say_reason(why, _) if isinstance(why, Reason)
                                                                     else why))
    elif why:  # a staff member's own words, quoted as typed
        lines += [_("Reason given for the decision:"), why]
    ends = [g["expires_at"] for g in request.get("grants", [])]
    if approved and ends:
        lines.append(_("Access ends: %(when)s", when=_when(max(ends), language, zone)))
    lines += ["", _("Your requests and grants: %(link)s", link=_link(repo, "/portal/requests"))]
    return subject, "\n".join(lines)


def _expiry_mail(repo: Repository, grant: dict[str, Any], library: Library) -> tuple[str, str]:
    language, zone = library.language or CHINESE, library.timezone or repo.settings.access_timezone
    _ = _translator(language)
    what = _asked(grant)
    ends = _when(grant["expires_at"], language, zone)
    subject = _("Access ends soon: %(what)s", what=what)
    body = "\n".join([
        _("Your library's access to %(what)s ends at %(when)s.", what=what, when=ends), "",
        _("To keep reading after that, ask again on the portal: %(link)s", link=_link(repo, "/portal/requests")),
    ])
    return subject, body


def _lockout_mail(repo: Repository, username: str, until: datetime, library: Library) -> tuple[str, str]:
    language, zone = library.language or CHINESE, library.timezone or repo.settings.access_timezone
    _ = _translator(language)
    when = _when(until, language, zone)
    subject = _("Your account %(user)s is locked until %(when)s", user=username, when=when)
    body = "\n".join([
        _("There were too many failed logins to your account %(user)s, so it is locked until %(when)s.",
          user=username, when=when), "",
        _("If this was not you, someone may be guessing your password: tell your library's administrator."),
        _("If you forgot your password, ask for a reset link on the login page: %(link)s",
          link=_link(repo, "/login/forgot")),
    ])
    return subject, body


def _reset_mail(repo: Repository, link: ResetLink, language: str | None) -> tuple[str, str]:
    zone = repo.settings.access_timezone
    _ = _translator(language)
    subject = _("Reset your password")
    body = "\n".join([
        _("Someone, probably you, asked to reset the password of %(user)s.", user=link.username), "",
        _("Open this link to choose a new password. It works once, until %(when)s:",
          when=_when(link.expires_at, language, zone)),
        link.url(repo.settings.notifications.portal_url), "",
        _("If you did not ask for this, ignore this mail: your password stays as it is."),
    ])
    return subject, body


# --- finding news ---------------------------------------------------------------------------------------


def _queue_requests(repo: Repository, now: datetime) -> int:
    settings = repo.settings.notifications
    queued = 0
    with repo.catalog.session() as s:
        new = s.scalars(select(AccessRequest.id).where(AccessRequest.state == REQUEST_PENDING,
                                                       AccessRequest.created_at > now - LOOKBACK)).all()
        decided = s.execute(select(AccessRequest.id, AccessRequest.library_id).where(
            AccessRequest.decided_at.is_not(None), AccessRequest.decided_at > now - LOOKBACK)).all()
        known = set(s.scalars(select(Notification.key).where(Notification.created_at > now - 2 * LOOKBACK)))
    for request_id in new:
        key = f"request:{request_id}:new"
        if key in known:
            continue
        request = access_requests.get_request(repo, request_id)
        subject, body = _new_request_mail(repo, request)
        with repo.catalog.session() as s:
            for recipient in settings.email.recipients:
                queued += queue(s, f"{key}:{recipient}", KIND_NEW_REQUEST, recipient, subject, body)
            queue(s, key, KIND_NEW_REQUEST, "", "", "")  # the marker that the news was handled
    for request_id, library_id in decided:
        key = f"request:{request_id}:decided"
        if key in known:
            continue
        request = access_requests.get_request(repo, request_id)
        with repo.catalog.session() as s:
            library = s.get(Library, library_id)
            if library.contact_email:
                subject, body = _decision_mail(repo, request, library)
                queued += queue(s, key, KIND_DECISION, library.contact_email, subject, body)
            else:
                queue(s, key, KIND_DECISION, "", "", "")
    return queued


def _grant_names(session: Session, grant: AccessGrant) -> dict[str, Any]:
    package = session.get(Package, grant.package_id) if grant.package_id else None
    title = session.get(Title, grant.title_id) if grant.title_id is not None else None
    return {"collection_title": grant.collection.title, "package_name": package.name if package else None,
            "title": title.title if title else None, "expires_at": grant.expires_at}


def _queue_expiring(repo: Repository, now: datetime) -> int:
    ahead = timedelta(days=repo.settings.notifications.grant_expiry_days)
    queued = 0
    with repo.catalog.session() as s:
        grants = s.scalars(select(AccessGrant).where(AccessGrant.revoked_at.is_(None), AccessGrant.expires_at > now,
                                                     AccessGrant.expires_at <= now + ahead)).all()
        for grant in grants:
            key = f"grant:{grant.id}:expiring"
            library = grant.library
            if not library.contact_email:
                queue(s, key, KIND_GRANT_EXPIRING, "", "", "")  # no one to tell: marked as handled
                continue
            subject, body = _expiry_mail(repo, _grant_names(s, grant), library)
            queued += queue(s, key, KIND_GRANT_EXPIRING, library.contact_email, subject, body)
    return queued


def scan(repo: Repository, now: datetime | None = None) -> int:
    """Queue the news not told yet: new requests, decisions, grants about to expire; returns how many mails."""
    if not repo.settings.notifications.enabled:
        return 0
    now = now or utcnow()
    return _queue_requests(repo, now) + _queue_expiring(repo, now)


def account_locked(repo: Repository, username: str, until: datetime) -> bool:
    """Queue the lockout notice of ``username`` (once per lock); False when there is no one to tell."""
    if not repo.settings.notifications.enabled:
        return False
    with repo.catalog.session() as s:
        user = s.execute(select(AccessUser).where(AccessUser.username == username)).scalar_one_or_none()
        if user is None or not user.email:
            return False
        subject, body = _lockout_mail(repo, user.username, until, user.library)
        return queue(s, f"lockout:{user.id}:{until:%Y%m%dT%H%M%S}", KIND_LOCKOUT, user.email, subject, body)


# --- sending --------------------------------------------------------------------------------------------


def _claim(session: Session, row_id: int, now: datetime) -> bool:
    claimed = session.execute(update(_NOTIFICATIONS).where(
        _NOTIFICATIONS.c.id == row_id, _NOTIFICATIONS.c.sent_at.is_(None), _NOTIFICATIONS.c.next_attempt_at <= now)
        .values(next_attempt_at=now + CLAIM, attempts=_NOTIFICATIONS.c.attempts + 1))
    return claimed.rowcount == 1


def deliver_due(repo: Repository, *, limit: int = BATCH) -> dict[str, int]:
    """Send the queued mails that are due; returns how many were sent and how many failed (to be retried)."""
    settings = repo.settings.notifications
    if not settings.enabled:
        return {"sent": 0, "failed": 0}
    now = utcnow()
    with repo.catalog.session() as s:
        due = s.execute(select(Notification.id, Notification.recipient, Notification.subject, Notification.body)
                        .where(Notification.sent_at.is_(None), Notification.next_attempt_at <= now,
                               Notification.attempts < settings.max_attempts, Notification.recipient != "")
                        .order_by(Notification.id).limit(limit)).all()
    sent = failed = 0
    for row_id, recipient, subject, body in due:
        with repo.catalog.session() as s:
            if not _claim(s, row_id, now):
                continue  # another process has it
        try:
            mail.send(settings.email, [recipient], subject, body)
        except (OSError, ValueError, smtplib.SMTPException) as e:
            failed += 1
            with repo.catalog.session() as s:
                attempts = s.get(Notification, row_id).attempts
                s.execute(update(_NOTIFICATIONS).where(_NOTIFICATIONS.c.id == row_id).values(
                    last_error=for_log(f"{type(e).__name__}: {e}")[:300],
                    next_attempt_at=utcnow() + timedelta(minutes=2 ** min(attempts, 10))))
            log.warning("notification %s to %s not sent: %s", row_id, recipient, type(e).__name__)
            continue
        sent += 1
        with repo.catalog.session() as s:
            s.execute(update(_NOTIFICATIONS).where(_NOTIFICATIONS.c.id == row_id).values(sent_at=utcnow()))
    return {"sent": sent, "failed": failed}


def sweep(repo: Repository, now: datetime | None = None) -> int:
    """Forget rows no scan can ask about again: older than the grant notice's lead time plus a week, and sent,
    given up or a marker; returns how many.  (A row younger than that still keeps its news from being re-sent.)"""
    settings = repo.settings.notifications
    now = now or utcnow()
    keep = timedelta(days=settings.grant_expiry_days + 7) + 2 * LOOKBACK
    with repo.catalog.session() as s:
        return s.execute(delete(_NOTIFICATIONS).where(
            _NOTIFICATIONS.c.created_at < now - keep,
            or_(_NOTIFICATIONS.c.sent_at.is_not(None), _NOTIFICATIONS.c.recipient == "",
                _NOTIFICATIONS.c.attempts >= settings.max_attempts))).rowcount


def tick(repo: Repository) -> dict[str, int]:
    """The scheduler's task: queue what is new, send what is due, forget what is long done."""
    if not repo.settings.notifications.enabled:
        return {"queued": 0, "sent": 0, "failed": 0, "forgotten": 0}
    queued = scan(repo)
    return {"queued": queued, **deliver_due(repo), "forgotten": sweep(repo)}


def send_reset_link(repo: Repository, link: ResetLink, language: str | None = None) -> None:
    """Mail a reset link to its user at once (never queued: the catalog must not hold the token).

    ``language``: the page's (the web) or None for the user's library's.  Raises ValueError when mail is
    not configured or the user has no address; smtplib.SMTPException or OSError when sending fails.
    """
    settings = repo.settings.notifications
    if not settings.enabled or not link.email:
        raise ValueError("password reset by e-mail needs notifications.email in preserve.yaml and the user's "
                         "address (`preserve library user set-email`)")
    subject, body = _reset_mail(repo, link, language or link.language or CHINESE)
    mail.send(settings.email, [link.email], subject, body)
