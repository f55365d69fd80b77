"""Sweeping: dead workers' leases, interrupted writes on the nodes, stale staging directories."""

from __future__ import annotations

import logging
import shutil
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from preservation import events
from preservation.catalog.models import NODE_OFFLINE, Node, Package
from preservation.errors import PreservationError
from preservation.jobs.claim import expire_leases
from preservation.package_state import release_staging_if_done
from preservation.repository import Repository
from storage_adapters import sweep_temporary

log = logging.getLogger("preserve.upkeep")

STALE_TEMPORARY = timedelta(hours=6)
STALE_STAGING = timedelta(days=1)


def sweep(repo: Repository, *, agent: str = events.SYSTEM_AGENT, temporary_age: timedelta = STALE_TEMPORARY,
          staging_age: timedelta = STALE_STAGING) -> dict[str, int]:
    """Expire dead workers' leases, remove interrupted writes on nodes and stale staging directories."""
    out = {"leases_expired": expire_leases(repo.catalog, agent=agent), "temporary_removed": 0,
           "staging_removed": 0}
    with repo.catalog.session() as s:
        nodes = s.scalars(select(Node).where(Node.status != NODE_OFFLINE)).all()
    for node in nodes:
        try:
            out["temporary_removed"] += sweep_temporary(repo.adapter(node), temporary_age.total_seconds())
        except PreservationError as e:
            log.warning("could not sweep temporary files on node %s: %s", node.name, e)
    out["staging_removed"] = _sweep_staging(repo, staging_age)
    return out


def _sweep_staging(repo: Repository, age: timedelta) -> int:
    """Staging directories of interrupted ingests (``*.partial``, or bags never registered) and of
    packages preserved since; only entries untouched for ``age``."""
    staging = Path(repo.settings.staging_dir)
    if not staging.is_dir():
        return 0
    cutoff = time.time() - age.total_seconds()
    removed = 0
    for entry in staging.iterdir():
        if not entry.is_dir() or entry.stat().st_mtime > cutoff:
            continue
        package_id = entry.name.removesuffix(".partial")
        if entry.name.endswith(".partial"):
            shutil.rmtree(entry, ignore_errors=True)
            removed += 1
            continue
        with repo.catalog.session() as s:
            package = s.get(Package, package_id)
            registered = package is not None and package.staging_path == str(entry)
        if not registered:
            shutil.rmtree(entry, ignore_errors=True)
            removed += 1
        else:
            release_staging_if_done(repo.catalog, package_id)
    return removed
