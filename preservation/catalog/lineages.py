"""Packages as people count them: one per lineage, however many versions it has (docs/versions.md).

A version is a ``packages`` row of its own, so a query over ``packages``
sees a database delivered twelve times as twelve packages.  Every listing
and count of packages (``package list``, the portal's and the API's
collection pages and holdings, ``collection list``, the ``status`` report)
goes through this module instead, which is the one rule for what a
*logical package* is:

- its key is its lineage id (version 1's id), or its own id for a package
  never versioned;
- among the package rows a caller's conditions select, it is shown by its
  **head**: the newest version that is not deaccessioned, else the newest;
- it carries how many versions the lineage has and the number of its latest.

Conditions are on ``packages`` columns (a state, a collection, a node's
copies, a name); a lineage matches when any of its versions does, and is
then shown by the newest version that matched.
"""

from __future__ import annotations

from typing import Any, Iterable

from sqlalchemy import ColumnElement, Select, Subquery, case, func, select
from sqlalchemy.orm import Session

from preservation.catalog.models import PACKAGE_DEACCESSIONED, Package
from preservation.catalog.version_models import PackageVersion

LINEAGE = func.coalesce(PackageVersion.lineage_id, Package.id)
"""The key of the logical package a ``packages`` row belongs to (outer-joined to ``package_versions``)."""
NUMBER = func.coalesce(PackageVersion.number, 1)


def heads(where: Iterable[ColumnElement[bool]] = (), *, by: Iterable[Any] = ()) -> Subquery:
    """One row per lineage (and per value of each column in ``by``) among the packages matching ``where``:
    ``id`` (the head's package id), ``lineage_id`` and ``number`` (the head's version number)."""
    by = list(by)
    kept_first = case((Package.state == PACKAGE_DEACCESSIONED, 1), else_=0)
    ranked = (
        select(Package.id.label("id"), LINEAGE.label("lineage_id"), NUMBER.label("number"),
               func.row_number().over(partition_by=[LINEAGE, *by], order_by=[kept_first, NUMBER.desc()]).label("rank"))
        .select_from(Package).outerjoin(PackageVersion, PackageVersion.package_id == Package.id)
        .where(*where)
    ).subquery("ranked")
    return select(ranked.c.id, ranked.c.lineage_id, ranked.c.number).where(ranked.c.rank == 1).subquery("heads")


def count(session: Session, where: Iterable[ColumnElement[bool]] = ()) -> int:
    """How many logical packages have a version matching ``where``."""
    return int(session.scalar(
        select(func.count(func.distinct(LINEAGE))).select_from(Package)
        .outerjoin(PackageVersion, PackageVersion.package_id == Package.id).where(*where)) or 0)


def count_by(session: Session, column, where: Iterable[ColumnElement[bool]] = ()) -> dict[Any, int]:
    """Logical packages per value of a ``packages`` column (a lineage counts once under each value its
    versions have: a lineage with a damaged old version and a preserved newest counts under both)."""
    rows = session.execute(
        select(column, func.count(func.distinct(LINEAGE))).select_from(Package)
        .outerjoin(PackageVersion, PackageVersion.package_id == Package.id).where(*where).group_by(column))
    return {value: int(n) for value, n in rows}


def head_packages(where: Iterable[ColumnElement[bool]] = (), *, order_by: Iterable[Any] = ()) -> Select:
    """``select(Package, lineage_id, number)`` of the heads of the lineages matching ``where``, ordered by
    ``order_by`` (columns of ``Package``); add ``offset``/``limit`` for a page."""
    h = heads(where)
    return select(Package, h.c.lineage_id, h.c.number).join(h, h.c.id == Package.id).order_by(*order_by)


def lineage_summaries(session: Session, lineage_ids: Iterable[str], *, kept: bool = False) -> dict[str, dict[str, Any]]:
    """For each lineage id: ``versions`` (how many), ``latest`` (the newest version's number) and ``latest_id``;
    ``kept``: of the versions not deaccessioned only.  A package never versioned is one version, its own latest."""
    ids = list(dict.fromkeys(lineage_ids))
    out = {i: {"versions": 1, "latest": 1, "latest_id": i} for i in ids}
    if not ids:
        return out
    query = (select(PackageVersion.lineage_id, PackageVersion.number, PackageVersion.package_id)
             .where(PackageVersion.lineage_id.in_(ids)))
    if kept:
        query = query.join(Package, Package.id == PackageVersion.package_id).where(
            Package.state != PACKAGE_DEACCESSIONED)
    found: dict[str, list[tuple[int, str]]] = {}
    for lineage, number, package_id in session.execute(query):
        found.setdefault(lineage, []).append((number, package_id))
    for lineage, numbered in found.items():
        latest, latest_id = max(numbered)
        out[lineage] = {"versions": len(numbered), "latest": latest, "latest_id": latest_id}
    return out
