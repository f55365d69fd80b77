"""The versions of a package and what changed in each, as the portal and the API show them.

Every member library may see *that* a package has versions, when each was
delivered and how many files each added, changed and removed (as it sees
that a package is held).  The paths themselves are what is *in* a package:
a library sees those of the versions it may read, up to the one it reads
(:mod:`preservation.access.as_of`); staff see every version's.
"""

from __future__ import annotations

from typing import Any

from preservation import versions
from preservation.access.accounts import Principal
from preservation.access.as_of import reading
from preservation.access.delivery import get_package
from preservation.access.holdings import MAX_PAGE, check_page
from preservation.catalog.models import PACKAGE_DEACCESSIONED, Package
from preservation.errors import AccessRefused, NotFound
from preservation.repository import Repository

MAX_VERSION = 2**31 - 1  # the catalog's version numbers are 32-bit integers


def package_versions(repo: Repository, principal: Principal, package_id: str, *, offset: int = 0,
                     limit: int = 100) -> dict[str, Any]:
    """One page of the versions of ``package_id``'s lineage, oldest first, and the one the caller reads.

    Each version says whether the caller may see its changes (``changes_listed``).  Raises NotFound.
    """
    check_page(offset, limit)
    with repo.catalog.session() as s:
        package = get_package(s, package_id)
        state = reading(s, principal, package, need_right=False)
        listed = versions.versions_listed(s, package.id)
    for v in listed:
        v["changes_listed"] = _may_list(principal, state, v["number"], v["deaccessioned"])
    page = listed[offset:offset + limit]
    return {"package_id": package.id, "lineage_id": state.lineage_id, "reads": state.to_dict(),
            "readable": state.right.allowed, "versions": page, "count": len(page), "total": len(listed),
            "offset": offset, "limit": limit}


def _may_list(principal: Principal, state, number: int, deaccessioned: bool) -> bool:
    if principal.is_staff:
        return True
    return state.right.allowed and number <= state.number and not deaccessioned


def version_changes(repo: Repository, principal: Principal, package_id: str, number: int, *,
                    kind: str | None = None, offset: int = 0, limit: int = MAX_PAGE) -> dict[str, Any]:
    """What version ``number`` of ``package_id``'s lineage added, changed, removed and renamed: counts and
    one page of paths.  A library needs a read right and sees the versions up to the one it reads.

    Raises NotFound (no such package or version), AccessRefused, InvalidRequest (page, kind).
    """
    check_page(offset, limit)
    if not 1 <= number <= MAX_VERSION:
        raise NotFound(f"no version {number}")
    with repo.catalog.session() as s:
        package = get_package(s, package_id)
        state = reading(s, principal, package, need_right=not principal.is_staff)
        version_id = versions.resolve_version(s, package.id, number)
        deaccessioned = s.get(Package, version_id).state == PACKAGE_DEACCESSIONED
        if not _may_list(principal, state, number, deaccessioned):
            if deaccessioned:
                raise NotFound(f"version {number} of package {state.lineage_id} was deaccessioned")
            raise AccessRefused(f"version {number} of package {state.lineage_id} was delivered after the period "
                                f"your library reads; you read version {state.number}")
    out = versions.changes_page(repo.catalog, version_id, kind=kind, offset=offset, limit=limit)
    out["lineage_id"] = state.lineage_id
    return out
