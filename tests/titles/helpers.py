"""Catalog rows for title tests: packages in a given state with copies verified when asked, and their items."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select

from preservation.catalog.library_models import Item, Title
from preservation.catalog.models import REPLICA_VERIFIED, Collection, Node, Package, Replica, utcnow
from preservation.repository import Repository

KBART_HEADER = [
    "publication_title", "print_identifier", "online_identifier", "date_first_issue_online", "num_first_vol_online",
    "num_first_issue_online", "date_last_issue_online", "num_last_vol_online", "num_last_issue_online", "title_url",
    "first_author", "title_id", "embargo_info", "coverage_depth", "notes", "publisher_name", "publication_type",
    "date_monograph_published_print", "date_monograph_published_online", "monograph_volume", "monograph_edition",
    "first_editor", "parent_publication_title_id", "preceding_publication_title_id", "access_type",
]


def kbart_row(**fields: str) -> list[str]:
    unknown = set(fields) - set(KBART_HEADER)
    assert not unknown, unknown
    return [fields.get(name, "") for name in KBART_HEADER]


def kbart_text(rows: list[list[str]], header: list[str] = KBART_HEADER, newline: str = "\n") -> str:
    return newline.join("\t".join(r) for r in [header, *rows]) + newline


# 物理学报 (Acta Physica Sinica) and two more real Chinese journals
APS = dict(publication_title="物理学报", print_identifier="1000-3290", title_id="wlxb",
           title_url="https://wulixb.iphy.ac.cn/", publisher_name="中国物理学会", publication_type="serial",
           coverage_depth="fulltext")
CPB = dict(publication_title="Chinese Physics B", print_identifier="1674-1056", online_identifier="1741-4199",
           title_id="cpb", publisher_name="中国物理学会", publication_type="serial", coverage_depth="fulltext")


def add_package(repo: Repository, collection_key: str = "journals", *, state: str = "preserved",
                verified_days_ago: float | None = 1.0, name: str | None = None) -> str:
    """A package row with one verified copy per node (verified ``verified_days_ago``; None: never)."""
    package_id = str(uuid.uuid4())
    with repo.catalog.session() as s:
        collection = s.execute(select(Collection).where(Collection.key == collection_key)).scalar_one()
        s.add(Package(id=package_id, collection_id=collection.id, name=name or f"delivery-{package_id[:8]}",
                      state=state, payload_oxum="0.0", payload_files=0, payload_bytes=0, total_bytes=0,
                      policy="test"))
        s.flush()
        for node in s.scalars(select(Node)):
            when = None if verified_days_ago is None else utcnow() - timedelta(days=verified_days_ago)
            s.add(Replica(package_id=package_id, node_id=node.id, state=REPLICA_VERIFIED if when else "pending",
                          verified_at=when, last_audit_at=when))
    return package_id


def add_items(repo: Repository, package_id: str, title_id: int, issues: list[tuple[int, str, str]],
              per_issue: int = 2) -> None:
    """``per_issue`` articles for each ``(year, volume, issue)``, published on the 1st of a month."""
    with repo.catalog.session() as s:
        for year, volume, issue in issues:
            month = (int(issue) % 12 or 12) if issue.isdigit() else 1
            for n in range(per_issue):
                s.add(Item(package_id=package_id, title_id=title_id, kind="article", source_format="jats",
                           item_title=f"第{n}篇 {year}-{volume}-{issue}", year=year,
                           published=f"{year}-{month:02d}-01", volume=volume, issue=issue))


def title_id_of(repo: Repository, name: str) -> int:
    with repo.catalog.session() as s:
        return s.execute(select(Title.id).where(Title.title == name)).scalar_one()
