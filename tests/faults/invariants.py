"""The design invariants, checked from outside: the catalog against the bytes on the node roots.

Nothing here uses preserve's own fixity code: files are walked and hashed
directly on disk and compared with the catalog's rows, so a bug in the audit
cannot hide a bug elsewhere.  Each check returns a list of violations (empty
when the invariant holds), worded so that a failing test says what broke.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

from sqlalchemy import select

from preservation.catalog.models import (
    NODE_ACTIVE,
    NODE_OFFLINE,
    PACKAGE_PRESERVED,
    REPLICA_COPYING,
    REPLICA_CORRUPT,
    REPLICA_MISSING,
    REPLICA_PENDING,
    REPLICA_REPAIRING,
    REPLICA_VERIFIED,
    Job,
    Node,
    Package,
    PackageFile,
    Replica,
)
from preservation.events import hash_of_exported, verify_chain
from preservation.jobs.queue import DEAD, LIVE_STATES
from preservation.layout import EVENTS_SUFFIX
from preservation.placement import unmet_requirements
from preservation.repository import Repository
from storage_adapters.filesystem import TEMP_DIR

RECORDS = ".preserve/packages"

Key = tuple[str, str, str]  # (node name, package id, path in the bag)

# the job that must be live while a copy is in this state (nodes that are offline are left alone)
WAITING_FOR = {REPLICA_PENDING: "replicate", REPLICA_COPYING: "replicate", REPLICA_CORRUPT: "repair",
               REPLICA_MISSING: "repair", REPLICA_REPAIRING: "repair"}


@dataclass
class Damage:
    """Damage done behind the system's back (bit rot, lost files), before ``since`` (catalog time)."""

    since: datetime
    changed: set[Key] = field(default_factory=set)
    missing: set[Key] = field(default_factory=set)
    extra: set[Key] = field(default_factory=set)

    @property
    def replicas(self) -> set[tuple[str, str]]:
        return {(n, p) for n, p, _ in self.changed | self.missing | self.extra}


@dataclass(frozen=True)
class FileRowDigest:
    size: int
    sha256: str
    sha512: str


def node_root(uri: str) -> Path:
    return Path(unquote(urlsplit(uri).path))


def file_digests(path: Path) -> tuple[int, str, str]:
    """(size, sha256, sha512) of the file at ``path``."""
    h256, h512 = hashlib.sha256(), hashlib.sha512()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h256.update(chunk)
            h512.update(chunk)
            size += len(chunk)
    return size, h256.hexdigest(), h512.hexdigest()


def tree(root: Path) -> dict[str, Path]:
    """Every regular file under ``root``, by '/'-separated relative path (names as os.fsdecode gives them)."""
    out: dict[str, Path] = {}
    if not root.is_dir():
        return out
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            full = Path(dirpath) / name
            out[full.relative_to(root).as_posix()] = full
    return out


@dataclass
class CatalogView:
    packages: dict[str, str]  # id -> state
    files: dict[str, dict[str, FileRowDigest]]  # package id -> path -> digests
    replicas: list[tuple[int, str, str, str, str, datetime | None]]  # id, package, node, node status, state, audited
    roots: dict[str, Path]  # node name -> root
    node_types: dict[str, Node]
    live_jobs: set[str]  # dedupe keys of queued, running or failed jobs
    dead_jobs: list[str]
    chain_ok: bool
    chain_breaks: list[str]
    _digests: dict[Path, tuple[int, str, str]] = field(default_factory=dict)

    def digests(self, path: Path) -> tuple[int, str, str]:
        """:func:`file_digests`, each file read once per check (nothing writes while a check runs)."""
        found = self._digests.get(path)
        if found is None:
            found = self._digests[path] = file_digests(path)
        return found


def read_catalog(repo: Repository) -> CatalogView:
    with repo.catalog.session() as s:
        packages = {p.id: p.state for p in s.scalars(select(Package))}
        files: dict[str, dict[str, FileRowDigest]] = {pid: {} for pid in packages}
        for f in s.scalars(select(PackageFile)):
            files[f.package_id][f.path] = FileRowDigest(f.size, f.sha256, f.sha512)
        nodes = list(s.scalars(select(Node)))
        for n in nodes:
            s.expunge(n)
        replicas = [
            (r.id, r.package_id, r.node.name, r.node.status, r.state, r.last_audit_at)
            for r in s.scalars(select(Replica).order_by(Replica.id))
        ]
        live = {j.dedupe_key for j in s.scalars(select(Job).where(Job.state.in_(LIVE_STATES))) if j.dedupe_key}
        dead = [f"job {j.id} ({j.kind}): {j.last_error}" for j in s.scalars(select(Job).where(Job.state == DEAD))]
        chain = verify_chain(s)
    return CatalogView(
        packages=packages, files=files, replicas=replicas, roots={n.name: node_root(n.uri) for n in nodes},
        node_types={n.name: n for n in nodes}, live_jobs=live, dead_jobs=dead, chain_ok=chain.ok,
        chain_breaks=[b.reason for b in chain.breaks[:3]],
    )


def copy_problems(view: CatalogView, node: str, package_id: str) -> list[str]:
    """How the bag of ``package_id`` on ``node`` differs from the catalog (empty: an exact, complete copy)."""
    root = view.roots[node] / package_id
    on_disk = tree(root)
    expected = view.files[package_id]
    problems = []
    for path, row in expected.items():
        found = on_disk.get(path)
        if found is None:
            problems.append(f"{path} missing")
        elif view.digests(found) != (row.size, row.sha256, row.sha512):
            problems.append(f"{path} differs")
    problems.extend(f"{path} unexpected" for path in sorted(set(on_disk) - set(expected)))
    return problems


def check_catalog_against_nodes(repo: Repository, damage: Damage | None = None,
                                view: CatalogView | None = None) -> list[str]:
    """Invariants that hold at every instant, however the last process ended.

    1. A ``verified`` copy is byte-exact on its node (unless it carries damage
       done behind the system's back and has not been audited since), and a
       ``preserved`` package has verified copies that satisfy its policy.
    2. No half-written or orphaned object is visible: every file under a
       node root is a temporary file in ``.preserve-tmp/``, the record of a
       catalogued package, or a file of a catalogued package whose bytes match
       the catalog (or carry known damage).
    3. Nothing is half-registered: every package has its files and its
       placed copies, and every copy waiting for work has a live job that
       will do it.
    5. The event chain verifies.
    """
    view = view or read_catalog(repo)
    damage = damage or Damage(since=datetime.min)
    violations: list[str] = []
    if not view.chain_ok:
        violations.append(f"event chain broken: {view.chain_breaks}")
    verified: dict[str, list[Node]] = {}
    for rid, package_id, node, node_status, state, audited in view.replicas:
        if state == REPLICA_VERIFIED:
            if node_status == NODE_ACTIVE:
                verified.setdefault(package_id, []).append(view.node_types[node])
            problems = copy_problems(view, node, package_id) if node_status != NODE_OFFLINE else []
            rot_unseen = (node, package_id) in damage.replicas and (audited is None or audited <= damage.since)
            if problems and not rot_unseen:
                violations.append(f"replica {rid} of {package_id} on {node} is verified but {problems[:3]}")
        waiting_for = WAITING_FOR.get(state)
        if waiting_for and node_status != NODE_OFFLINE and f"{waiting_for}:{rid}" not in view.live_jobs:
            violations.append(f"replica {rid} on {node} is {state} but no {waiting_for} job will take it on")
    copies = {}
    for _, package_id, *_ in view.replicas:
        copies[package_id] = copies.get(package_id, 0) + 1
    for package_id, state in view.packages.items():
        if not view.files[package_id] or copies.get(package_id, 0) < repo.policy.replication.copies:
            violations.append(f"package {package_id} is half-registered: {len(view.files[package_id])} files, "
                              f"{copies.get(package_id, 0)} copies placed")
        if state == PACKAGE_PRESERVED:
            lacking = unmet_requirements(repo.policy.replication, verified.get(package_id, []))
            if lacking:
                violations.append(f"package {package_id} is preserved but lacks {lacking}")
    violations.extend(_objects_on_nodes(view, damage))
    return violations


def _events_file_problems(node: str, path: str, full: Path, package_id: str, view: CatalogView) -> list[str]:
    if package_id not in view.packages:
        return [f"{node}: events file {path} of no catalogued package"]
    data = full.read_bytes()
    if data and not data.endswith(b"\n"):
        return [f"{node}: events file {path} ends in a partial line"]
    last = 0
    for n, line in enumerate(data.splitlines(), 1):
        try:
            ev = json.loads(line)
        except ValueError:
            return [f"{node}: events file {path} line {n} is not JSON"]
        if hash_of_exported(ev) != ev.get("hash") or ev["package_id"] != package_id or ev["seq"] <= last:
            return [f"{node}: events file {path} line {n} is not an event of the package in order"]
        last = ev["seq"]
    return []


def _objects_on_nodes(view: CatalogView, damage: Damage) -> list[str]:
    violations = []
    for node, root in view.roots.items():
        if view.node_types[node].status == NODE_OFFLINE:
            continue
        for path, full in tree(root).items():
            head, _, rest = path.partition("/")
            if head == TEMP_DIR:
                continue
            if path.startswith(RECORDS + "/"):
                name = path[len(RECORDS) + 1:]
                if name.endswith(EVENTS_SUFFIX):  # the package's events: every line its own hash, in order
                    violations.extend(_events_file_problems(node, path, full, name.removesuffix(EVENTS_SUFFIX),
                                                            view))
                    continue
                package_id = name.removesuffix(".json")
                if package_id not in view.packages or not name.endswith(".json"):
                    violations.append(f"{node}: record {path} of no catalogued package")
                    continue
                try:
                    record = json.loads(full.read_bytes())
                except ValueError:
                    violations.append(f"{node}: record {path} is not complete JSON")
                    continue
                if record.get("package_id") != package_id:
                    violations.append(f"{node}: record {path} names package {record.get('package_id')}")
                continue
            if head not in view.packages:
                violations.append(f"{node}: {path} belongs to no catalogued package (orphan)")
                continue
            key = (node, head, rest)
            row = view.files[head].get(rest)
            if row is None:
                if key not in damage.extra:
                    violations.append(f"{node}: {path} is not a file of its package")
                continue
            if view.digests(full) != (row.size, row.sha256, row.sha512) and key not in damage.changed:
                violations.append(f"{node}: {path} is visible but its bytes differ from the catalog (half-written?)")
    return violations


def check_settled(repo: Repository, *, staging: Path | None = None) -> list[str]:
    """After the work has been resumed to the end: everything preserved, exact, tidy.

    Every package is preserved with every copy on a reachable node verified
    and byte-exact; no job is left live or dead; no temporary file is left on
    any node; the staging area is empty; the chain verifies.
    """
    view = read_catalog(repo)
    violations = check_catalog_against_nodes(repo, view=view)
    for package_id, state in view.packages.items():
        if state != PACKAGE_PRESERVED:
            violations.append(f"package {package_id} is {state}, not preserved")
    for rid, package_id, node, node_status, state, _ in view.replicas:
        if node_status == NODE_OFFLINE:
            continue
        if state != REPLICA_VERIFIED:
            violations.append(f"replica {rid} of {package_id} on {node} is {state}")
        elif problems := copy_problems(view, node, package_id):
            violations.append(f"replica {rid} of {package_id} on {node}: {problems[:3]}")
    if view.live_jobs:
        violations.append(f"jobs still live: {sorted(view.live_jobs)}")
    if view.dead_jobs:
        violations.append(f"dead jobs: {view.dead_jobs[:3]}")
    for node, root in view.roots.items():
        if view.node_types[node].status != NODE_OFFLINE and any(tree(root / TEMP_DIR)):
            violations.append(f"{node}: temporary files left in {TEMP_DIR}/")
    if staging is not None and staging.exists() and any(staging.iterdir()):
        violations.append(f"staging not empty: {sorted(p.name for p in staging.iterdir())}")
    return violations
