"""The access world with real JATS deliveries ingested: items and the title 物理学报 come from ingest's own
metadata extraction, as they would in production.

pca-j (post-cancellation; pku entitled 2010-2015, thu 2016-2020) gets volume 68 (2019, six articles, issues
1-6) and volume 67 (2018, three articles); the dark collection ``journals`` gets volume 69 (2020, two
articles) of its own 物理学报 title.  Built once per test session, copied per test like the world itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import select

from devtools.articles import write_articles
from preservation.catalog.access_models import Library
from preservation.catalog.library_models import Item, ItemFile, Title, TitleEntitlement
from preservation.catalog.models import Collection, PackageFile
from preservation.ingest import ingest
from preservation.repository import Repository

from .world import build_template, copy_world

# label -> (collection, package name, year, volume, count, seed)
DELIVERIES = {
    "aps_2019": ("pca-j", "aps-2019", 2019, 68, 6, 16),
    "aps_2018": ("pca-j", "aps-2018", 2018, 67, 3, 17),
    "aps_dark": ("journals", "aps-dark-2020", 2020, 69, 2, 18),
}


@dataclass
class ItemsWorld:
    world: object
    dois: dict[str, list[str]]  # delivery label -> DOIs

    @property
    def repo(self) -> Repository:
        return self.world.repo

    def title_id(self, collection: str = "pca-j") -> int:
        with self.repo.catalog.session() as s:
            return s.execute(select(Title.id).join(Collection, Collection.id == Title.collection_id)
                             .where(Collection.key == collection)).scalar_one()

    def item(self, doi: str) -> dict:
        with self.repo.catalog.session() as s:
            item = s.execute(select(Item).where(Item.doi == doi)).scalar_one()
            return {"id": item.id, "year": item.year, "volume": item.volume, "issue": item.issue,
                    "package_id": item.package_id, "published": item.published, "title_id": item.title_id}

    def fulltext(self, doi: str) -> tuple[str, str, int, str]:
        """(package id, path, size, sha256) of the item's PDF, from the catalog."""
        with self.repo.catalog.session() as s:
            row = s.execute(
                select(ItemFile.package_id, ItemFile.path, PackageFile.size, PackageFile.sha256)
                .join(Item, Item.id == ItemFile.item_id)
                .join(PackageFile, (PackageFile.package_id == ItemFile.package_id)
                      & (PackageFile.path == ItemFile.path))
                .where(Item.doi == doi, ItemFile.path.like("%.pdf"))).one()
            return tuple(row)

    def entitle_title(self, library: str, first: str, last: str, collection: str = "pca-j") -> None:
        title_id = self.title_id(collection)
        with self.repo.catalog.session() as s:
            library_id = s.execute(select(Library.id).where(Library.code == library)).scalar_one()
            s.add(TitleEntitlement(library_id=library_id, title_id=title_id, first_date=first, last_date=last))


def build_items_template(home, work) -> tuple[dict, dict, dict[str, list[str]]]:
    packages, tokens = build_template(home, work / "world")
    repo = Repository.open(home)
    dois = {}
    try:
        for label, (collection, name, year, volume, count, seed) in DELIVERIES.items():
            root = work / label
            dois[label] = write_articles(root, count, year=year, volume=volume,
                                         pdf_size=(3_000, 6_000), seed=seed)
            result = ingest(repo, root, collection, name=name, bag_info={"Year": str(year)})
            assert result["state"] == "preserved", result
            packages[label] = result["package_id"]
    finally:
        repo.close()
    return packages, tokens, dois


@pytest.fixture(scope="session")
def items_template(tmp_path_factory):
    base = tmp_path_factory.mktemp("items-template")
    packages, tokens, dois = build_items_template(base / "home", base / "deliveries")
    return base / "home", packages, tokens, dois


@pytest.fixture
def items(items_template, tmp_path):
    template, packages, tokens, dois = items_template
    world = copy_world(template, packages, tokens, tmp_path / "home")
    try:
        yield ItemsWorld(world=world, dois=dois)
    finally:
        world.repo.close()
