"""Titles and items in the access world's packages: one per access mode, DOIs with slashes and Chinese."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from preservation.catalog.access_models import Library
from preservation.catalog.library_models import Title, TitleEntitlement, TitleIdentifier
from preservation.catalog.models import Collection

from .catalog_data import add_items

TEXT_FILE = "data/articles/a.txt"
BINARY_FILE = "data/articles/中文/b.bin"
OTHER_FILE = "data/index.xml"  # in every package, but no item's file

# label of the world's package -> (item title, authors, year, doi)
ITEMS = {
    "pca_2012": ("量子物理研究", "张伟", 2012, "10.7498/aps.61.1"),
    "pca_2019": ("物理学进展", "李明", 2019, "10.7498/aps.68.1"),
    "dark": ("暗物质物理", "王芳", 2020, "10.1000/dark.1"),
    "open": ("开放物理数据", "Smith, John", 2021, "10.1000/open/with/slashes/files/x"),
    "trigger": ("触发物理档案", "赵强", 2018, "10.1000/物理.1"),
}


@dataclass
class LibraryItems:
    world: object
    title_id: int
    items: dict[str, int]  # doi -> id


def library_id(session, code: str) -> int:
    return session.execute(select(Library.id).where(Library.code == code)).scalar_one()


def add_title_entitlement(world, code: str, title_id: int, first: str, last: str) -> None:
    with world.repo.catalog.session() as s:
        s.add(TitleEntitlement(library_id=library_id(s, code), title_id=title_id, first_date=first, last_date=last))


def add_library_items(world) -> LibraryItems:
    items: dict[str, int] = {}
    with world.repo.catalog.session() as s:
        pca = s.execute(select(Collection.id).where(Collection.key == "pca-j")).scalar_one()
        title = Title(collection_id=pca, kind="journal", title="物理学报", title_english="Acta Physica Sinica",
                      kbart={})
        s.add(title)
        s.flush()
        s.add(TitleIdentifier(title_id=title.id, scheme="issn_print", value="1000-3290"))
        for label, row in ITEMS.items():
            title_id = title.id if label.startswith("pca") else None
            added = add_items(s, world.packages[label], [row], title_id=title_id, files=(TEXT_FILE, BINARY_FILE))
            items.update(added)
        title_id = title.id
    return LibraryItems(world=world, title_id=title_id, items=items)
