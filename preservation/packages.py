"""Finding packages the way operators name them: by id or a short prefix of it, listed with filters and pages.

:func:`resolve_package_id` is the one place where an id an operator typed
becomes a package id; every command that takes a package id goes through it
(``cli.common.PACKAGE_ID``), so the eight characters ``jobs list`` and
``package list`` show are accepted wherever a full id is.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from preservation.catalog import lineages
from preservation.catalog.models import PACKAGE_STATES, REPLICA_VERIFIED, Collection, Event, Job, Node, Package, Replica
from preservation.errors import AmbiguousId, InvalidRequest, NotFound
from preservation.formats.report import format_summary
from preservation.jobs.queue import DEAD, LIVE_STATES
from preservation.package_state import unrepairable_files
from preservation.repository import Repository
from preservation.text import for_log

MIN_PREFIX = 4
SHORT_ID = 8  # what listings show
CANDIDATES_SHOWN = 10
MAX_PAGE = 1000
_ID_TEXT = re.compile(r"[0-9a-f-]{1,36}")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value is not None else None


def resolve_package_id(session: Session, text: str) -> str:
    """The full id of the one package whose id is ``text`` or starts with it.

    Raises NotFound for text that cannot be (a part of) an id or that no
    package matches, InvalidRequest for a prefix shorter than :data:`MIN_PREFIX`, and
    AmbiguousId (listing the candidates) when several do.
    """
    wanted = str(text).strip().lower()
    if not _ID_TEXT.fullmatch(wanted):
        raise NotFound(f"no package {for_log(text)!r} (an id is hexadecimal digits and dashes; a prefix at least "
                       f"{MIN_PREFIX} of them): see `preserve package list`")
    if session.get(Package, wanted) is not None:
        return wanted
    if len(wanted) < MIN_PREFIX:
        raise InvalidRequest(f"package id prefix {wanted!r} is too short: give at least {MIN_PREFIX} characters")
    found = list(session.scalars(select(Package.id).where(Package.id.like(f"{wanted}%"))
                                 .order_by(Package.id).limit(CANDIDATES_SHOWN + 1)))
    if not found:
        raise NotFound(f"no package {wanted!r}: see `preserve package list`")
    if len(found) > 1:
        shown = found[:CANDIDATES_SHOWN]
        more = " …" if len(found) > CANDIDATES_SHOWN else ""
        raise AmbiguousId(f"package id prefix {wanted!r} matches {len(shown)}{'+' if more else ''} packages: "
                          f"{', '.join(shown)}{more}; give more characters", candidates=shown)
    return found[0]


def _summary(package: Package, collection_key: str, copies: int, verified: int) -> dict[str, Any]:
    return {
        "package_id": package.id,
        "short_id": package.id[:SHORT_ID],
        "name": package.name,
        "collection": collection_key,
        "state": package.state,
        "files": package.payload_files,
        "payload_bytes": package.payload_bytes,
        "total_bytes": package.total_bytes,
        "copies": copies,
        "verified_copies": verified,
        "created_at": _iso(package.created_at),
        "preserved_at": _iso(package.preserved_at),
    }


def _lineage(lineage_id: str, number: int, summary: dict[str, Any]) -> dict[str, Any]:
    """What a listing row says of the package's versions: it shows version ``version`` of a lineage of
    ``versions``, the newest of which is ``latest_version`` (``preserve version list`` lists them)."""
    return {"lineage_id": lineage_id, "version": number, "versions": summary["versions"],
            "latest_version": summary["latest"], "latest_version_id": summary["latest_id"]}


def list_packages(repo: Repository, *, state: str | None = None, collection: str | None = None,
                  node: str | None = None, name: str | None = None, limit: int = 50,
                  offset: int = 0) -> dict[str, Any]:
    """One page of packages, oldest first, with the total that match: one row per package, however many
    versions it has (``catalog.lineages``: the row shows its newest version that matches the filters).

    Raises InvalidRequest for an unknown state or a page out of range and
    NotFound for an unknown collection or node.
    """
    if state is not None and state not in PACKAGE_STATES:
        raise InvalidRequest(f"unknown package state {state!r}; use one of {', '.join(PACKAGE_STATES)}")
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidRequest(f"--limit must be between 1 and {MAX_PAGE}")
    if offset < 0:
        raise InvalidRequest("--offset must be 0 or more")
    with repo.catalog.session() as s:
        where = []
        if state:
            where.append(Package.state == state)
        if collection is not None:
            collection_id = s.scalar(select(Collection.id).where(Collection.key == collection))
            if collection_id is None:
                raise NotFound(f"no collection {collection!r}: see `preserve collection list`")
            where.append(Package.collection_id == collection_id)
        if node is not None:
            node_id = s.scalar(select(Node.id).where(Node.name == node))
            if node_id is None:
                raise NotFound(f"no node named {node!r}: see `preserve node list`")
            where.append(Package.id.in_(select(Replica.package_id).where(Replica.node_id == node_id)))
        if name:
            escaped = name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where.append(Package.name.like(f"%{escaped}%", escape="\\"))
        total = lineages.count(s, where)  # one row per package, not per version (docs/versions.md)
        rows = s.execute(
            lineages.head_packages(where, order_by=(Package.created_at, Package.id)).add_columns(Collection.key)
            .join(Collection, Collection.id == Package.collection_id).limit(limit).offset(offset)
        ).all()
        ids = [p.id for p, *_ in rows]
        lines = lineages.lineage_summaries(s, [lineage for _, lineage, *_ in rows])
        copies: dict[str, tuple[int, int]] = {}
        if ids:
            verified = func.sum(case((Replica.state == REPLICA_VERIFIED, 1), else_=0))
            for pid, count, good in s.execute(select(Replica.package_id, func.count(), verified)
                                               .where(Replica.package_id.in_(ids)).group_by(Replica.package_id)):
                copies[pid] = (count, int(good or 0))
        packages = [{**_summary(p, key, *copies.get(p.id, (0, 0))), **_lineage(lineage, number, lines[lineage])}
                    for p, lineage, number, key in rows]
    return {"packages": packages, "count": len(packages), "total": total, "offset": offset, "limit": limit}


def show_package(repo: Repository, text: str) -> dict[str, Any]:
    """One package: what it is, its copies node by node, its live and dead jobs, its event count.

    ``text`` is an id or a prefix (:func:`resolve_package_id`, whose errors it raises).
    """
    with repo.catalog.session() as s:
        package = s.get(Package, resolve_package_id(s, text))
        key = s.scalar(select(Collection.key).where(Collection.id == package.collection_id))
        replicas = s.execute(select(Replica, Node.name).join(Node, Node.id == Replica.node_id)
                             .where(Replica.package_id == package.id).order_by(Node.name)).all()
        copies = [{"node": node_name, "state": r.state, "bytes": r.bytes, "verified_at": _iso(r.verified_at),
                   "next_audit_at": _iso(r.next_audit_at),
                   "last_error": r.last_error.splitlines()[0] if r.last_error else None}
                  for r, node_name in replicas]
        jobs = [{"id": j.id, "kind": j.kind, "state": j.state, "attempts": j.attempts,
                 "last_error": j.last_error.splitlines()[0] if j.last_error else None}
                for j in s.scalars(select(Job).where(Job.package_id == package.id,
                                                     Job.state.in_((*LIVE_STATES, DEAD))).order_by(Job.id))]
        event_count = s.scalar(select(func.count()).select_from(Event).where(Event.package_id == package.id))
        lost = unrepairable_files(s, package.id)
        out = _summary(package, key, len(copies), sum(1 for c in copies if c["state"] == REPLICA_VERIFIED))
        out.update({
            "source": package.source, "source_kind": package.source_kind, "policy": package.policy,
            "payload_oxum": package.payload_oxum, "bag_info": package.bag_info,
            "replicas": copies, "jobs": jobs, "events": event_count,
            # files no copy holds right, and the copies lacking each (docs/operations.md, "Partial damage")
            "unrepairable": [{"path": path, "nodes": nodes} for path, nodes in lost.items()],
            "formats": format_summary(s, package.id),  # files and bytes per PRONOM format (docs/formats.md)
        })
        return out
