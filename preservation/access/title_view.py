"""A title as a library sees it: its years, volumes, issues and articles, with its standing on each.

What is preserved of a title is its items in packages that are not
deaccessioned.  A title page shows the years it has (with counts), and for
one year its volumes, issues and articles in reading order, one page of
articles at a time, each with the library's standing: ``read`` (a grant
covers it, or the collection is open), ``request`` (the access policy would
approve a request at once) or ``dark`` (staff decide) — the rules of
:mod:`preservation.access.rights`, as search applies them.  The library's
own pending requests for the title, its issues and its articles are marked.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, joinedload

from preservation.access.accounts import Principal
from preservation.access.payload_tree import PAYLOAD
from preservation.access.reasons import Reason
from preservation.access.rights import (
    MODE_OPEN,
    MODE_PCA,
    PolicyDecision,
    ReadRights,
    YearRange,
    decide_for_issue,
    decide_for_item,
    decide_by_policy,
    decide_for_title_request,
    entitled_ranges,
    item_date,
    read_right,
    title_entitlements,
)
from preservation.catalog.access_models import REQUEST_PENDING, AccessRequest
from preservation.catalog.library_models import Item, ItemFile, Title
from preservation.catalog.models import PACKAGE_DEACCESSIONED, Collection, Package
from preservation.errors import InvalidRequest, NotFound
from preservation.repository import Repository
from preservation.titles import part_number

READ, REQUEST, DARK = "read", "request", "dark"
MAX_ARTICLES = 500  # articles on one page of a year
MAX_TITLES = 500


def _held(*where: Any):
    return (select(Item).join(Package, Package.id == Item.package_id)
            .where(Package.state != PACKAGE_DEACCESSIONED, *where))


def _natural(column: Any) -> tuple[Any, Any]:
    """Order text that is usually a number as a number ("9" before "10"), then as text."""
    return func.length(column), column


def _title_dict(title: Title) -> dict[str, Any]:
    c = title.collection
    return {
        "id": title.id, "kind": title.kind, "title": title.title, "title_transliterated": title.title_transliterated,
        "title_english": title.title_english, "publisher": title.publisher,
        "identifiers": [{"scheme": i.scheme, "value": i.value} for i in title.identifiers],
        "collection": {"key": c.key, "title": c.title, "access_mode": c.access_mode},
    }


class _Standings:
    """The library's standing on items and issues of one title: grants, the policy's decision per package
    and on the collection, its entitled years and its title entitlements are loaded once, not once per
    article or issue."""

    def __init__(self, session: Session, library_id: int, title: Title) -> None:
        self.session = session
        self.library_id = library_id
        self.collection = title.collection
        self.rights = ReadRights(session, library_id, self.collection)
        self.title_rows = title_entitlements(session, library_id, [title.id])[title.id]
        self._by_package: dict[str, PolicyDecision] = {}
        self._collection_decision: PolicyDecision | None = None
        self._ranges: list[YearRange] | None = None

    def for_item(self, item: Item) -> tuple[str, str]:
        right = self.rights.for_item(item.package, item)
        if right.allowed:
            return READ, right.reason
        if item.package_id not in self._by_package:
            self._by_package[item.package_id] = decide_by_policy(self.session, self.library_id, self.collection,
                                                                 item.package)
        decision = decide_for_item(self.session, self.library_id, self.collection, item.package, item,
                                   package_decision=self._by_package[item.package_id], title_rows=self.title_rows)
        return (REQUEST if decision.approve else DARK), decision.why

    def for_issue(self, title_id: int, year: int, when: str, volume: str = "", issue: str = "") -> tuple[str, str]:
        if self.collection.access_mode == MODE_PCA:
            if self._ranges is None:
                self._ranges = entitled_ranges(self.session, self.library_id, self.collection.id)
        elif self._collection_decision is None:
            self._collection_decision = decide_by_policy(self.session, self.library_id, self.collection, None)
        decision = decide_for_issue(self.session, self.library_id, self.collection, title_id, year, when,
                                    volume=volume, issue=issue, collection_decision=self._collection_decision,
                                    ranges=self._ranges, title_rows=self.title_rows)
        return (REQUEST if decision.approve else DARK), decision.why

    def for_title(self, title_id: int) -> tuple[str, str]:
        if self.collection.access_mode == MODE_OPEN:
            return READ, Reason("collection-open")
        decision = decide_for_title_request(self.session, self.library_id, self.collection, title_id)
        return (REQUEST if decision.approve else DARK), decision.why


def _pending(session: Session, library_id: int, title_id: int, item_ids: list[int]) -> dict[tuple[Any, ...], int]:
    """The library's pending requests for the title, its issues and these items, by what they name."""
    rows = session.execute(
        select(AccessRequest.id, AccessRequest.title_id, AccessRequest.item_id, AccessRequest.issue_year,
               AccessRequest.volume, AccessRequest.issue, AccessRequest.first_volume, AccessRequest.last_volume)
        .where(AccessRequest.library_id == library_id, AccessRequest.state == REQUEST_PENDING,
               or_(AccessRequest.title_id == title_id, AccessRequest.item_id.in_(item_ids or [-1])))).all()
    out: dict[tuple[Any, ...], int] = {}
    for rid, t_id, i_id, year, volume, issue, first_volume, last_volume in rows:
        if i_id is not None:
            out[("item", i_id)] = rid
        elif first_volume is not None:
            out[("volume", first_volume, last_volume)] = rid
        elif volume is not None:
            out[("issue", year, volume, issue or "")] = rid
        else:
            out[("title",)] = rid
    return out


def _check_page(year: int | None, offset: int, limit: int) -> None:
    if year is not None and not 1 <= year <= 9999:
        raise InvalidRequest("year must be a whole number from 1 to 9999")
    if offset < 0 or not 1 <= limit <= MAX_ARTICLES:
        raise InvalidRequest(f"offset must be 0 or more and limit 1-{MAX_ARTICLES}")


def title_page(repo: Repository, principal: Principal, title_id: int, *, year: int | None = None,
               undated: bool = False, offset: int = 0, limit: int = MAX_ARTICLES) -> dict[str, Any]:
    """The title, its years (with counts of volumes, issues and articles), and for ``year`` (by default
    the latest; with ``undated`` its articles of no known year, which is also the default when it has
    no other) one page of its articles grouped by volume and issue, each with the library's standing.

    Raises NotFound (no such title), InvalidRequest (year, offset or limit out of range).
    """
    _check_page(year, offset, limit)
    with repo.catalog.session() as s:
        title = s.get(Title, title_id)
        if title is None:
            raise NotFound(f"no title {title_id}")
        held = _held(Item.title_id == title.id).subquery()
        years = [
            {"year": y, "volumes": v, "issues": i, "articles": n}
            for y, v, i, n in s.execute(
                select(held.c.year, func.count(func.distinct(held.c.volume)),
                       func.count(func.distinct(held.c.volume + "/" + held.c.issue)), func.count())
                .group_by(held.c.year).order_by(held.c.year.desc().nulls_last()))
        ]
        standings = _Standings(s, principal.library_id, title)
        title_standing = standings.for_title(title.id)
        out: dict[str, Any] = {
            "title": _title_dict(title), "years": years, "standing": title_standing[0],
            "standing_reason": title_standing[1], "year": None, "volumes": [], "offset": offset, "limit": limit,
            "total": 0, "pending_request": None, "undated": False,
        }
        dated = [y["year"] for y in years if y["year"] is not None]
        has_undated = len(dated) < len(years)
        if undated and year is not None:
            raise InvalidRequest("ask for a year or for the undated articles, not both")
        if year is None and not undated:
            undated = not dated and has_undated
            year = dated[0] if dated else None
        if undated and not has_undated:
            raise NotFound(f"title {title.id} has no undated articles preserved")
        if year is None and not undated:
            return out
        if year is not None and year not in dated:
            raise NotFound(f"title {title.id} has nothing preserved of {year}")
        in_year = (Item.title_id == title.id, Item.year.is_(None) if undated else Item.year == year)
        total = s.execute(_held(*in_year).with_only_columns(func.count())).scalar_one()
        items = list(s.scalars(
            _held(*in_year).options(joinedload(Item.package))
            .order_by(*_natural(Item.volume), *_natural(Item.issue), *_natural(Item.first_page), Item.id)
            .offset(offset).limit(limit)))
        pending = _pending(s, principal.library_id, title.id, [i.id for i in items])
        volumes: list[dict[str, Any]] = []
        for item in items:
            if not volumes or volumes[-1]["volume"] != item.volume:
                volumes.append({"volume": item.volume, "issues": [],
                                "requestable": part_number(item.volume or "") is not None,
                                "pending_request": pending.get(("volume", item.volume, item.volume))})
            issues = volumes[-1]["issues"]
            if not issues or issues[-1]["issue"] != item.issue:
                issues.append({"issue": item.issue, "articles": [], "first_date": item_date(item),
                               "pending_request": pending.get(("issue", year, item.volume, item.issue))})
            standing, why = standings.for_item(item)
            issues[-1]["articles"].append({
                "id": item.id, "doi": item.doi, "title": item.item_title,
                "authors": [a for a in item.authors.split("; ") if a], "published": item.published,
                "first_page": item.first_page, "last_page": item.last_page, "package_id": item.package_id,
                "standing": standing, "standing_reason": why, "pending_request": pending.get(("item", item.id)),
            })
        for volume in volumes:
            for issue in volume["issues"]:
                standing_of = {a["standing"] for a in issue["articles"]}
                if standing_of == {READ}:
                    issue["standing"], issue["standing_reason"] = READ, Reason("issue-readable")
                elif undated:  # an issue is asked for by its year: undated articles one by one
                    issue["standing"] = REQUEST if REQUEST in standing_of else DARK
                    issue["standing_reason"] = Reason("issue-undated")
                else:
                    issue["standing"], issue["standing_reason"] = standings.for_issue(
                        title.id, year, issue["first_date"], volume["volume"] or "", issue["issue"] or "")
        _issue_folders(s, principal, volumes, {item.package_id: item.package for item in items})
        out.update(year=year, undated=undated, volumes=volumes, total=total, pending_request=pending.get(("title",)))
        return out


def _common_folder(paths: list[str]) -> str | None:
    """The deepest folder under ``data/`` that holds every one of ``paths`` ("" for the top), None if any
    lies outside ``data/``."""
    if not paths or not all(p.startswith(PAYLOAD) for p in paths):
        return None
    parts = [p[len(PAYLOAD):].split("/")[:-1] for p in paths]
    common: list[str] = []
    for names in zip(*parts):
        if len(set(names)) != 1:
            break
        common.append(names[0])
    return "/".join(common)


def _issue_folders(session: Session, principal: Principal, volumes: list[dict[str, Any]],
                   packages: dict[str, Package]) -> None:
    """Give each issue the package folder that holds its articles' files (``folder``: package id and path
    relative to ``data/``), when they lie in one package that the reader may list (staff, or a read right on
    the whole package: an issue's own grant opens its articles, not the package's folders); else None."""
    item_ids = [a["id"] for v in volumes for i in v["issues"] for a in i["articles"]]
    paths: dict[int, list[str]] = {}
    for item_id, path in session.execute(select(ItemFile.item_id, ItemFile.path)
                                         .where(ItemFile.item_id.in_(item_ids or [-1]))):
        paths.setdefault(item_id, []).append(path)
    listable: dict[str, bool] = {}
    for volume in volumes:
        for issue in volume["issues"]:
            issue["folder"] = None
            held_in = {a["package_id"] for a in issue["articles"]}
            if len(held_in) != 1:
                continue
            package_id = held_in.pop()
            if package_id not in listable:
                listable[package_id] = principal.is_staff or read_right(
                    session, principal.library_id, packages[package_id]).allowed
            folder = _common_folder([p for a in issue["articles"] for p in paths.get(a["id"], [])])
            if listable[package_id] and folder is not None:
                issue["folder"] = {"package_id": package_id, "path": folder}


def collection_titles(repo: Repository, key: str, *, offset: int = 0, limit: int = MAX_TITLES) -> dict[str, Any]:
    """The titles of a collection that have items preserved, with their years; raises NotFound, InvalidRequest."""
    if offset < 0 or not 1 <= limit <= MAX_TITLES:
        raise InvalidRequest(f"offset must be 0 or more and limit 1-{MAX_TITLES}")
    with repo.catalog.session() as s:
        collection = s.execute(select(Collection).where(Collection.key == key)).scalar_one_or_none()
        if collection is None:
            raise NotFound(f"no collection {key!r}")
        held = _held().with_only_columns(
            Item.title_id, func.min(Item.year).label("first_year"), func.max(Item.year).label("last_year"),
            func.count().label("articles")).where(Item.title_id.is_not(None)).group_by(Item.title_id).subquery()
        stmt = (select(Title, held.c.first_year, held.c.last_year, held.c.articles)
                .join(held, held.c.title_id == Title.id)
                .where(Title.collection_id == collection.id))
        total = s.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
        rows = s.execute(stmt.order_by(Title.title, Title.id).offset(offset).limit(limit)).all()
        return {
            "collection": {"key": collection.key, "title": collection.title, "access_mode": collection.access_mode},
            "titles": [{**_title_dict(t), "first_year": first, "last_year": last, "articles": n}
                       for t, first, last, n in rows],
            "total": total, "offset": offset, "limit": limit,
        }
