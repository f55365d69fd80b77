"""Which package a new delivery is the next version of, found by the policy's rules (docs/versions.md).

``preserve ingest`` without ``--version-of`` asks :func:`match_delivery`
once the delivery is staged (its bag-info is then known: the delivered
bag's, with the operator's ``--info``).  The policy's ``versions.match_on``
rules are tried in order, each within the delivery's collection, over the
packages not deaccessioned:

``identifier``
    the same value of the bag-info field ``versions.identifier_field``
    (``External-Identifier`` by default), compared exactly;
``title_year``
    the same value of ``versions.title_field`` (``Title``), compared after
    Unicode NFKC, case folding and collapsing white space, and the same year
    (the access rules' package year: ``Coverage-Year``, ``Year``, else the
    name).

A rule the delivery gives no value for is passed by.  The first rule that
finds packages decides: one lineage (any of its versions) is the match;
packages of two lineages or more refuse the delivery (AmbiguousVersionMatch,
E508) before anything is registered.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Iterable, Iterator

from sqlalchemy import select

from preservation.access.rights import package_year
from preservation.catalog.models import PACKAGE_DEACCESSIONED, Collection, Package
from preservation.catalog.version_models import PackageVersion
from preservation.errors import AmbiguousVersionMatch
from preservation.policy import VersionsPolicy
from preservation.repository import Repository

SCAN_BATCH = 1000
SHOWN = 5  # lineages named in an ambiguity's message


@dataclass(frozen=True)
class Match:
    """The lineage a delivery follows, and on what it was found."""

    lineage_id: str
    rule: str
    field: str
    value: str

    def to_dict(self) -> dict[str, Any]:
        return {"package_id": self.lineage_id, "on": self.rule, "field": self.field, "value": self.value}


def _values(info: dict[str, Any], field: str) -> list[str]:
    """The values of a bag-info field (labels compared without case; a repeated field has several)."""
    found: list[str] = []
    for label, value in (info or {}).items():
        if str(label).lower() == field.lower():
            found += [str(v) for v in (value if isinstance(value, list) else [value]) if v is not None]
    return [v.strip() for v in found if v.strip()]


def normal_title(text: str) -> str:
    """A title as the title_year rule compares it: NFKC, case folded, white space collapsed."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text)).strip().casefold()


def _packages(session, collection_id: int) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(id, name, bag-info) of the collection's packages not deaccessioned, a batch at a time."""
    query = (select(Package.id, Package.name, Package.bag_info)
             .where(Package.collection_id == collection_id, Package.state != PACKAGE_DEACCESSIONED)
             .order_by(Package.id).limit(SCAN_BATCH))
    last = None
    while True:
        rows = session.execute(query if last is None else query.where(Package.id > last)).all()
        yield from rows
        if len(rows) < SCAN_BATCH:
            return
        last = rows[-1][0]


def _lineages(session, package_ids: Iterable[str]) -> list[str]:
    ids = sorted(set(package_ids))
    bound = dict(session.execute(select(PackageVersion.package_id, PackageVersion.lineage_id)
                                 .where(PackageVersion.package_id.in_(ids))).all()) if ids else {}
    return sorted({bound.get(pid, pid) for pid in ids})


def match_delivery(repo: Repository, collection_key: str, bag_info: dict[str, Any], name: str) -> Match | None:
    """The lineage the staged delivery (its ``bag_info`` and ``name``) is the next version of; None when no
    rule of the policy finds one.  Raises AmbiguousVersionMatch when a rule finds two lineages or more."""
    rules: VersionsPolicy = repo.policy.versions
    if not rules.match_on:
        return None
    with repo.catalog.session() as s:
        collection = s.scalar(select(Collection).where(Collection.key == collection_key))
        if collection is None:
            return None
        for rule in rules.match_on:
            if rule == "identifier":
                wanted = set(_values(bag_info, rules.identifier_field))
                if not wanted:
                    continue
                field, shown = rules.identifier_field, sorted(wanted)[0]
                hits = [pid for pid, _, info in _packages(s, collection.id)
                        if wanted & set(_values(info, rules.identifier_field))]
            else:
                titles = {normal_title(t) for t in _values(bag_info, rules.title_field)}
                year = package_year(SimpleNamespace(bag_info=bag_info, name=name))
                if not titles or year is None:
                    continue
                field, shown = f"{rules.title_field} + year", f"{sorted(_values(bag_info, rules.title_field))[0]} " \
                                                              f"({year})"
                hits = [pid for pid, pname, info in _packages(s, collection.id)
                        if titles & {normal_title(t) for t in _values(info, rules.title_field)}
                        and package_year(SimpleNamespace(bag_info=info, name=pname)) == year]
            if not hits:
                continue
            lineages = _lineages(s, hits)
            if len(lineages) > 1:
                named = ", ".join(lineages[:SHOWN]) + (" …" if len(lineages) > SHOWN else "")
                raise AmbiguousVersionMatch(f"{field} = {shown!r}: {named}", count=len(lineages),
                                            rule=rule, packages=lineages[:SHOWN], package=lineages[0])
            return Match(lineages[0], rule, field, shown)
    return None
