"""Proof-of-possession challenges: cheap, frequent checks between full audits.

A challenge picks a random file of a verified copy, a random byte range and
a fresh nonce, and asks the copy's node for sha256(nonce ‖ those bytes).
The expected answer is computed here from another copy whose file is
re-verified against the catalog digest in the same read, so a node cannot
answer from stored digests, and the coordinator never trusts bytes it has
not just verified.  A wrong answer makes the copy ``suspect`` and queues a
full audit in the same transaction.  A node that holds a FIFO, socket, link
or device where the file should be fails with the audit's finding code for
it (A008), never with an answer computed from no bytes.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from preservation import events
from preservation.catalog.models import (
    PACKAGE_DEACCESSIONED,
    REPLICA_SUSPECT,
    REPLICA_VERIFIED,
    Node,
    Package,
    PackageFile,
    Replica,
    utcnow,
)
from preservation.codes import NOT_REGULAR
from preservation.errors import ChecksumMismatch, NotFound, NotRegularFile, NoVerifiedSource, PreservationError
from preservation.jobs import kinds
from preservation.layout import PackageLayout
from preservation.package_state import flag_bad_sources, readable_node
from preservation.repository import Repository
from preservation.sources import Blamed, CopySource, from_first_verified, verified_sources

MAX_RANGE = 64 * 1024
MAX_FILE_FOR_CHALLENGE = 512 * 1024 * 1024


@dataclass(frozen=True)
class ChallengeOutcome:
    replica_id: int
    node: str
    path: str
    offset: int
    length: int
    passed: bool
    reason: str = ""
    finding: str | None = None  # the audit finding code, when the node named what it holds instead of the file

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _pick_file(session, package_id: str, rng: secrets.SystemRandom) -> PackageFile | None:
    stmt = select(PackageFile).where(
        PackageFile.package_id == package_id, PackageFile.size > 0, PackageFile.size <= MAX_FILE_FOR_CHALLENGE
    )
    count = session.scalar(select(func.count()).select_from(stmt.subquery()))
    if not count:
        return None
    return session.scalars(stmt.order_by(PackageFile.id).offset(rng.randrange(count)).limit(1)).first()


def _expected_answer(source: CopySource, path: str, sha256: str, offset: int, length: int, nonce: bytes) -> str:
    """Read the whole file once from ``source``: verify it and answer the challenge from the same bytes.

    Raises SourceFailed when the source cannot be read, ChecksumMismatch when its bytes are not the catalog's.
    """
    whole = hashlib.sha256()
    proof = hashlib.sha256(nonce)
    position = 0
    for chunk in source.stream(path):
        whole.update(chunk)
        start, end = max(offset - position, 0), min(offset + length - position, len(chunk))
        if start < end:
            proof.update(chunk[start:end])
        position += len(chunk)
    if whole.hexdigest() != sha256:
        raise ChecksumMismatch(f"sha256 {whole.hexdigest()}, the catalog says {sha256}", key=path)
    return proof.hexdigest()


def challenge_replica(repo: Repository, replica_id: int, *, agent: str = events.SYSTEM_AGENT,
                      job_id: int | None = None) -> ChallengeOutcome:
    """Challenge one verified copy; raises NotFound, NoVerifiedSource (no other verified copy to compare)."""
    rng = secrets.SystemRandom()
    with repo.catalog.session() as s:
        replica = s.get(Replica, replica_id)
        if replica is None or replica.state != REPLICA_VERIFIED:
            raise NotFound(f"no verified replica {replica_id} to challenge")
        if replica.package.state == PACKAGE_DEACCESSIONED:
            raise NotFound(f"package {replica.package_id} was deaccessioned: its copies are not challenged")
        row = _pick_file(s, replica.package_id, rng)
        if row is None:
            raise NotFound(f"package {replica.package_id} has no file to challenge")
        sources = verified_sources(repo, s, replica.package_id, exclude_replica_id=replica.id)
        node = replica.node
        key = PackageLayout(replica.package_id).key(row.path)
        sha256, size, path, package_id = row.sha256, row.size, row.path, replica.package_id
    length = min(size, rng.randrange(1, MAX_RANGE + 1))
    offset = rng.randrange(0, size - length + 1)
    nonce = secrets.token_bytes(32)
    blamed = Blamed()
    try:
        _, expected = from_first_verified(
            sources, lambda src: _expected_answer(src, path, sha256, offset, length, nonce), blamed,
            doing="check a challenge against", package_id=package_id)
    finally:
        if blamed:
            with repo.catalog.session() as s:
                flag_bad_sources(repo.policy, s, s.get(Package, package_id), blamed.problems(), agent,
                                 activity="checking a challenge's answer", path=path)
    finding = None
    try:
        answer = repo.adapter(node).challenge(key, offset, length, nonce)
        passed, reason = answer == expected, "" if answer == expected else "the node's answer is wrong"
    except NotRegularFile as e:
        passed, reason, finding = False, f"{e.code}: {e}", NOT_REGULAR
    except PreservationError as e:
        passed, reason = False, f"{e.code}: {e}"
    outcome = ChallengeOutcome(replica_id, node.name, path, offset, length, passed, reason, finding)
    with repo.catalog.session() as s:
        replica = s.get(Replica, replica_id)
        replica.last_challenge_at = utcnow()
        detail = {"check": "proof of possession", **outcome.to_dict()}
        if not passed and replica.state == REPLICA_VERIFIED:
            replica.state = REPLICA_SUSPECT
            detail["state"] = REPLICA_SUSPECT
            kinds.enqueue_for_replica(s, kinds.AUDIT_AFTER_FAILED_CHALLENGE, replica_id, package_id=package_id)
        events.record_event(s, events.FIXITY_CHECK, events.SUCCESS if passed else events.FAILURE, agent=agent,
                            package_id=package_id, replica_id=replica_id, node_name=node.name, job_id=job_id,
                            policy=repo.policy.label, detail=detail)
    return outcome


def challenge_random(repo: Repository, *, count: int = 10, node_name: str | None = None,
                     agent: str = events.SYSTEM_AGENT) -> list[ChallengeOutcome]:
    """Challenge ``count`` randomly chosen verified copies (on ``node_name`` only, if given)."""
    with repo.catalog.session() as s:
        stmt = select(Replica.id).join(Node).where(Replica.state == REPLICA_VERIFIED, readable_node())
        if node_name:
            if s.execute(select(Node.id).where(Node.name == node_name)).scalar_one_or_none() is None:
                raise NotFound(f"no node named {node_name!r}: see `preserve node list`")
            stmt = stmt.where(Node.name == node_name)
        ids = list(s.scalars(stmt))
    rng = secrets.SystemRandom()
    outcomes = []
    for rid in rng.sample(ids, min(count, len(ids))):
        try:
            outcomes.append(challenge_replica(repo, rid, agent=agent))
        except (NotFound, NoVerifiedSource):
            continue  # nothing to challenge in it, or no second copy to check the answer against
    return outcomes

