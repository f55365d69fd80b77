"""Samples of what the catalog does not keep a history of: queue depth and audit coverage over time.

The scheduler writes one sample every few minutes (``preservation.dashboard.take_sample``):

* ``series = "queue"``: ``label`` a job kind, ``value`` its jobs waiting or running (queued, running,
  failed and due for a retry), ``total`` its dead jobs;
* ``series = "queue-node"``: ``label`` a node (the node of the copy a job is for), or ``""`` for jobs for no
  copy (an ingest, a whole package), ``value`` and ``total`` as for ``queue``;
* ``series = "coverage"``: ``label`` a node, ``value`` its copies verified within the policy's audit
  interval, ``total`` all its copies.

Everything else the staff dashboard shows (bytes verified, findings, repairs) is read from the event
log, which keeps it already.  Samples older than a retention period are deleted as new ones are taken.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from preservation.catalog.models import Base

SERIES_QUEUE = "queue"
SERIES_COVERAGE = "coverage"
SERIES_QUEUE_BY_NODE = "queue-node"
NO_NODE = ""
"""The ``queue-node`` label of jobs for no copy (a node's name is never empty)."""


class MonitoringSample(Base):
    __tablename__ = "monitoring_samples"
    __table_args__ = (Index("ix_monitoring_samples_series_sampled_at", "series", "sampled_at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    sampled_at: Mapped[datetime] = mapped_column(DateTime)
    series: Mapped[str] = mapped_column(String(16))
    label: Mapped[str] = mapped_column(String(64))
    value: Mapped[int] = mapped_column(BigInteger)
    total: Mapped[int] = mapped_column(BigInteger)
