"""Liveness: heartbeats of workers and schedulers, and reachability probes of nodes.

A worker or scheduler process keeps one :class:`HeartbeatWriter`: a thread
that writes its row in ``heartbeats`` every ``monitoring.heartbeat_seconds``
(who: role, name, host, pid; since when; what it is doing now) and marks it
stopped when the process exits cleanly.  A row not written for
``monitoring.silent_after_seconds`` that was never marked stopped is a process
that went silent: killed, hung, or its host lost.

The active scheduler probes every node that is not offline at each tick
(:func:`probe_nodes`) through the storage interface: a ``stat`` of a key that
is never written must answer "not found" (a node agent answers it through its
own storage, an S3 store checks its bucket); a store whose files are on this
host (the ``local_files`` feature) must have its root directory, and that root
must not be empty while the catalog counts copies on it (an unmounted disk
leaves an empty mount point).  Failures are recorded in ``node_probes`` with
the time the node became unreachable.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from datetime import datetime, timedelta
from typing import Any, Callable

from sqlalchemy import delete, func, select
from sqlalchemy.exc import SQLAlchemyError

from preservation.catalog import reads
from preservation.catalog.db import Catalog
from preservation.catalog.models import NODE_OFFLINE, Node, Replica, utcnow
from preservation.catalog.monitoring_models import Heartbeat, NodeProbe
from preservation.catalog.reader import Reader
# who is alive and which nodes answer are read in catalog.reads (also by `preserve status`, without SQLAlchemy)
from preservation.catalog.reads import ALIVE, SILENT, STOPPED, process_state  # noqa: F401 - offered here
from preservation.errors import PreservationError
from preservation.monitoring_settings import MonitoringSettings
from preservation.repository import Repository
from preservation.text import for_log
from storage_adapters import exists

log = logging.getLogger("preserve.liveness")

# A key that is never written: stat-ing it proves the storage answers (the node agent's own health check uses it).
PROBE_KEY = "preserve-node-agent-health-probe"

class HeartbeatWriter:
    """Writes one process's heartbeat row every ``interval`` seconds until stopped.

    ``doing`` is called at each beat and returns what the process is doing
    (it must be quick and must not raise).  A beat that fails (the catalog is
    briefly unreachable) is logged and tried again at the next one.
    """

    def __init__(self, catalog: Catalog, role: str, name: str, *, interval: float,
                 doing: Callable[[], dict[str, Any]]) -> None:
        self.catalog = catalog
        self.role = role
        self.name = name
        self.interval = interval
        self._doing = doing
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.started_at = utcnow()

    def start(self) -> "HeartbeatWriter":
        self.beat()
        self._thread = threading.Thread(target=self._run, name=f"preserve-liveness-{self.role}", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.beat()

    def beat(self, *, stopped: bool = False) -> None:
        now = utcnow()
        try:
            doing = self._doing()
            with self.catalog.session() as s:
                row = s.scalar(select(Heartbeat).where(Heartbeat.role == self.role, Heartbeat.name == self.name))
                if row is None:
                    row = Heartbeat(role=self.role, name=self.name, started_at=self.started_at)
                    s.add(row)
                row.host = socket.gethostname()[:255]
                row.pid = os.getpid()
                row.last_seen_at = now
                row.doing = doing
                row.stopped_at = now if stopped else None
        except SQLAlchemyError as e:
            log.warning("%s %s could not write its heartbeat: %s", self.role, self.name, e)

    def stop(self) -> None:
        """Stop beating and mark the row stopped (a clean exit is not silence)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.beat(stopped=True)


def node_reachability(session, settings: MonitoringSettings, now: datetime | None = None) -> dict[int, dict[str, Any]]:
    """:func:`preservation.catalog.reads.node_reachability` read in ``session`` (its transaction)."""
    return reads.node_reachability(Reader.of_session(session), settings, now)


# --- node probes ----------------------------------------------------------------------------------


def probe_node(repo: Repository, node: Node, copies: int) -> str | None:
    """Why ``node`` does not answer, or None when it does.  Never raises for a node's failure."""
    try:
        adapter = repo.adapter(node)
        local = adapter.features.local
        if local is not None:
            root = local.root
            if not os.path.isdir(root):
                return f"the root directory {root} is not there (is its disk mounted?)"
            if copies:
                with os.scandir(root) as entries:
                    if next(entries, None) is None:
                        return (f"the root directory {root} is empty although the catalog counts {copies} "
                                f"cop(ies) on it (is its disk mounted?)")
        exists(adapter, PROBE_KEY)
    except PreservationError as e:
        return f"{e.code} {e}"
    except OSError as e:
        return f"{type(e).__name__}: {e.strerror or e}"
    return None


def probe_nodes(repo: Repository, *, now: datetime | None = None) -> dict[str, Any]:
    """Probe every node that is not offline, in parallel; record each answer in ``node_probes``.

    Also forgets heartbeat rows of processes stopped or silent for longer
    than ``monitoring.forget_stopped_after_days``.  Returns the names of the
    unreachable nodes and how many answered.
    """
    settings = repo.settings.monitoring
    with repo.catalog.session() as s:
        nodes = s.scalars(select(Node).where(Node.status != NODE_OFFLINE).order_by(Node.name)).all()
        copies = dict(s.execute(select(Replica.node_id, func.count()).group_by(Replica.node_id)).all())
    results: dict[int, str | None] = {}
    threads = []
    for node in nodes:
        def run(n: Node = node) -> None:
            results[n.id] = probe_node(repo, n, copies.get(n.id, 0))
        # daemon threads: a probe that hangs past its timeout must not keep the process alive
        t = threading.Thread(target=run, name=f"preserve-probe-{node.id}", daemon=True)
        t.start()
        threads.append(t)
    deadline = time.monotonic() + settings.probe_timeout_seconds
    for t in threads:
        t.join(max(deadline - time.monotonic(), 0))
    now = now or utcnow()
    unreachable = []
    with repo.catalog.session() as s:
        for node in nodes:
            error = results[node.id] if node.id in results else \
                f"no answer within {settings.probe_timeout_seconds:g}s"
            probe = s.get(NodeProbe, node.id)
            was_reachable = probe is None or probe.reachable
            if probe is None:
                probe = NodeProbe(node_id=node.id)
                s.add(probe)
            probe.checked_at = now
            probe.reachable = error is None
            probe.error = error[:2000] if error else None
            if error is None:
                if not was_reachable:
                    log.info("node %s answers again (unreachable since %s)", for_log(node.name),
                             reads.iso_seconds(probe.unreachable_since))
                probe.unreachable_since = None
            else:
                unreachable.append(node.name)
                if probe.unreachable_since is None:
                    probe.unreachable_since = now
                if was_reachable:
                    log.warning("node %s is unreachable: %s", for_log(node.name), for_log(error),
                                extra={"node": node.name})
        forget = now - timedelta(days=settings.forget_stopped_after_days)
        s.execute(delete(Heartbeat).where(Heartbeat.last_seen_at < forget))
    return {"probed": len(nodes), "unreachable": unreachable}
