"""A small catalog of titles and items in Chinese and English for the search tests, on any catalog URL."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlalchemy import insert

from preservation.catalog.db import Catalog
from preservation.catalog.library_models import Item, ItemFile, Title, TitleIdentifier
from preservation.catalog.models import Collection, Package

# (item title, authors, year, doi)
ITEMS = [
    ("中国物理学报的历史", "张伟; 李明", 2019, "10.7498/aps.68.20190001"),
    ("高能物理", "王芳", 2018, "10.7498/aps.67.20180002"),
    ("化学反应动力学", "张伟", 2019, "10.7498/aps.68.20190003"),
    ("Physics of Fluids at low temperature", "Li, Wei; Smith, John", 2020, "10.1063/pof.2020.1"),
    ("Quantum computing (a review)", "Smith, John", 2019, "10.1063/qc.2019.2"),
    ('Rates of 50% growth_in "quoted" text * NEAR AND ^caret {item_title}: back\\slash', "Odd, Author", 2017,
     "10.1063/odd.2017.3"),
    ("Ab initio rates of 50 growth", "Even, Author", 2017, "10.1063/even.2017.4"),
    ("Templates in C+", "Stroustrup, B", 2016, "10.1063/cpp.2016.5"),
]
# (title, transliterated, english, identifiers)
TITLES = [
    ("物理学报", "Wuli Xuebao", "Acta Physica Sinica", [("issn_print", "1000-3290"), ("cn", "11-1958/O4")]),
    ("Physics of Fluids", "", "", [("issn_print", "1070-6631")]),
    ("化学手册", "Huaxue Shouce", "Handbook of Chemistry", [("isbn_print", "9780306406157")]),
]


@dataclass
class Data:
    package_id: str
    collection_id: int
    titles: dict[str, int] = field(default_factory=dict)  # title -> id
    items: dict[str, int] = field(default_factory=dict)  # doi -> id


def add_package(session, collection_id: int, name: str = "pkg-2019", bag_info: dict | None = None) -> str:
    package_id = str(uuid.uuid4())
    session.add(Package(id=package_id, collection_id=collection_id, name=name, state="preserved",
                        payload_oxum="1.1", payload_files=1, payload_bytes=1, total_bytes=1,
                        bag_info=bag_info or {}, policy="default"))
    session.flush()
    return package_id


def add_items(session, package_id: str, rows, title_id: int | None = None,
              files: tuple[str, ...] | None = None) -> dict[str, int]:
    """Items with Core inserts, as the metadata analyser writes them (the triggers must see those)."""
    out = {}
    for n, (item_title, authors, year, doi) in enumerate(rows):
        item_id = session.execute(insert(Item).values(
            package_id=package_id, title_id=title_id, kind="article", doi=doi, item_title=item_title,
            authors=authors, year=year, published=str(year) if year else "", source_format="jats",
        ).returning(Item.id)).scalar_one()
        for path in files or (f"data/a{n}.pdf",):
            session.execute(insert(ItemFile).values(item_id=item_id, package_id=package_id, path=path,
                                                    role="metadata" if path.endswith(".txt") else "fulltext"))
        out[doi] = item_id
    return out


def populate(catalog: Catalog) -> Data:
    with catalog.session() as s:
        collection = Collection(key="cnj", title="中文期刊", publisher="P", licence="L")
        s.add(collection)
        s.flush()
        package_id = add_package(s, collection.id)
        data = Data(package_id=package_id, collection_id=collection.id)
        for title, translit, english, identifiers in TITLES:
            t = Title(collection_id=collection.id, kind="journal", title=title, title_transliterated=translit,
                      title_english=english, publisher="P", kbart={})
            s.add(t)
            s.flush()
            for scheme, value in identifiers:
                s.add(TitleIdentifier(title_id=t.id, scheme=scheme, value=value))
            data.titles[title] = t.id
        data.items = add_items(s, package_id, ITEMS, title_id=data.titles["物理学报"])
    return data
