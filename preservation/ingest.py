"""Ingest: a delivery becomes a registered package with verified copies.

1. The delivery (directory, bag, tar, zip) is checked in full before any
   byte is written; every problem is reported at once.
2. It is bagged into the staging area, both digests computed in the pass
   that copies the bytes (an existing bag is copied byte-identical).
3. Package, files, replicas, events and replication jobs are registered in
   one transaction: either all of it exists or none of it.
4. Each copy is written and re-read on its node; only when every copy the
   policy requires is verified is the package ``preserved``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, NamedTuple, Sequence

from sqlalchemy import func, insert, select

from preservation import events
from preservation.analysis import Analyser, Analysis
from preservation.bagit import (
    BagResult,
    DeliveryLimits,
    create_bag,
    default_profile,
    load_profile,
    open_delivery,
    validate_profile,
)
from preservation.catalog.models import (
    NODE_ACTIVE,
    PACKAGE_DEACCESSIONED,
    PACKAGE_REPLICATING,
    REPLICA_PENDING,
    Node,
    Package,
    PackageFile,
    Replica,
)
from preservation.chunks import ChunkAnalyser
from preservation.collection import get_collection
from preservation.concurrency import bounded_map
from preservation.errors import (
    BagInvalid, DeliveryRejected, DuplicateDelivery, InvalidRequest, PreservationError, VersionRefused,
)
from preservation.formats.analyser import FormatAnalyser
from preservation.jobs import claim as claims
from preservation.jobs import kinds
from preservation.metadata.analyser import MetadataAnalyser
from preservation.placement import Candidate, choose_nodes
from preservation.policy import Policy
from preservation.version_match import match_delivery
from preservation.local_copy import replicate_together
from preservation.node_records import flush_events
from preservation.package_state import release_staging_if_done
from preservation.replication import replicate_replica
from preservation.repository import Repository
from preservation import versions
from preservation.versions.new import unchanged_digests

PROFILE = default_profile()
"""The BagIt profile every bag made here satisfies (package data: an installed preserve has it)."""
INSERT_BATCH = 5000
STAGED_ALGORITHMS = ("sha256", "sha512")
"""The digests of a staged bag's manifests, in this order (``unchanged_digests`` gives them so)."""
INLINE_LEASE = timedelta(minutes=5)
"""How long an inline ingest's hold on its replicate jobs outlives its last renewal (a worker's default lease)."""

Progress = Callable[[str, int, int], None]
log = logging.getLogger("preserve.ingest")


class Staged(NamedTuple):
    """A delivery checked, bagged into staging and analysed, not yet registered."""

    package_id: str
    bag: BagResult
    delivery: Any
    analysis: Analysis


def default_analysers(repo: Repository) -> list[Analyser]:
    """A new set of the analysers every ingest runs (formats, metadata …), as the policy configures them."""
    return [FormatAnalyser(repo.policy.formats), MetadataAnalyser(), ChunkAnalyser()]


def _bag_info(package_id: str, collection: dict[str, str], name: str, policy_label: str,
              extra: dict[str, str]) -> dict[str, Any]:
    info: dict[str, Any] = {
        "External-Identifier": package_id,
        "Bag-Group-Identifier": collection["key"],
        "Source-Organization": collection["publisher"] or "unknown",
        "External-Description": collection["title"],
        "Internal-Sender-Identifier": name,
        "Publisher": collection["publisher"],
        "Licence": collection["licence"],
        "Preservation-Policy": policy_label,
    }
    info.update(extra)
    return {k: v for k, v in info.items() if v not in (None, "")}


def stage(
    repo: Repository,
    source: str | os.PathLike,
    collection_key: str,
    *,
    name: str | None = None,
    bag_info: dict[str, str] | None = None,
    progress: Progress | None = None,
    analysers: Sequence[Analyser] | None = None,
    previous: versions.Previous | None = None,
    follows: Callable[[dict[str, Any], str], versions.Previous | None] | None = None,
) -> Staged:
    """Check, bag and analyse a delivery into staging.

    ``analysers`` (by default :func:`default_analysers`) see each payload
    file's bytes in the bagging pass; their error findings refuse the
    delivery, their warnings join the bag's.

    With ``previous`` (the version the delivery follows), a payload file
    whose path, size and digests are those the version before holds is
    digested but not copied into staging: the new version references it
    where it is stored, and the staging bag holds the files the version
    stores.  An analyser that opens staged files (format validation) is
    asked which of them it can do without (it carries over what the version
    before learnt of the same bytes); the others are staged.

    ``follows`` (without ``previous``) is asked, for a delivery of local
    files, with the bag-info the bag will carry (but its computed tags) and
    the delivery's name, for the version it follows (the policy's matching
    rules): a hint only, which the caller must confirm once the bag is made.

    Raises DeliveryRejected / BagInvalid with every finding, PolicyError when
    the BagIt profile cannot be loaded (before anything is read or staged);
    leaves nothing behind.
    """
    source_path = Path(source)
    profile = load_profile(PROFILE)
    with repo.catalog.session() as s:
        collection = get_collection(s, collection_key)
        collection = {"key": collection.key, "title": collection.title, "publisher": collection.publisher,
                      "licence": collection.licence}
    delivery = open_delivery(source_path, strict=True, limits=delivery_limits(repo.policy))
    findings = delivery.check()
    if not findings.ok:
        delivery.close()
        raise DeliveryRejected(
            f"{len(findings.errors)} problem(s), first: {findings.errors[0]}", findings=list(findings),
            source=str(source_path),
        )
    package_id = str(uuid.uuid4())
    name = name or source_path.name
    target = repo.staging_dir / package_id
    partial = repo.staging_dir / f"{package_id}.partial"
    info = _bag_info(package_id, collection, name, repo.policy.label, bag_info or {})
    analysis = Analysis(default_analysers(repo) if analysers is None else analysers)
    try:
        if previous is None and follows is not None and delivery.kind == "directory":
            previous = follows(info, name)
        known = None
        if previous is not None:
            known = analysis.unstaged(repo.catalog, previous.package_id, previous.number,
                                      unchanged_digests(repo.catalog, previous))
        bag = create_bag(
            delivery, partial, info, algorithms=STAGED_ALGORITHMS, workers=repo.settings.workers,
            progress=(lambda b, f: progress("bag", b, f)) if progress else None,
            observe=analysis.observe if analysis.analysers else None, known=known,
        )
        analysis.bagged(bag)
        # a delivered bag is kept byte-identical, as its maker wrote it; the bags made here satisfy the profile
        if delivery.kind != "bag":
            report = validate_profile(partial, profile)
            if not report.ok:
                raise BagInvalid(
                    f"{len(report.errors)} profile finding(s), first: {report.errors[0]}", report=report,
                    path=str(source_path),
                )
        learnt = analysis.finish(str(partial))
        if not learnt.ok:
            raise DeliveryRejected(
                f"{len(learnt.errors)} problem(s) in the content, first: {learnt.errors[0]}", findings=list(learnt),
                source=str(source_path),
            )
        bag.findings.extend(learnt)
        os.replace(partial, target)
    except BaseException:
        analysis.close()  # its parsing child, its spool: now, not when the garbage collector finds them
        shutil.rmtree(partial, ignore_errors=True)
        raise
    finally:
        delivery.close()
    bag.path = target
    return Staged(package_id, bag, delivery, analysis)


def delivery_limits(policy: Policy) -> DeliveryLimits:
    """The policy's limits on archive deliveries, as the delivery check applies them."""
    return DeliveryLimits(
        max_compression_ratio=policy.delivery.max_expansion_ratio, max_total_bytes=policy.delivery.max_expanded_bytes
    )


def register(
    repo: Repository, package_id: str, bag: BagResult, collection_key: str, *, name: str, source: str,
    source_kind: str, agent: str, holder: claims.Holder | None = None, analysis: Analysis | None = None,
    version: versions.VersionPlan | None = None,
) -> dict[str, Any]:
    """Register package, files, placed replicas, events and jobs in ONE transaction.

    ``analysis`` (from :func:`stage`) writes what its analysers learnt in
    the same transaction; its summary and findings join the result.

    With ``holder``, the replicate jobs are created already held under its
    lease (the result's ``claims``), so no worker runs them while the holder
    copies inline.

    With ``version`` (from :func:`versions.plan_version`) the package is the
    next version of a lineage: its copies go to the previous version's nodes,
    only the files it stores get ``files`` rows, the rest are its references.
    """
    payload_files = len(bag.payload)
    payload_bytes = bag.payload.total_bytes
    total = payload_bytes + bag.tag_files.total_bytes
    with repo.catalog.session() as s:
        collection = get_collection(s, collection_key)
        nodes = s.scalars(select(Node).where(Node.status == NODE_ACTIVE)).all()
        used = dict(s.execute(select(Replica.node_id, func.coalesce(func.sum(Replica.bytes), 0)).group_by(Replica.node_id)).all())
        if version is None:
            chosen = choose_nodes(repo.policy.replication, [Candidate(n, used.get(n.id, 0)) for n in nodes], total)
        else:
            chosen = [s.get(Node, node_id) for node_id in version.previous.node_ids]
        package = Package(
            id=package_id, collection_id=collection.id, name=name, state=PACKAGE_REPLICATING, source=source,
            source_kind=source_kind, bagit_version=bag.version, payload_oxum=bag.payload_oxum,
            payload_files=payload_files, payload_bytes=payload_bytes, total_bytes=total,
            bag_info=_jsonable_info(bag.bag_info), policy=repo.policy.label, staging_path=str(bag.path),
        )
        s.add(package)
        s.flush()
        for batch in _file_rows(package_id, bag, version.stores if version is not None else None):
            s.execute(insert(PackageFile.__table__), batch)  # Core insert: no per-row ORM work
        if version is not None:
            versions.record_version(s, package_id, version)
        label = repo.policy.label
        common = {"agent": agent, "package_id": package_id, "policy": label}
        events.record_event(s, events.INGESTION, events.SUCCESS, **common,
                            detail={"source": source, "source_kind": source_kind, "collection": collection.key,
                                    "name": name, "files": payload_files, "bytes": payload_bytes,
                                    **({"version": version.summary()} if version is not None else {})})
        events.record_event(s, events.MESSAGE_DIGEST_CALCULATION, events.SUCCESS, **common,
                            detail={"algorithms": ["sha256", "sha512"], "files": payload_files,
                                    "computed": "in the pass that copied the bytes"})
        events.record_event(s, events.VALIDATION, events.SUCCESS, **common,
                            detail={"bagit_version": bag.version, "payload_oxum": bag.payload_oxum,
                                    "profile": None if source_kind == "bag" else PROFILE.name})
        # what the analysers learnt (their rows, their events) follows the package's own ingestion events
        learnt, found = analysis.register(s, package_id) if analysis is not None else ({}, None)
        replicas = []
        held: list[claims.Claim] = []
        for node in chosen:
            replica = Replica(package_id=package_id, node_id=node.id, state=REPLICA_PENDING)
            s.add(replica)
            s.flush()
            replicas.append(replica)
            job = kinds.enqueue_for_replica(s, kinds.REPLICATE_NEW_COPY, replica.id, package_id=package_id)
            if holder is not None:
                held.append(claims.hold(s, job, holder))
        events.record_event(s, events.INFORMATION_PACKAGE_CREATION, events.SUCCESS, **common,
                            detail={"state": PACKAGE_REPLICATING, "placement": [n.name for n in chosen]})
        result = {"package_id": package_id, "replica_ids": [r.id for r in replicas], "nodes": [n.name for n in chosen],
                  "files": payload_files, "bytes": payload_bytes, "total_bytes": total}
        if version is not None:
            result["version"] = version.summary()
        warnings = [*bag.findings, *(found or ())]
        if learnt:
            result["content"] = learnt
        if warnings:
            result["warnings"] = [f.to_dict() for f in warnings]
        if holder is not None:
            result["claims"] = held
        return result


def _file_rows(package_id: str, bag: BagResult,
               stores: Callable[[str], bool] | None = None) -> Iterator[list[dict[str, Any]]]:
    """The bag's file rows for the catalog (those ``stores`` keeps, when given), in batches."""
    batch: list[dict[str, Any]] = []
    for table, is_tag in ((bag.payload, False), (bag.tag_files, True)):
        for i in range(len(table)):
            if stores is not None and not stores(table.path_at(i)):
                continue
            batch.append({"package_id": package_id, "path": table.path_at(i), "size": table.size_at(i),
                          "sha256": table.hexdigest_at(i, "sha256"), "sha512": table.hexdigest_at(i, "sha512"),
                          "is_tag": is_tag})
            if len(batch) >= INSERT_BATCH:
                yield batch
                batch = []
    if batch:
        yield batch


def _jsonable_info(info: Any) -> dict[str, Any]:
    return {str(k): (list(v) if isinstance(v, (list, tuple)) else str(v)) for k, v in dict(info or {}).items()}


def payload_manifest_digest(entries: Iterable[tuple[str, str]]) -> str:
    """One digest of a payload manifest, whatever the order of its (path, sha256) entries.

    The sum modulo 2^256 of each entry's SHA-256: computed while streaming the
    catalog's rows in any order, in constant memory.
    """
    total = 0
    for path, sha256 in entries:
        total = (total + int.from_bytes(hashlib.sha256(f"{path}\0{sha256}".encode()).digest(), "big")) % (1 << 256)
    return f"{total:064x}"


def find_duplicate(session, payload_oxum: str, digest: str) -> str | None:
    """The id of a package (not deaccessioned) whose payload has this Payload-Oxum and manifest digest, if any.

    The oxum (bytes.files) narrows the candidates to packages of the same size; their manifests are then
    compared by :func:`payload_manifest_digest` over their catalog rows.
    """
    candidates = session.scalars(select(Package.id).where(Package.payload_oxum == payload_oxum,
                                                          Package.state != PACKAGE_DEACCESSIONED)).all()
    for candidate in candidates:
        rows = session.execute(select(PackageFile.path, PackageFile.sha256).where(
            PackageFile.package_id == candidate, PackageFile.is_tag.is_(False)).execution_options(yield_per=5000))
        if payload_manifest_digest((path, sha) for path, sha in rows) == digest:
            return candidate
    return None


def check_not_duplicate(repo: Repository, bag: BagResult) -> None:
    """Refuse a bag whose payload (every path and its SHA-256) is a package's already held: raises DuplicateDelivery."""
    table = bag.payload
    digest = payload_manifest_digest((table.path_at(i), table.hexdigest_at(i, "sha256")) for i in range(len(table)))
    with repo.catalog.session() as s:
        found = find_duplicate(s, bag.payload_oxum, digest)
    if found is not None:
        raise DuplicateDelivery(f"this delivery is identical to package {found} (same files, same SHA-256 digests): "
                                "nothing was registered; to keep a second copy anyway use --allow-duplicate",
                                package=found)


def ingest(
    repo: Repository,
    source: str | os.PathLike,
    collection_key: str,
    *,
    name: str | None = None,
    bag_info: dict[str, str] | None = None,
    agent: str = events.SYSTEM_AGENT,
    replicate: bool = True,
    progress: Progress | None = None,
    analysers: Sequence[Analyser] | None = None,
    version_of: str | None = None,
    allow_duplicate: bool = True,
) -> dict[str, Any]:
    """Stage, bag, register and (with ``replicate``) copy and verify every replica inline.

    ``allow_duplicate`` False refuses (DuplicateDelivery, nothing registered, staging removed) a delivery
    whose payload is that of a package already held (:func:`check_not_duplicate`); the CLI asks for that.

    ``analysers``: see :func:`stage` (``[]`` bags without content analysis).

    ``version_of`` (a package id) makes the delivery the next version of
    that package (docs/versions.md): checked before anything is staged,
    compared with the newest version after bagging, registered with only
    its added and changed files stored.  Without it, the policy's
    ``versions.match_on`` rules may find the package it follows
    (:mod:`preservation.version_match`; the result's ``matched`` says which
    and on what).

    Inline, this process owns the replicate jobs it registers: they are
    created under its lease, renewed while it copies, so a running worker
    never copies the same replica at the same time.  A copy that fails is
    handed back to the queue for the workers to retry.
    """
    if not Path(source).exists():
        raise InvalidRequest(f"the delivery {source} does not exist")
    previous = None
    if version_of is not None:
        with repo.catalog.session() as s:
            previous = versions.previous_version(s, version_of, collection_key)
    hinted: list[versions.Previous] = []

    def follows(info: dict[str, Any], delivered: str) -> versions.Previous | None:
        """The policy's match before bagging (staging then leaves out the unchanged files), confirmed after."""
        found = match_delivery(repo, collection_key, info, delivered)
        if found is None:
            return None
        with repo.catalog.session() as s:
            hinted.append(versions.previous_version(s, found.lineage_id, collection_key))
        return hinted[0]

    package_id, bag, delivery, analysis = stage(
        repo, source, collection_key, name=name, bag_info=bag_info, progress=progress, analysers=analysers,
        previous=previous, follows=follows if previous is None and repo.policy.versions.match_on else None)
    holder = claims.Holder(claims.new_lease_owner(), INLINE_LEASE, agent) if replicate else None
    plan = matched = None
    try:
        if previous is None:  # the policy may know which package it follows (version_match)
            matched = match_delivery(repo, collection_key, bag.bag_info, name or Path(source).name)
            if matched is not None:
                with repo.catalog.session() as s:
                    previous = versions.previous_version(s, matched.lineage_id, collection_key)
            if hinted and (previous is None or previous.package_id != hinted[0].package_id):
                raise VersionRefused(package=hinted[0].lineage_id, detail=(
                    f"the delivery was staged as the version after {hinted[0].package_id} (the policy's rules, "
                    f"before bagging) but follows {previous.package_id if previous else 'no package'} once "
                    "bagged: ingest it again"))
        if not allow_duplicate and previous is None:
            check_not_duplicate(repo, bag)
        if previous is not None:
            plan = versions.plan_version(repo.catalog, previous, bag)
        result = register(repo, package_id, bag, collection_key, name=name or Path(source).name,
                          source=str(Path(source).resolve()), source_kind=delivery.kind, agent=agent, holder=holder,
                          analysis=analysis, version=plan)
    except BaseException:
        shutil.rmtree(bag.path, ignore_errors=True)
        raise
    finally:
        analysis.close()  # refused (a duplicate, a version refused), failed or registered: what it holds goes now
        if plan is not None:
            plan.discard()
    if matched is not None:
        result["matched"] = matched.to_dict()
    if holder is None:
        result["state"] = PACKAGE_REPLICATING
        return result
    held = result.pop("claims")
    with claims.LeaseKeeper(repo.catalog, holder, held) as keeper:
        copies = _replicate_new_package(repo, held, keeper, holder, progress=progress)
    release_staging_if_done(repo.catalog, package_id)
    try:  # the copies' own events (verified, preserved) came after their records: one more write per node
        flush_events(repo, package_id)
    except PreservationError as e:
        log.warning("package %s: the events files on the nodes were not brought up to date: %s", package_id, e)
    with repo.catalog.session() as s:
        result["state"] = s.get(Package, package_id).state
    result["copies"] = copies
    return result


def _replicate_new_package(repo: Repository, held: list[claims.Claim], keeper: claims.LeaseKeeper,
                           holder: claims.Holder, *, progress: Progress | None) -> list[dict[str, Any]]:
    """Write and verify the new package's copies now, each under its held job.

    On local filesystem nodes all copies are written in one pass over the
    staging bag (replicate_together).  Elsewhere the first copy is verified
    with both digests, then the others are written side by side.
    """
    on_copy = (lambda b, f: progress("copy", b, f)) if progress else None
    replica_ids = [c.payload["replica_id"] for c in held]
    together = replicate_together(repo, replica_ids, agent=holder.agent, progress=on_copy)
    if together is None:
        first, *others = held
        copies = [_replicate_held(repo, first, keeper, holder, progress)]
        copies += bounded_map(lambda claim: _replicate_held(repo, claim, keeper, holder, progress),
                              others, workers=max(1, min(len(others), repo.settings.workers)))
        return copies
    return [_close_held(repo, claim, keeper, holder, outcome) for claim, outcome in zip(held, together)]


def _replicate_held(repo: Repository, claim: claims.Claim, keeper: claims.LeaseKeeper, holder: claims.Holder,
                    progress: Progress | None) -> dict[str, Any]:
    try:
        outcome = replicate_replica(repo, claim.payload["replica_id"], agent=holder.agent, job_id=claim.job_id,
                                    progress=(lambda b, f: progress("copy", b, f)) if progress else None)
    except PreservationError as e:
        outcome = e
    return _close_held(repo, claim, keeper, holder, outcome)


def _close_held(repo: Repository, claim: claims.Claim, keeper: claims.LeaseKeeper, holder: claims.Holder,
                outcome: dict[str, Any] | PreservationError) -> dict[str, Any]:
    """Record the held job's outcome: done, or handed back to the queue for a worker to retry at once."""
    replica_id = claim.payload["replica_id"]
    keeper.finished(claim)
    if isinstance(outcome, PreservationError):
        claims.fail(repo.catalog, claim, f"{outcome.code} {type(outcome).__name__}: {outcome}",
                    error_code=outcome.code, retryable=outcome.retryable, delay=0, agent=holder.agent)
        return {"replica_id": replica_id, "state": REPLICA_PENDING, "error": outcome.to_dict()}
    summary = {k: outcome[k] for k in ("replica_id", "node", "state", "files_copied", "bytes_copied") if k in outcome}
    claims.complete(repo.catalog, claim, {"inline": True, **summary}, agent=holder.agent)
    return outcome
