"""Monitoring tables: who is alive (heartbeats), which nodes answer (probes), which alerts were sent.

* ``heartbeats``: one row per worker or scheduler process, written every few
  seconds while it runs (``last_seen_at``) and marked ``stopped_at`` when it
  exits cleanly; a row whose ``last_seen_at`` is old and that never stopped is
  a process that went silent (killed, host lost).
* ``node_probes``: the scheduler's last reachability probe of each node and,
  while it fails, since when.
* ``alerts``: one row per alert condition (a corrupt copy, a dead job, a
  silent worker …) with when it was first and last seen and when it cleared;
  ``alert_deliveries`` records every message sent, so that deduplication and
  the hourly rate limit survive a restart of the scheduler.

The two indexes at the end serve the metrics collector's windowed queries
(events of the last day, copies audited in the last day); they belong to
tables of ``models`` but exist only for monitoring, so they are declared here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from preservation.catalog.models import Base, Event, Replica, utcnow

from preservation.catalog.vocabulary import ROLE_SCHEDULER, ROLE_WORKER, ROLES  # noqa: F401 - offered here


class Heartbeat(Base):
    __tablename__ = "heartbeats"
    __table_args__ = (UniqueConstraint("role", "name", name="uq_heartbeats_role_name"),
                      Index("ix_heartbeats_last_seen_at", "last_seen_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # what it is doing now: [{"job", "kind", "package", "node"}] for a worker, {"active": bool} for a scheduler
    doing: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class NodeProbe(Base):
    __tablename__ = "node_probes"

    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"), primary_key=True)
    checked_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    reachable: Mapped[bool] = mapped_column(Boolean, default=True)
    unreachable_since: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_resolved_at", "resolved_at"),)

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(500))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    first_seen_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class AlertDelivery(Base):
    __tablename__ = "alert_deliveries"
    __table_args__ = (Index("ix_alert_deliveries_key_channel", "alert_key", "channel", "sent_at"),
                      Index("ix_alert_deliveries_sent_at", "sent_at"))

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    alert_key: Mapped[str] = mapped_column(String(200))  # an alert's key, or "digest"
    channel: Mapped[str] = mapped_column(String(16))
    sent_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    ok: Mapped[bool] = mapped_column(Boolean, default=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


# for the collector's "last day" queries (see the module docstring)
Index("ix_events_occurred_at", Event.occurred_at)
Index("ix_replicas_last_audit", Replica.last_audit_at)
