"""An item's page lists the files of the version the library reads, bounded by the library's own item grant.

A library granted one article up to 2022 downloads the article as delivered by 2022 (the version of 2021);
its page must list that version's files and digests, not those of the 2023 correction.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta

from sqlalchemy import select, update

from devtools.articles import jats_article
from preservation.access.accounts import ROLE_LIBRARY, Principal, add_library
from preservation.access.items import item_detail
from preservation.catalog.access_models import AccessGrant, Library
from preservation.catalog.library_models import Item
from preservation.catalog.models import Package, PackageFile
from preservation.ingest import ingest

from ..metadata.samples import AUTHORS, jats_delivery, write

ARTICLE = "期刊/物理学报/第02篇.xml"


def test_an_item_grant_ending_in_2022_lists_the_2021_files_not_the_2023_correction(repo, tmp_path):
    one, two = tmp_path / "v1", tmp_path / "v2"
    dois = jats_delivery(one, 3)
    shutil.copytree(one, two)
    write(two, ARTICLE, jats_article(dois[1], "拓扑绝缘体的表面态（2，2023 年勘误）", AUTHORS, volume=68, issue=2,
                                     year=2019, month=3, pdf="第02篇.pdf", body_bytes=3000, seed=2, first_page=200))
    v1 = ingest(repo, one, "journals")
    v2 = ingest(repo, two, "journals", version_of=v1["package_id"])
    assert v1["state"] == v2["state"] == "preserved"
    add_library(repo, "lib-x", "某大学图书馆")
    with repo.catalog.session() as s:
        for pid, when in ((v1["package_id"], datetime(2021, 3, 1)), (v2["package_id"], datetime(2023, 2, 1))):
            s.execute(update(Package).where(Package.id == pid).values(created_at=when))
        digests = {pid: s.scalar(select(PackageFile.sha256).where(PackageFile.package_id == pid,
                                                                   PackageFile.path == f"data/{ARTICLE}"))
                   for pid in (v1["package_id"], v2["package_id"])}
        item = s.scalar(select(Item).where(Item.doi == dois[1]))
        library = s.scalar(select(Library).where(Library.code == "lib-x"))
        package = s.get(Package, v1["package_id"])
        s.add(AccessGrant(library_id=library.id, collection_id=package.collection_id, item_id=item.id, to_year=2022,
                          granted_by="staff", expires_at=datetime.now() + timedelta(days=30)))
        s.commit()
        principal = Principal(user_id=0, username="reader", role=ROLE_LIBRARY, library_id=library.id,
                              library_code="lib-x", library_name="某大学图书馆")
    assert digests[v1["package_id"]] != digests[v2["package_id"]]  # the correction really changed the XML

    page = item_detail(repo, principal, dois[1])

    assert page["standing"] == "read" and page["version"]["number"] == 1
    listed = {f["path"]: f["sha256"] for f in page["files"]}
    assert listed[f"data/{ARTICLE}"] == digests[v1["package_id"]]
