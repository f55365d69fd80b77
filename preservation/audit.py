"""Fixity audits: re-read every selected copy and compare it with the catalog.

Each replica gets one ``fixity check`` event and a new state in the same
transaction; a failed copy also gets its repair job there (so a crash can
never leave a corrupt copy without its repair queued).

The files that need chunk digests and have none in the catalog (packages
ingested before they existed) get them from the audit's read, for the
files that matched (:func:`preservation.chunks.record_found`), so that the
access service streams them verified chunk by chunk from then on; only
from reads made in this process (a node agent's audit gives none: what
served bytes are checked against never rests on a node's word).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable

from sqlalchemy import select

from preservation import chunks, events
from preservation.catalog.models import (
    REPLICA_CORRUPT,
    REPLICA_MISSING,
    REPLICA_SUSPECT,
    REPLICA_VERIFIED,
    Node,
    Package,
    Replica,
    utcnow,
)
from preservation.codes import NODE_UNAVAILABLE, REPLICA_ABSENT
from preservation.errors import InvalidRequest, NotFound
from preservation.fixity import FixityResult, check_replica
from preservation.jobs import kinds
from preservation.package_state import may_be_audited, next_audit_time, update_package_state
from preservation.repository import Repository

MAX_FINDINGS_IN_EVENT = 200
SUSPECT_RETRY = timedelta(hours=1)  # an unreachable node is audited again this much later

@dataclass
class ReplicaAudit:
    replica_id: int
    package_id: str
    node: str
    state_before: str
    state: str
    fixity: FixityResult

    @property
    def ok(self) -> bool:
        return self.fixity.ok

    def to_dict(self) -> dict[str, Any]:
        return {
            "replica_id": self.replica_id,
            "package_id": self.package_id,
            "node": self.node,
            "ok": self.ok,
            "state_before": self.state_before,
            "state": self.state,
            **self.fixity.to_dict(),
        }


@dataclass
class AuditReport:
    replicas: list[ReplicaAudit] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.replicas)

    @property
    def failed(self) -> list[ReplicaAudit]:
        return [r for r in self.replicas if not r.ok]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "replicas_audited": len(self.replicas),
            "replicas_failed": len(self.failed),
            "files_checked": sum(r.fixity.files_checked for r in self.replicas),
            "bytes_read_on_node": sum(r.fixity.bytes_read_on_node for r in self.replicas),
            "bytes_over_network": sum(r.fixity.bytes_over_network for r in self.replicas),
            "replicas": [r.to_dict() for r in self.replicas],
        }


def audit_replica(
    repo: Repository, replica_id: int, *, agent: str = events.SYSTEM_AGENT, job_id: int | None = None,
    algorithms: tuple[str, ...] | None = None,
) -> ReplicaAudit:
    """Audit one replica in full and record the outcome; raises NotFound for an unknown id."""
    algorithms = algorithms or (repo.policy.audit.digest,)
    with repo.catalog.session() as s:
        replica = s.get(Replica, replica_id)
        if replica is None:
            raise NotFound(f"no replica {replica_id}")
        node, package_id, state_before = replica.node, replica.package_id, replica.state
    adapter = repo.adapter(node)
    fixity = check_replica(repo.catalog, adapter, package_id, algorithms, workers=repo.settings.workers,
                           keep_chunks=lambda found: chunks.record_found(repo.catalog, package_id, found))
    codes = {finding.code for finding in fixity.findings.errors}
    with repo.catalog.session() as s:
        replica = s.get(Replica, replica_id)
        now = utcnow()
        replica.last_audit_at = now
        if fixity.ok:
            new_state = REPLICA_VERIFIED
            replica.verified_at = now
            replica.next_audit_at = next_audit_time(repo.policy)
            replica.last_error = None
        elif codes == {NODE_UNAVAILABLE}:
            # the node did not answer: we know nothing new about the bytes
            new_state = REPLICA_SUSPECT if replica.state == REPLICA_VERIFIED else replica.state
            replica.last_error = fixity.findings.errors[0].message
        else:
            new_state = REPLICA_MISSING if REPLICA_ABSENT in codes else REPLICA_CORRUPT
            replica.last_error = str(fixity.findings.errors[0])
        replica.state = new_state
        detail = {
            "algorithms": list(algorithms),
            "state": new_state,
            "previous_state": state_before,
            "files_expected": fixity.files_expected,
            "files_checked": fixity.files_checked,
            "bytes_read_on_node": fixity.bytes_read_on_node,
            "bytes_over_network": fixity.bytes_over_network,
            "chunks_recorded": fixity.chunks_recorded,
            "findings": fixity.findings.to_list()[:MAX_FINDINGS_IN_EVENT],
            "findings_total": len(fixity.findings),
        }
        events.record_event(
            s, events.FIXITY_CHECK, events.SUCCESS if fixity.ok else events.FAILURE, agent=agent,
            package_id=package_id, replica_id=replica_id, node_name=node.name, job_id=job_id,
            policy=repo.policy.label, detail=detail,
        )
        if new_state in (REPLICA_CORRUPT, REPLICA_MISSING):
            kinds.enqueue_for_replica(s, kinds.REPAIR_DAMAGED, replica_id, package_id=package_id,
                                      max_attempts=repo.policy.repair.max_attempts)
        elif new_state == REPLICA_SUSPECT:
            kinds.enqueue_for_replica(s, kinds.AUDIT_SUSPECT_AGAIN, replica_id, package_id=package_id,
                                      run_after=now + SUSPECT_RETRY)
        update_package_state(repo.policy, s, replica.package, agent=agent, job_id=job_id)
    return ReplicaAudit(replica_id, package_id, node.name, state_before, new_state, fixity)


def select_replicas(repo: Repository, package_id: str | None = None, node_name: str | None = None) -> list[int]:
    with repo.catalog.session() as s:
        stmt = (
            select(Replica.id)
            .join(Node)
            .join(Package)
            .where(may_be_audited())
            .order_by(Replica.package_id, Node.name)
        )
        if package_id:
            if s.get(Package, package_id) is None:
                raise NotFound(f"no package {package_id!r}: see `preserve status --json` or `preserve events list`")
            stmt = stmt.where(Replica.package_id == package_id)
        if node_name:
            if s.execute(select(Node.id).where(Node.name == node_name)).scalar_one_or_none() is None:
                raise NotFound(f"no node named {node_name!r}: see `preserve node list`")
            stmt = stmt.where(Node.name == node_name)
        return list(s.scalars(stmt))


def audit(
    repo: Repository, *, package_id: str | None = None, node_name: str | None = None,
    agent: str = events.SYSTEM_AGENT, progress: Callable[[ReplicaAudit], None] | None = None,
) -> AuditReport:
    """Audit every selected replica (all by default); never stops at the first failure."""
    ids = select_replicas(repo, package_id, node_name)
    if not ids and (package_id or node_name):
        raise InvalidRequest("nothing to audit: the selection holds no copies that have been written")
    report = AuditReport()
    for rid in ids:
        one = audit_replica(repo, rid, agent=agent)
        report.replicas.append(one)
        if progress:
            progress(one)
    return report

