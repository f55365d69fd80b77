"""Rebuilding a lost catalog from the nodes: bags are self-describing.

For every package found on the registered nodes (through the package records
in ``.preserve/packages/``, or with ``scan`` by looking for ``*/bagit.txt``)
the bag's tag files give the collection, the bag-info and every payload
digest; sizes come from the node's listing; digests a foreign bag's manifests
lack are computed on the node.  Each copy is registered ``suspect`` and then
audited in full, so the rebuilt catalog trusts nothing it has not re-read.

The package records and events files are checked first on every node that
holds the package (:mod:`preservation.package_evidence`, with the
coordinator's public keys beside ``checkpoints.key``): a record whose signed
evidence does not verify is not used, and neither is an events file that
differs from its hashes or its signature.  The events of the files that hold
are merged by ``seq``.  An event is confirmed when a verified signature covers
it or when its hash is the one the nodes witnessed (the event hashes each
witnessed checkpoint added, under ``.preserve/witness/``); a copy whose hash
differs from the witnessed one is dropped, and copies that disagree, or
neighbours whose chain link breaks, are restored only where confirmed
(``R008`` otherwise).  With keys, an unconfirmed event is restored only when it
links to a restored event just before it (no gap in ``seq``), and a witness
record's event hashes only when they lead to the root its note signs.  The
restored events are appended to the new catalog's log in their old order, in
one transaction, each with its old ``seq``, ``hash`` and ``prev_hash`` under
``detail.restored``: the new log verifies on its own, and the old hashes can
still be checked against the old checkpoints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from sqlalchemy import func, insert, select

from preservation import events, merkle
from preservation.audit import audit_replica
from preservation.bagit.tagfiles import parse_oxum, read_bag_metadata_from_adapter
from preservation.catalog.models import (
    PACKAGE_REPLICATING,
    REPLICA_SUSPECT,
    Collection,
    Node,
    Package,
    PackageFile,
    Replica,
)
from preservation.checkpoints import public_keys
from preservation.codes import (
    REBUILD_BAG_PROBLEM,
    REBUILD_DIGEST_MISMATCH,
    REBUILD_EVENT_UNCONFIRMED,
    REBUILD_NODE_FAILED,
    REBUILD_NO_BAGIT,
    REBUILD_NO_COLLECTION,
    note,
)
from preservation.errors import InvalidRequest, PreservationError
from preservation.findings import FindingList
from preservation.layout import PackageLayout, recorded_package_ids
from preservation.notes import verify_note
from preservation.package_evidence import Keys, RecordCheck, check_record
from preservation.package_state import readable_node
from preservation.repository import Repository
from preservation.versions import rebind_version
from preservation.witness_records import edge_root, extend, held_records, read_leaves
from storage_adapters import StorageAdapter

BATCH = 5000
ALGORITHMS = ("sha256", "sha512")


@dataclass
class RebuildReport:
    packages: list[str] = field(default_factory=list)
    replicas: int = 0
    files: int = 0
    audited_ok: int = 0
    audited_failed: int = 0
    events_restored: int = 0
    repository_events_restored: int = 0  # of events_restored: those that name no package
    findings: FindingList = field(default_factory=FindingList)

    @property
    def ok(self) -> bool:
        return self.findings.ok and self.audited_failed == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "packages": len(self.packages), "package_ids": self.packages, "replicas": self.replicas,
            "files": self.files, "audited_ok": self.audited_ok, "audited_failed": self.audited_failed,
            "events_restored": self.events_restored, "repository_events_restored": self.repository_events_restored,
            "findings": self.findings.to_list(),
        }


def _package_ids(adapter: StorageAdapter, scan: bool) -> set[str]:
    ids = set(recorded_package_ids(adapter))
    if scan:
        for info in adapter.list(""):
            head, _, rest = info.key.partition("/")
            if rest == "bagit.txt" and not head.startswith("."):
                ids.add(head)
    return ids


_RECORD_FIELDS = {"name": str, "source_kind": str, "policy": str, "collection": dict, "version": dict}


def _well_formed(record: dict[str, Any], *, signed: bool) -> dict[str, Any]:
    """The record's fields of the right type (an unsigned record is outside text: one of the wrong type is
    left out, and the bag's own tag files say instead).  Who may read a collection is never taken from an
    unsigned record: without a signed one the collection is rebuilt ``dark``."""
    out = {k: v for k, v in record.items() if k in _RECORD_FIELDS and isinstance(v, _RECORD_FIELDS[k])}
    if "collection" in out:
        out["collection"] = {k: v for k, v in out["collection"].items()
                             if isinstance(v, str) and (signed or k != "access_mode")}
    return out


def _chosen_record(checks: list[RecordCheck]) -> dict[str, Any]:
    """The package's record to register it from: a signed one first, else an unsigned one (only usable when
    the home has no key, see :func:`check_record`), else nothing (the bag says)."""
    usable = sorted((c for c in checks if c.record is not None), key=lambda c: not c.signed)
    return _well_formed(usable[0].record, signed=usable[0].signed) if usable else {}


def _coordinator_keys(repo: Repository) -> Keys:
    """The public keys beside ``checkpoints.key`` (none without one: every signed record is then untrusted)."""
    if repo.settings.checkpoints.key is None:
        return {}
    return public_keys(repo.settings)


@dataclass
class _Version:
    event: dict[str, Any]
    nodes: list[str]
    signed: bool


def witnessed_hashes(repo: Repository, nodes: list[Node], wanted: set[int], keys: Keys,
                     findings: FindingList) -> dict[int, str]:
    """The hashes of events ``wanted`` as the nodes witnessed them (``.preserve/witness/``: each checkpoint's
    note, signed by a coordinator key, and the event hashes it added), for the log of every key's name (the
    old log's too when the rebuilt one was given an origin of its own); a seq two nodes witnessed differently
    (a fork shown to them) is left out, with a finding."""
    origins = sorted({name for name, _key in keys.values()})
    if not origins or not wanted:
        return {}
    low, high = min(wanted), max(wanted)
    seen: dict[int, set[str]] = {}
    for node, origin in ((n, o) for n in nodes for o in origins):
        adapter = repo.adapter(node)
        try:
            records = {int(r["size"]): r for r in held_records(adapter, origin)}
            for size, record in sorted(records.items()):
                start = int(record["from"])
                if size <= start or size < low or start >= high:
                    continue
                leaves = read_leaves(adapter, origin, size)
                if not _leaves_give_the_signed_root(records, start, size, leaves, keys):
                    note(findings, REBUILD_EVENT_UNCONFIRMED,
                         f"the event hashes of its witness record of size {size} do not lead to the signed root: "
                         "not used", path=node.name)
                    continue
                for i in range(size - start):
                    if start + 1 + i in wanted:
                        seen.setdefault(start + 1 + i, set()).add(leaves[i * 32:(i + 1) * 32].hex())
        except (PreservationError, ValueError, KeyError, TypeError) as e:
            note(findings, REBUILD_NODE_FAILED, f"its witness records cannot be used: {e}", path=node.name)
    for seq in sorted(s for s, hashes in seen.items() if len(hashes) > 1):
        note(findings, REBUILD_EVENT_UNCONFIRMED, f"nodes witnessed different hashes for event {seq} (a fork)",
             path=f"seq {seq}")
    return {seq: next(iter(hashes)) for seq, hashes in seen.items() if len(hashes) == 1}


def _signed_edge(records: dict[int, dict[str, Any]], size: int, keys: Keys) -> list[bytes] | None:
    """The tree's right edge at ``size`` as the record of that size holds it, when it gives the root the
    record's note signs (the empty tree's edge for 0); None otherwise."""
    if size == 0:
        return []
    record = records.get(size)
    if record is None:
        return None
    signed = verify_note(str(record["note"]), keys)
    edge = list(record["frontier"])
    if signed.size != size or len(edge) != bin(size).count("1") or edge_root(edge) != signed.root:
        return None
    return edge


def _leaves_give_the_signed_root(records: dict[int, dict[str, Any]], start: int, size: int, leaves: bytes,
                                 keys: Keys) -> bool:
    """Whether the event hashes a witness record added, folded onto the previous record's signed right edge,
    give the root its own note signs (a file:// or s3:// node's leaves are written by whoever can write there).
    Raises CheckpointInvalid for a note no key signs."""
    before = _signed_edge(records, start, keys)
    if before is None or len(leaves) != (size - start) * merkle.HASH_SIZE:
        return False
    signed = verify_note(str(records[size]["note"]), keys)
    after = extend(before, start, leaves)
    return signed.size == size and edge_root(after) == signed.root


def _subject(ev: dict[str, Any]) -> str:
    """What a finding about an event names: its package, or the repository record for one that names none."""
    return ev["package_id"] or "repository events"


def merge_events(checks: list[RecordCheck], findings: FindingList, witnessed: dict[int, str] | None = None, *,
                 keyed: bool = True) -> list[dict[str, Any]]:
    """The events to restore, in ``seq`` order, from the events files that held (see the module's text).

    An event is confirmed when a verified signature covers it or its hash is the one the nodes witnessed;
    a copy whose hash differs from the witnessed one is dropped.  When the coordinator has keys
    (``keyed``), an event no signature or witness confirms is restored only when it links to the event just
    before it (``seq - 1``, no gap) and that one is restored: anyone who can write to a node can append lines
    that hash well."""
    witnessed = witnessed or {}
    by_seq: dict[int, dict[str, _Version]] = {}
    for check in checks:
        for i, ev in enumerate(check.events):
            version = by_seq.setdefault(ev["seq"], {}).setdefault(ev["hash"], _Version(ev, [], False))
            version.nodes.append(check.node)
            version.signed = version.signed or i < check.signed_events
    chosen: dict[int, _Version] = {}
    for seq, versions in by_seq.items():
        if seq in witnessed:
            for h in [h for h in versions if h != witnessed[seq]]:
                note(findings, REBUILD_EVENT_UNCONFIRMED, f"event {seq} on {', '.join(versions[h].nodes)} differs "
                                                          "from the hash the nodes witnessed: not restored",
                     path=_subject(versions[h].event))
                del versions[h]
            for v in versions.values():
                v.signed = True  # the witnesses vouch for it
        if len(versions) == 1:
            chosen[seq] = next(iter(versions.values()))
            continue
        if not versions:
            continue
        signed = [v for v in versions.values() if v.signed]
        said = "; ".join(f"{', '.join(v.nodes)}: {h[:12]}" for h, v in versions.items())
        if len(signed) == 1:
            chosen[seq] = signed[0]
            note(findings, REBUILD_EVENT_UNCONFIRMED, f"event {seq} differs between nodes ({said}): the one the "
                                                      f"evidence signed on {', '.join(signed[0].nodes)} is restored",
                 path=_subject(signed[0].event))
        else:
            note(findings, REBUILD_EVENT_UNCONFIRMED, f"event {seq} differs between nodes ({said}) and no single "
                                                      "signed copy settles it: not restored",
                 path=_subject(next(iter(versions.values())).event))
    seqs = sorted(chosen)
    unconfirmed: set[int] = set()
    for a, b in zip(seqs, seqs[1:]):
        if b == a + 1 and chosen[b].event["prev_hash"] != chosen[a].event["hash"]:
            dropped = [s for s in (a, b) if not chosen[s].signed]
            unconfirmed.update(dropped)
            note(findings, REBUILD_EVENT_UNCONFIRMED, f"the chain link from event {a} to event {b} is broken: "
                                                      + (f"event(s) {', '.join(map(str, dropped))} not restored"
                                                         if dropped else "both are confirmed, both restored"),
                 path=_subject(chosen[b].event))
    kept = [s for s in seqs if s not in unconfirmed]
    if keyed:
        kept = _chained_from_confirmed(kept, chosen, findings)
    return [chosen[s].event for s in kept]


def _chained_from_confirmed(seqs: list[int], chosen: dict[int, _Version], findings: FindingList) -> list[int]:
    """``seqs`` less every unconfirmed event that does not link, without a gap, to a restored event."""
    kept: list[int] = []
    restored: dict[int, str] = {}
    for seq in seqs:
        ev = chosen[seq].event
        if chosen[seq].signed or restored.get(seq - 1) == ev["prev_hash"]:
            kept.append(seq)
            restored[seq] = ev["hash"]
        else:
            note(findings, REBUILD_EVENT_UNCONFIRMED, f"event {seq} on {', '.join(chosen[seq].nodes)} is covered by "
                                                      "no signature or witness record and does not follow a restored "
                                                      "event: not restored", path=_subject(ev))
    return kept


def _restore_events(repo: Repository, restored: list[dict[str, Any]]) -> None:
    """Append the old events to the new log in their old order, their old chain under ``detail.restored``, in
    one transaction: all of them or none (their fields were checked when the events file was read)."""
    with repo.catalog.session() as s:
        for start in range(0, len(restored), BATCH):
            for ev in restored[start:start + BATCH]:
                events.record_event(
                    s, ev["event_type"], ev["outcome"], agent=ev["agent"], package_id=ev["package_id"],
                    node_name=ev["node_name"], policy=ev["policy"],
                    occurred_at=datetime.fromisoformat(ev["occurred_at"]),
                    detail={**ev["detail"], "restored": {k: ev[k] for k in ("seq", "event_id", "hash", "prev_hash",
                                                                             "replica_id", "job_id")}},
                )
            s.flush()
            s.expunge_all()  # written to the transaction: the session need not hold every restored event


def _collection(session, record: dict[str, Any], info, findings: FindingList, package_id: str) -> Collection | None:
    meta = record.get("collection") or {}
    key = meta.get("key") or info.get("Bag-Group-Identifier")
    if not key:
        findings.add(REBUILD_NO_COLLECTION, "neither a package record nor Bag-Group-Identifier names its collection",
                     path=package_id)
        return None
    found = session.execute(select(Collection).where(Collection.key == key)).scalar_one_or_none()
    if found is None:
        found = Collection(
            key=key, title=meta.get("title") or info.get("External-Description") or key,
            publisher=meta.get("publisher") or info.get("Publisher") or "",
            licence=meta.get("licence") or info.get("Licence") or "",
            access_mode=meta.get("access_mode") or "dark",
        )
        session.add(found)
        session.flush()
    return found


def _file_rows(adapter: StorageAdapter, package_id: str, metadata, findings: FindingList) -> list[dict[str, Any]]:
    layout = PackageLayout(package_id)
    sizes = {layout.path_of(o.key): o.size for o in adapter.list(layout.prefix)}
    known: dict[str, dict[str, str]] = {path: dict(d) for path, d in metadata.payload_entries()}
    for manifest in metadata.tag_manifests.values():
        for path, digest in manifest.entries.items():
            known.setdefault(path, {})[manifest.algorithm] = digest
    for path in sizes:
        if not path.startswith("data/"):
            known.setdefault(path, {})  # every tag file, listed in a tag manifest or not
    rows: list[dict[str, Any]] = []
    need: dict[str, set[str]] = {}
    for path, digests in known.items():
        if path not in sizes:
            continue  # reported by the audit that follows (A001)
        missing = {a for a in ALGORITHMS if a not in digests}
        if missing:
            need[path] = missing | {a for a in digests if a not in ALGORITHMS}
    computed: dict[str, dict[str, str]] = {}
    if need:
        algorithms = sorted({a for s in need.values() for a in s} | set(ALGORITHMS))
        for res in adapter.digest_many([layout.key(p) for p in sorted(need)], algorithms):
            path = layout.path_of(res.key)
            if res.error is not None:
                findings.add(REBUILD_NODE_FAILED, str(res.error), path=layout.key(path))
                continue
            for algorithm, value in known[path].items():
                if res.digests.get(algorithm) not in (None, value):
                    findings.add(REBUILD_DIGEST_MISMATCH, f"{algorithm} on the node differs from the bag's manifest",
                                 path=layout.key(path))
            computed[path] = dict(res.digests)
    for path, digests in known.items():
        if path not in sizes:
            continue
        merged = {**digests, **computed.get(path, {})}
        if not all(a in merged for a in ALGORITHMS):
            continue
        rows.append({"package_id": package_id, "path": path, "size": sizes[path], "sha256": merged["sha256"],
                     "sha512": merged["sha512"], "is_tag": not path.startswith("data/")})
    return rows


def rebuild_from_nodes(
    repo: Repository, *, scan: bool = False, audit: bool = True, agent: str = events.SYSTEM_AGENT,
    progress: Callable[[str], None] | None = None,
) -> RebuildReport:
    """Register every package found on the nodes; raises InvalidRequest if the catalog already has packages."""
    report = RebuildReport()
    with repo.catalog.session() as s:
        if s.scalar(select(func.count()).select_from(Package)):
            raise InvalidRequest("the catalog already holds packages: rebuild only into a fresh catalog "
                                 "(`preserve init` with a new catalog, then `preserve node add` for each node)")
        nodes = s.scalars(select(Node).where(readable_node()).order_by(Node.name)).all()
    if not nodes:
        raise InvalidRequest("no nodes are registered: add them with `preserve node add` first")
    holders: dict[str, list[Node]] = {}
    for node in nodes:
        try:
            for pid in _package_ids(repo.adapter(node), scan):
                holders.setdefault(pid, []).append(node)
        except PreservationError as e:
            report.findings.add(REBUILD_NODE_FAILED, str(e), path=node.name)
    keys = _coordinator_keys(repo)
    checks: dict[str, list[RecordCheck]] = {}
    for package_id in sorted(holders):
        checks[package_id] = [check_record(repo.adapter(n), package_id, keys, node=n.name) for n in holders[package_id]]
        for check in checks[package_id]:
            report.findings.extend(check.findings)
    # the events that name no package (nodes changed, policy reloads, trigger events …): each node's
    # repository record, checked like a package's, its events merged with theirs so the chain links across both
    repository_checks = []
    for node in nodes:
        try:
            repository_checks.append(check_record(repo.adapter(node), None, keys, node=node.name))
        except PreservationError as e:
            report.findings.add(REBUILD_NODE_FAILED, str(e), path=node.name)
    for check in repository_checks:
        report.findings.extend(check.findings)
    every_check = [c for cs in checks.values() for c in cs] + repository_checks
    witnessed = witnessed_hashes(repo, nodes, {ev["seq"] for c in every_check for ev in c.events}, keys,
                                 report.findings)
    restored = merge_events(every_check, report.findings, witnessed, keyed=bool(keys))
    _restore_events(repo, restored)
    report.events_restored = len(restored)
    report.repository_events_restored = sum(1 for ev in restored if ev["package_id"] is None)
    replica_ids: list[int] = []
    versioned: dict[str, tuple[dict[str, Any], list[Any]]] = {}
    for package_id in sorted(holders):
        first = holders[package_id][0]
        adapter = repo.adapter(first)
        metadata = read_bag_metadata_from_adapter(adapter, PackageLayout(package_id).prefix)
        if metadata.declaration is None:
            report.findings.add(REBUILD_NO_BAGIT, f"no bagit.txt on node {first.name}", path=package_id)
            continue
        for f in metadata.findings.errors:
            report.findings.add(REBUILD_BAG_PROBLEM, str(f), path=package_id)
        record = _chosen_record(checks[package_id])
        rows = _file_rows(adapter, package_id, metadata, report.findings)
        info = metadata.bag_info
        with repo.catalog.session() as s:
            collection = _collection(s, record, info, report.findings, package_id)
            if collection is None:
                continue
            payload = [r for r in rows if not r["is_tag"]]
            oxum = parse_oxum(info.get("Payload-Oxum") or "") if record.get("version") else None
            package = Package(
                id=package_id, collection_id=collection.id,
                name=record.get("name") or info.get("Internal-Sender-Identifier") or package_id,
                state=PACKAGE_REPLICATING, source=f"rebuilt from node {first.name}",
                source_kind=record.get("source_kind", "bag"), bagit_version=metadata.version or "1.0",
                payload_oxum=info.get("Payload-Oxum") or f"{sum(r['size'] for r in payload)}.{len(payload)}",
                payload_files=oxum[1] if oxum else len(payload),
                payload_bytes=oxum[0] if oxum else sum(r["size"] for r in payload),
                total_bytes=sum(r["size"] for r in rows), bag_info=info.as_dict(),
                policy=record.get("policy") or repo.policy.label,
            )
            s.add(package)
            s.flush()
            for start in range(0, len(rows), BATCH):
                s.execute(insert(PackageFile), rows[start:start + BATCH])
            for node in holders[package_id]:
                replica = Replica(package_id=package_id, node_id=node.id, state=REPLICA_SUSPECT,
                                  bytes=package.total_bytes)
                s.add(replica)
                s.flush()
                replica_ids.append(replica.id)
                report.replicas += 1
            events.record_event(
                s, events.METADATA_MODIFICATION, events.SUCCESS, agent=agent, package_id=package_id,
                policy=repo.policy.label,
                detail={"action": "catalog rebuilt from nodes", "read_from": first.name,
                        "copies_found_on": [n.name for n in holders[package_id]], "files": len(rows)},
            )
        if record.get("version"):
            versioned[package_id] = (record, metadata.fetch or [])
        report.packages.append(package_id)
        report.files += len(rows)
        if progress:
            progress(package_id)
    for package_id, (record, fetch) in sorted(versioned.items(), key=lambda kv: kv[1][0]["version"].get("number", 0)):
        with repo.catalog.session() as s:  # every package is registered: bind the versions to what they reference
            for problem in rebind_version(s, package_id, record, fetch):
                report.findings.add(REBUILD_BAG_PROBLEM, problem, path=package_id)
    if audit:
        for rid in replica_ids:
            one = audit_replica(repo, rid, agent=agent)
            if one.ok:
                report.audited_ok += 1
            else:
                report.audited_failed += 1
    return report
