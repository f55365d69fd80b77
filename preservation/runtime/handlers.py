"""The built-in job kinds: replicate, audit, repair, ingest, challenge.

Each handler is idempotent (see :mod:`preservation.runtime.handler_registry`):

``replicate``  replication skips files already on the node with the right
               size and verifies every file before the copy counts.
``audit``      re-reading is harmless; a copy being written or repaired is
               left alone.
``repair``     re-checks the copy before acting; a clean copy is only audited.
``ingest``     the package it registered carries the job id in its bag-info,
               so a re-run finds it instead of registering the delivery twice.
``challenge``  a fresh nonce and range each time; a copy no longer verified
               is skipped.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import select

from preservation.audit import audit_replica
from preservation.challenge import challenge_replica
from preservation.catalog.models import (
    NODE_OFFLINE,
    PACKAGE_DEACCESSIONED,
    REPLICA_COPYING,
    REPLICA_PENDING,
    REPLICA_REPAIRING,
    Package,
    Replica,
)
from preservation.codes import NODE_UNAVAILABLE
from preservation.errors import InvalidRequest, JobError, NotFound, NoVerifiedSource
from preservation.formats.reidentify import reidentify_package
from preservation.ingest import register, stage
from preservation.jobs import kinds
from preservation.repair import repair_replica
from preservation.replication import replicate_replica
from preservation.runtime.handler_registry import HandlerRegistry, JobContext

INGEST_JOB_FIELD = "Preserve-Ingest-Job"
RESULT_KEYS = ("replica_id", "node", "state", "skipped", "files", "bytes", "files_copied", "bytes_copied",
               "sources", "files_repaired", "files_removed", "unrepairable", "note")


def _replica_id(ctx: JobContext) -> int:
    value = ctx.payload.get("replica_id")
    if not isinstance(value, int):
        raise JobError(f"job {ctx.job_id} ({ctx.kind}) has no integer replica_id in its payload")
    return value


def _small(result: dict[str, Any]) -> dict[str, Any]:
    return {k: result[k] for k in RESULT_KEYS if k in result}


def run_replicate(ctx: JobContext) -> dict[str, Any]:
    return _small(replicate_replica(ctx.repo, _replica_id(ctx), agent=ctx.agent, job_id=ctx.job_id))


def run_audit(ctx: JobContext) -> dict[str, Any]:
    replica_id = _replica_id(ctx)
    with ctx.repo.catalog.session() as s:
        replica = s.get(Replica, replica_id)
        if replica is None:
            raise NotFound(f"no replica {replica_id}")
        if replica.package.state == PACKAGE_DEACCESSIONED:
            return {"replica_id": replica_id, "skipped": "package deaccessioned"}
        if replica.state in (REPLICA_PENDING, REPLICA_COPYING, REPLICA_REPAIRING):
            return {"replica_id": replica_id, "skipped": f"replica is {replica.state}"}
        if replica.node.status == NODE_OFFLINE:
            return {"replica_id": replica_id, "skipped": f"node {replica.node.name} is offline"}
    outcome = audit_replica(ctx.repo, replica_id, agent=ctx.agent, job_id=ctx.job_id)
    if set(outcome.fixity.findings.codes()) == {NODE_UNAVAILABLE}:
        raise outcome.fixity.node_error(outcome.node)
    return {"replica_id": replica_id, "node": outcome.node, "state": outcome.state, "ok": outcome.ok,
            "files_checked": outcome.fixity.files_checked, "findings": len(outcome.fixity.findings)}


def run_repair(ctx: JobContext) -> dict[str, Any]:
    return _small(repair_replica(ctx.repo, _replica_id(ctx), agent=ctx.agent, job_id=ctx.job_id))


def run_challenge(ctx: JobContext) -> dict[str, Any]:
    """A scheduled proof-of-possession challenge; a copy that changed state since it was queued is skipped."""
    replica_id = _replica_id(ctx)
    try:
        outcome = challenge_replica(ctx.repo, replica_id, agent=ctx.agent, job_id=ctx.job_id)
    except (NotFound, NoVerifiedSource) as e:
        return {"replica_id": replica_id, "skipped": str(e)}
    return outcome.to_dict()


def run_reidentify(ctx: JobContext) -> dict[str, Any]:
    """Identify a package's files again with the installed signature file (heads and tails only)."""
    package_id = ctx.payload.get("package_id")
    if not isinstance(package_id, str):
        raise JobError(f"job {ctx.job_id} (reidentify) needs a 'package_id' string in its payload")
    try:
        return reidentify_package(ctx.repo, package_id, agent=ctx.agent, job_id=ctx.job_id)
    except NotFound as e:
        return {"package_id": package_id, "skipped": str(e)}


def run_ingest(ctx: JobContext) -> dict[str, Any]:
    """Stage and register a delivery the worker can read (``source``, ``collection``, optional ``name``).

    Registration enqueues the ``replicate`` jobs of the new package.
    """
    source, collection = ctx.payload.get("source"), ctx.payload.get("collection")
    if not isinstance(source, str) or not isinstance(collection, str):
        raise JobError(f"job {ctx.job_id} (ingest) needs 'source' and 'collection' strings in its payload")
    resolved = str(Path(source).resolve())
    marker = str(ctx.job_id)
    existing = _package_of_job(ctx, resolved, marker)
    if existing is not None:
        return existing
    if not Path(source).exists():
        raise InvalidRequest(f"the delivery {source} does not exist on this worker's host")
    name = ctx.payload.get("name") or Path(source).name
    info = {str(k): str(v) for k, v in dict(ctx.payload.get("bag_info") or {}).items()}
    info[INGEST_JOB_FIELD] = marker
    package_id, bag, delivery, analysis = stage(ctx.repo, source, collection, name=name, bag_info=info)
    try:
        result = register(ctx.repo, package_id, bag, collection, name=name, source=resolved,
                          source_kind=delivery.kind, agent=ctx.agent, analysis=analysis)
    except BaseException:
        shutil.rmtree(bag.path, ignore_errors=True)
        raise
    finally:
        analysis.close()
    return {"package_id": result["package_id"], "replica_ids": result["replica_ids"], "nodes": result["nodes"],
            "files": result["files"], "bytes": result["bytes"]}


def _package_of_job(ctx: JobContext, source: str, marker: str) -> dict[str, Any] | None:
    with ctx.repo.catalog.session() as s:
        for package in s.scalars(select(Package).where(Package.source == source)):
            if (package.bag_info or {}).get(INGEST_JOB_FIELD) == marker:
                replica_ids = list(s.scalars(select(Replica.id).where(Replica.package_id == package.id)))
                return {"package_id": package.id, "replica_ids": replica_ids, "already_registered": True}
    return None


def default_registry(plugins: str | None = None) -> HandlerRegistry:
    """The built-in kinds, plus those registered by ``plugins`` (the ``PRESERVE_EXTRA_HANDLERS`` syntax)."""
    registry = HandlerRegistry()
    registry.register(kinds.REPLICATE, run_replicate)
    registry.register(kinds.AUDIT, run_audit)
    registry.register(kinds.REPAIR, run_repair)
    registry.register(kinds.CHALLENGE, run_challenge)
    registry.register(kinds.INGEST, run_ingest)
    registry.register(kinds.REIDENTIFY, run_reidentify)
    registry.load_plugins(plugins)
    return registry

