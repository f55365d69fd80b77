"""What a library may see: the consortium's holdings, and its own rights in them.

Every member library may see *that* a collection or package is held (so it
can ask for it): titles, years, sizes, states.  What is *in* a package — its
file list — and its bytes need a read right (see ``rights``); consortium staff
may list files to judge requests but, like everyone, read bytes only under a
grant.  Listing a package's files is logged as a ``view``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from preservation import versions
from preservation.access.accounts import Principal
from preservation.access.as_of import reading
from preservation.access.delivery import get_package, list_files
from preservation.access.rights import ReadRights, active_trigger, entitled_ranges, package_year
from preservation.access.usage import record_usage
from preservation.catalog import lineages
from preservation.catalog.access_models import REQUEST_PENDING, USAGE_VIEW, AccessRequest
from preservation.catalog.models import PACKAGE_DEACCESSIONED, Collection, Package, PackageFile
from preservation.collection import get_collection
from preservation.errors import InvalidRequest
from preservation.repository import Repository

MAX_PAGE = 500


def check_page(offset: int, limit: int) -> None:
    if offset < 0 or not 1 <= limit <= MAX_PAGE:
        raise InvalidRequest(f"offset must be 0 or more and limit 1-{MAX_PAGE}")


def _pending(session, library_id: int, collection_id: int) -> dict[str | None, int]:
    """Pending request ids of the library in the collection, by package id (None: whole collection);
    requests in library terms (a title, an issue, an item) are on the title's page, not here."""
    rows = session.execute(
        select(AccessRequest.package_id, AccessRequest.id).where(
            AccessRequest.library_id == library_id, AccessRequest.collection_id == collection_id,
            AccessRequest.state == REQUEST_PENDING, AccessRequest.title_id.is_(None),
            AccessRequest.item_id.is_(None))
    ).all()
    return {package_id: rid for package_id, rid in rows}


def holdings(repo: Repository, principal: Principal) -> list[dict[str, Any]]:
    """Every collection with the principal's library's standing in it."""
    with repo.catalog.session() as s:
        counts = lineages.count_by(s, Package.collection_id, [Package.state != PACKAGE_DEACCESSIONED])
        out = []
        for c in s.scalars(select(Collection).order_by(Collection.key)):
            rights = ReadRights(s, principal.library_id, c)
            trigger = active_trigger(s, c.id)
            out.append({
                "key": c.key, "title": c.title, "publisher": c.publisher, "access_mode": c.access_mode,
                "packages": counts.get(c.id, 0),
                "entitled_years": [str(r) for r in entitled_ranges(s, principal.library_id, c.id)],
                "trigger": {"kind": trigger.kind, "date": trigger.occurred_on.isoformat()} if trigger else None,
                "active_grants": len(rights.grants),
                "pending_requests": len(_pending(s, principal.library_id, c.id)),
            })
        return out


def _package_dict(p: Package, right) -> dict[str, Any]:
    return {
        "id": p.id, "name": p.name, "collection": p.collection.key, "year": package_year(p), "state": p.state,
        "payload_files": p.payload_files, "payload_bytes": p.payload_bytes, "total_bytes": p.total_bytes,
        "created_at": p.created_at, "readable": right.allowed, "read_right": right.to_dict(),
    }


def collection_packages(
    repo: Repository, principal: Principal, collection_key: str, *, offset: int = 0, limit: int = 100
) -> dict[str, Any]:
    check_page(offset, limit)
    with repo.catalog.session() as s:
        c = get_collection(s, collection_key)
        rights = ReadRights(s, principal.library_id, c)
        where = (Package.collection_id == c.id, Package.state != PACKAGE_DEACCESSIONED)
        # one row per package however many versions it has, shown by its newest kept version
        total = lineages.count(s, where)
        rows = s.execute(lineages.head_packages(where, order_by=(Package.name, Package.id))
                         .offset(offset).limit(limit)).all()
        summaries = lineages.lineage_summaries(s, [lineage for _, lineage, _ in rows], kept=True)
        pending = _pending(s, principal.library_id, c.id)
        items = []
        for p, lineage, number in rows:
            right = rights.for_package(p)
            if not right.allowed and summaries[lineage]["versions"] > 1:  # a right on another version opens it
                right = reading(s, principal, p, need_right=False).right
            d = _package_dict(p, right)
            d["pending_request"] = pending.get(p.id) or pending.get(lineage)
            d.update(lineage_id=lineage, version=number, versions=summaries[lineage]["versions"],
                     latest_version=summaries[lineage]["latest"])
            items.append(d)
        return {"collection": {"key": c.key, "title": c.title, "access_mode": c.access_mode,
                               "entitled_years": [str(r) for r in entitled_ranges(s, principal.library_id, c.id)],
                               "pending_request": pending.get(None)},
                "total": total, "offset": offset, "limit": limit, "packages": items}


def package_detail(repo: Repository, principal: Principal, package_id: str) -> dict[str, Any]:
    """The package, the caller's read right, and the version it reads (``as_of``)."""
    with repo.catalog.session() as s:
        p = get_package(s, package_id)
        state = reading(s, principal, p, need_right=False)
        return {**_package_dict(p, state.right), "version": state.to_dict()}


def package_files(
    repo: Repository, principal: Principal, package_id: str, *, offset: int = 0, limit: int = MAX_PAGE
) -> dict[str, Any]:
    """One page of the files of the state the caller reads (a versioned package's version, ``as_of``);
    raises AccessRefused without a read right (staff excepted)."""
    check_page(offset, limit)
    with repo.catalog.session() as s:
        p = get_package(s, package_id)
        state = reading(s, principal, p, need_right=not principal.is_staff)
        right = state.right
        if state.versioned:
            total, files = versions.state_files(s, state.version_id, offset=offset, limit=limit)
        else:
            files = list_files(s, p.id, offset=offset, limit=limit)
            total = s.execute(
                select(func.count()).select_from(PackageFile).where(PackageFile.package_id == p.id)).scalar_one()
        if right.allowed:  # staff judging a request is not usage
            record_usage(s, principal, collection_id=p.collection_id, package_id=state.version_id, path="", size=0,
                         kind=USAGE_VIEW)
        out = _package_dict(p, right)
        out.update(offset=offset, limit=limit, total=total, files=files, version=state.to_dict())
        return out

