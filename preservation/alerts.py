"""Alerts by e-mail (SMTP) and webhook (JSON POST), evaluated by the active scheduler at each tick.

Each tick :func:`evaluate` reads the conditions worth an alert from the
catalog (:func:`current_conditions`): a copy corrupt or missing, a package
degraded or damaged, a dead job, a node's audit coverage below
``monitoring.audit_coverage_min``, a node unreachable past
``monitoring.node_unreachable_alert_seconds``, a worker or scheduler gone
silent.  Each has a stable key (``copy:17:corrupt``); the ``alerts`` table
keeps when it was first and last seen and when it cleared.

Deduplicated: an open alert is sent on a channel once, and again only after
``alerts.repeat_after_hours``.  Rate limited: at most ``alerts.max_per_hour``
messages per channel in any hour; the rest wait for a later tick.  Every
attempt is a row of ``alert_deliveries``, so both survive a restart.  With
``alerts.digest.enabled`` one message a day (after ``digest.hour`` UTC)
lists what is open and what cleared in the last day; ``immediate: false``
leaves only the digest.

Secrets (the SMTP password, the webhook URL and headers) are never logged;
text from the catalog is made safe for a mail header, a log line and JSON.
"""

from __future__ import annotations

import logging
import smtplib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable

import httpx
from sqlalchemy import case, delete, func, select

from preservation import events, mail
from preservation.catalog.models import (
    NODE_OFFLINE, PACKAGE_DAMAGED, PACKAGE_DEGRADED, REPLICA_CORRUPT, REPLICA_MISSING,
    Event, Job, Node, Package, Replica, utcnow,
)
from preservation.catalog.monitoring_models import Alert, AlertDelivery, Heartbeat
from preservation.jobs.queue import DEAD
from preservation.liveness import SILENT, node_reachability, process_state
from preservation.package_state import verified_within
from preservation.monitoring_settings import (
    ALERT_AUDIT_COVERAGE, ALERT_COPY_DAMAGED, ALERT_DEAD_JOB, ALERT_NODE_UNREACHABLE, ALERT_PACKAGE_AT_RISK,
    ALERT_PROCESS_SILENT, AlertSettings, EmailChannel, WebhookChannel,
)
from preservation.repository import Repository
from preservation.text import for_log

log = logging.getLogger("preserve.alerts")

DAMAGE_LOOKBACK = timedelta(days=1)  # damage found by an audit stays an alert condition this long, repaired or not
LISTED = 500  # conditions of one kind read per tick (the oldest first); more are seen once these clear
DIGEST_KEY = "digest"
KEEP_DELIVERIES = timedelta(days=2)
KEEP_RESOLVED = timedelta(days=30)


@dataclass(frozen=True)
class Condition:
    key: str
    kind: str
    subject: str
    detail: dict[str, Any] = field(default_factory=dict)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value is not None else None


def current_conditions(repo: Repository, session, now: datetime) -> list[Condition]:
    """Everything that deserves an alert now, of the kinds ``alerts.kinds`` selects."""
    settings, monitoring = repo.settings.alerts, repo.settings.monitoring
    kinds = set(settings.kinds)
    out: list[Condition] = []
    if ALERT_COPY_DAMAGED in kinds:
        out.extend(_damage_found(session, now))
        rows = session.execute(
            select(Replica.id, Replica.state, Replica.last_error, Package.id, Package.name, Node.name)
            .join(Package, Package.id == Replica.package_id).join(Node, Node.id == Replica.node_id)
            .where(Replica.state.in_((REPLICA_CORRUPT, REPLICA_MISSING))).order_by(Replica.id).limit(LISTED))
        for replica_id, state, error, package_id, name, node in rows:
            out.append(Condition(f"copy:{replica_id}:{state}", ALERT_COPY_DAMAGED,
                                 f"copy of package {name} on node {node} is {state}",
                                 {"package_id": package_id, "node": node, "state": state, "error": error}))
    if ALERT_PACKAGE_AT_RISK in kinds:
        rows = session.execute(select(Package.id, Package.name, Package.state)
                               .where(Package.state.in_((PACKAGE_DEGRADED, PACKAGE_DAMAGED)))
                               .order_by(Package.created_at).limit(LISTED))
        for package_id, name, state in rows:
            out.append(Condition(f"package:{package_id}:{state}", ALERT_PACKAGE_AT_RISK,
                                 f"package {name} is {state}", {"package_id": package_id, "state": state}))
    if ALERT_DEAD_JOB in kinds:
        for job in session.scalars(select(Job).where(Job.state == DEAD).order_by(Job.id).limit(LISTED)):
            error = job.last_error.splitlines()[0] if job.last_error else None
            out.append(Condition(f"job:{job.id}", ALERT_DEAD_JOB, f"job {job.id} ({job.kind}) is dead",
                                 {"job": job.id, "kind": job.kind, "package_id": job.package_id, "error": error}))
    if ALERT_AUDIT_COVERAGE in kinds:
        out.extend(_coverage(repo, session, now, monitoring.audit_coverage_min))
    if ALERT_NODE_UNREACHABLE in kinds:
        names = dict(session.execute(select(Node.id, Node.name).where(Node.status != NODE_OFFLINE)).all())
        for node_id, probe in node_reachability(session, monitoring, now).items():
            if probe["unreachable"] and node_id in names:
                out.append(Condition(f"node:{node_id}", ALERT_NODE_UNREACHABLE,
                                     f"node {names[node_id]} is unreachable since {probe['unreachable_since']}",
                                     {"node": names[node_id], **probe}))
    if ALERT_PROCESS_SILENT in kinds:
        for row in session.scalars(select(Heartbeat).where(Heartbeat.stopped_at.is_(None))):
            if process_state(row, now, monitoring) == SILENT:
                out.append(Condition(f"process:{row.id}", ALERT_PROCESS_SILENT,
                                     f"{row.role} {row.name} on {row.host} is silent since {_iso(row.last_seen_at)}",
                                     {"role": row.role, "name": row.name, "host": row.host, "pid": row.pid,
                                      "last_seen_at": _iso(row.last_seen_at)}))
    unique: dict[str, Condition] = {}
    for c in out:
        unique[c.key] = c  # a key from both the event log and the copy's state: the latter, listed later, wins
    return list(unique.values())


def _damage_found(session, now: datetime) -> list[Condition]:
    """Copies an audit found corrupt or missing in the last day, from the event log: damage that a worker
    repaired before the next tick is still an incident worth telling (under the same key as the copy's state,
    so a copy still damaged is one alert, not two)."""
    out = []
    rows = session.execute(
        select(Event.replica_id, Event.node_name, Event.package_id, Event.detail, Event.occurred_at, Package.name)
        .join(Package, Package.id == Event.package_id)
        .where(Event.occurred_at >= now - DAMAGE_LOOKBACK, Event.event_type == events.FIXITY_CHECK,
               Event.outcome == events.FAILURE, Event.replica_id.is_not(None))
        .order_by(Event.seq).limit(LISTED))
    for replica_id, node, package_id, detail, when, name in rows:
        state = detail.get("state") if isinstance(detail, dict) else None
        if state not in (REPLICA_CORRUPT, REPLICA_MISSING):
            continue
        findings = [f for f in detail.get("findings") or [] if isinstance(f, dict)][:5]
        out.append(Condition(f"copy:{replica_id}:{state}", ALERT_COPY_DAMAGED,
                             f"copy of package {name} on node {node} is {state}",
                             {"package_id": package_id, "node": node, "state": state, "found_at": _iso(when),
                              "findings": [{"code": f.get("code"), "path": f.get("path")} for f in findings]}))
    return out


def _coverage(repo: Repository, session, now: datetime, minimum: float) -> list[Condition]:
    start = now - timedelta(days=repo.policy.audit.interval_days)
    rows = session.execute(
        select(Node.id, Node.name, func.count(Replica.id),
               func.sum(case((verified_within(start), 1), else_=0)))
        .join(Replica, Replica.node_id == Node.id).where(Node.status != NODE_OFFLINE).group_by(Node.id, Node.name))
    out = []
    for node_id, name, copies, audited in rows:
        share = int(audited or 0) / copies if copies else 1.0
        if share < minimum:
            out.append(Condition(f"coverage:{node_id}", ALERT_AUDIT_COVERAGE,
                                 f"node {name}: {share:.0%} of its copies audited within the interval "
                                 f"(minimum {minimum:.0%})", {"node": name, "coverage": round(share, 4),
                                                              "copies": copies, "minimum": minimum}))
    return out


# --- channels ---------------------------------------------------------------------------------------


def send_email(channel: EmailChannel, subject: str, body: str) -> None:
    """Send one alert to the channel's recipients; raises smtplib.SMTPException or OSError (never with the password)."""
    mail.send(channel, channel.recipients, f"[preserve] {subject}", body)


def send_webhook(channel: WebhookChannel, payload: dict[str, Any]) -> None:
    """POST ``payload`` as JSON; raises RuntimeError naming only the status (never the URL: it may hold a token)."""
    headers = {name: value.get_secret_value() for name, value in channel.headers.items()}
    try:
        response = httpx.post(channel.url.get_secret_value(), json=payload, headers=headers,
                              timeout=channel.timeout_seconds)
    except httpx.HTTPError as e:
        raise RuntimeError(f"{type(e).__name__} posting to {channel.display}") from None
    if response.status_code >= 300:
        raise RuntimeError(f"{channel.display} answered HTTP {response.status_code}")


def _body(alert: dict[str, Any]) -> str:
    lines = [for_log(alert["subject"]), "", f"kind: {alert['kind']}", f"first seen: {alert['first_seen_at']} UTC",
             f"key: {alert['key']}"]
    lines += [f"{k}: {for_log(v)}" for k, v in sorted(alert["detail"].items()) if v is not None]
    lines += ["", "See `preserve status` for the whole picture."]
    return "\n".join(lines)


Sender = Callable[[str, dict[str, Any]], None]  # channel name, message → raises on failure


def _deliver(settings: AlertSettings, channel: str, message: dict[str, Any]) -> None:
    if channel == "email":
        body = message["text"] if "text" in message else _body(message)
        send_email(settings.email, message["subject"], body)
    else:
        send_webhook(settings.webhook, {k: v for k, v in message.items() if k != "text"})


# --- evaluation ---------------------------------------------------------------------------------------


def _record(repo: Repository, conditions: list[Condition], now: datetime) -> dict[str, int]:
    opened = cleared = 0
    with repo.catalog.session() as s:
        current = {c.key: c for c in conditions}
        rows = {a.key: a for a in s.scalars(select(Alert).where(
            (Alert.resolved_at.is_(None)) | (Alert.key.in_(list(current)))))}
        for key, c in current.items():
            row = rows.get(key)
            if row is None:
                row = Alert(key=key, kind=c.kind, first_seen_at=now)
                s.add(row)
                opened += 1
            elif row.resolved_at is not None:  # back again: a new incident
                row.first_seen_at, row.resolved_at = now, None
                opened += 1
            row.subject, row.detail, row.last_seen_at = c.subject[:500], c.detail, now
        for key, row in rows.items():
            if key not in current and row.resolved_at is None:
                row.resolved_at = now
                cleared += 1
    return {"opened": opened, "cleared": cleared}


def _as_message(a: Alert) -> dict[str, Any]:
    return {"source": "preserve", "key": a.key, "kind": a.kind, "subject": a.subject, "state": "open",
            "first_seen_at": _iso(a.first_seen_at), "detail": a.detail or {}}


def _due(repo: Repository, channel: str, now: datetime) -> tuple[list[dict[str, Any]], int]:
    """Open alerts not sent on ``channel`` since they opened (or within the repeat window); the hour's budget."""
    settings = repo.settings.alerts
    repeat = timedelta(hours=settings.repeat_after_hours)
    with repo.catalog.session() as s:
        sent_hour = s.scalar(select(func.count()).select_from(AlertDelivery)
                             .where(AlertDelivery.channel == channel, AlertDelivery.sent_at > now - timedelta(hours=1)))
        last_ok = dict(s.execute(select(AlertDelivery.alert_key, func.max(AlertDelivery.sent_at))
                                 .where(AlertDelivery.channel == channel, AlertDelivery.ok.is_(True),
                                        AlertDelivery.sent_at > now - repeat)
                                 .group_by(AlertDelivery.alert_key)).all())
        due = []
        for a in s.scalars(select(Alert).where(Alert.resolved_at.is_(None)).order_by(Alert.first_seen_at)):
            sent = last_ok.get(a.key)
            if sent is None or sent < a.first_seen_at:
                due.append(_as_message(a))
    return due, max(settings.max_per_hour - int(sent_hour or 0), 0)


def _send_logged(repo: Repository, channel: str, key: str, message: dict[str, Any], sender: Sender | None,
                 now: datetime) -> bool:
    error = None
    try:
        if sender is not None:
            sender(channel, message)
        else:
            _deliver(repo.settings.alerts, channel, message)
    except (smtplib.SMTPException, OSError, RuntimeError, ValueError) as e:
        error = f"{type(e).__name__}: {for_log(e)}"[:1000]
        log.error("alert %s could not be sent by %s: %s", for_log(key), channel, error)
    with repo.catalog.session() as s:
        s.add(AlertDelivery(alert_key=key[:200], channel=channel, sent_at=now, ok=error is None, error=error))
    return error is None


def _digest_due(repo: Repository, channel: str, now: datetime) -> bool:
    digest = repo.settings.alerts.digest
    if not digest.enabled or now.hour < digest.hour:
        return False
    today = now.replace(hour=digest.hour, minute=0, second=0, microsecond=0)
    with repo.catalog.session() as s:
        last = s.scalar(select(func.max(AlertDelivery.sent_at)).where(
            AlertDelivery.alert_key == DIGEST_KEY, AlertDelivery.channel == channel, AlertDelivery.ok.is_(True)))
    return last is None or last < today


def _digest(repo: Repository, now: datetime) -> dict[str, Any]:
    with repo.catalog.session() as s:
        open_ = [_as_message(a) for a in s.scalars(select(Alert).where(Alert.resolved_at.is_(None))
                                                    .order_by(Alert.first_seen_at).limit(LISTED))]
        cleared = [{"key": a.key, "kind": a.kind, "subject": a.subject, "resolved_at": _iso(a.resolved_at)}
                   for a in s.scalars(select(Alert).where(Alert.resolved_at >= now - timedelta(days=1))
                                      .order_by(Alert.resolved_at).limit(LISTED))]
    lines = [f"{len(open_)} alert(s) open, {len(cleared)} cleared in the last day.", "", "Open:"]
    lines += [f"- {for_log(a['subject'])} (since {a['first_seen_at']} UTC)" for a in open_] or ["- none"]
    lines += ["", "Cleared:"] + ([f"- {for_log(a['subject'])} ({a['resolved_at']} UTC)" for a in cleared] or ["- none"])
    return {"source": "preserve", "digest": True, "subject": f"daily digest: {len(open_)} alert(s) open",
            "open": open_, "cleared": cleared, "text": "\n".join(lines)}


def evaluate(repo: Repository, *, now: datetime | None = None, sender: Sender | None = None) -> dict[str, Any]:
    """Record the alert conditions, send what is due on each configured channel; returns what happened.

    ``sender`` replaces the real channels (for a dry run); failures to send are
    logged and recorded, and the alert stays due for the next tick.
    """
    now = now or utcnow()
    settings = repo.settings.alerts
    with repo.catalog.session() as s:
        conditions = current_conditions(repo, s, now)
    result: dict[str, Any] = {**_record(repo, conditions, now), "open": len(conditions), "sent": {}, "held": {}}
    for channel in settings.channels:
        sent = held = 0
        if settings.immediate:
            due, budget = _due(repo, channel, now)
            for message in due:
                if budget <= 0:
                    held += 1
                    continue
                budget -= 1
                sent += _send_logged(repo, channel, message["key"], message, sender, now)
            if held:
                log.warning("%d alert(s) held back on %s: alerts.max_per_hour (%d) reached", held, channel,
                            settings.max_per_hour)
        if _digest_due(repo, channel, now):
            sent += _send_logged(repo, channel, DIGEST_KEY, _digest(repo, now), sender, now)
        result["sent"][channel], result["held"][channel] = sent, held
    with repo.catalog.session() as s:
        keep = max(KEEP_DELIVERIES, timedelta(hours=settings.repeat_after_hours) + timedelta(days=1))
        s.execute(delete(AlertDelivery).where(AlertDelivery.sent_at < now - keep))
        s.execute(delete(Alert).where(Alert.resolved_at < now - KEEP_RESOLVED))
    return result
