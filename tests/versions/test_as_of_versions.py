"""'As of' access: a library reads the versions delivered within its entitled period."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import update

from preservation import versions
from preservation.access.accounts import add_library
from preservation.access.entitlements import add_entitlement
from preservation.catalog.access_models import Library
from preservation.catalog.models import Collection, Package
from preservation.deaccession import deaccession
from preservation.errors import NotFound
from preservation.ingest import ingest
from preservation.restore import restore

from .helpers import FIRST, second, write_delivery

DELIVERED = (datetime(2021, 3, 1), datetime(2022, 6, 1), datetime(2023, 2, 1))


@pytest.fixture
def monthly(repo, tmp_path):
    """Three versions of a pca collection's package, delivered in 2021, 2022 and 2023."""
    third = second(FIRST)
    third["g.txt"] = b"golf, delivered in 2023\n"
    ids = []
    for n, files in enumerate((FIRST, second(FIRST), third), start=1):
        ids.append(ingest(repo, write_delivery(tmp_path / f"v{n}", files), "journals",
                          version_of=ids[-1] if ids else None)["package_id"])
    with repo.catalog.session() as s:
        for pid, when in zip(ids, DELIVERED):
            s.execute(update(Package).where(Package.id == pid).values(created_at=when))
        s.execute(update(Collection).where(Collection.key == "journals").values(access_mode="pca"))
    add_library(repo, "pku", "Peking University Library")
    return ids


def _library(repo, code):
    with repo.catalog.session() as s:
        return s.query(Library).filter_by(code=code).one().id


@pytest.mark.parametrize("to_year, expected", [(2022, 2), (2021, 1), (2023, 3), (2030, 3)])
def test_a_cancelled_library_reads_the_state_delivered_up_to_its_last_paid_year(repo, monthly, to_year, expected):
    add_entitlement(repo, "pku", "journals", 2018, to_year)
    library = _library(repo, "pku")
    with repo.catalog.session() as s:
        found = versions.version_for_library(s, library, monthly[2])  # any version's id will do
    assert found.number == expected and found.package_id == monthly[expected - 1]


def test_what_it_reads_is_that_state(repo, monthly, tmp_path):
    add_entitlement(repo, "pku", "journals", 2019, 2022)
    library = _library(repo, "pku")
    with repo.catalog.session() as s:
        found = versions.version_for_library(s, library, monthly[0])
    restore(repo, found.package_id, tmp_path / "as-of-2022")
    assert not (tmp_path / "as-of-2022" / "data/g.txt").exists()
    assert (tmp_path / "as-of-2022" / "data/b.txt").read_bytes() == b"bravo, corrected\n"


def test_without_entitlement_the_newest_and_before_the_first_delivery_the_first(repo, monthly):
    library = _library(repo, "pku")
    with repo.catalog.session() as s:  # no entitlement: a staff grant opens it, and the period has no end
        assert versions.version_for_library(s, library, monthly[0]).number == 3
        assert versions.version_for_library(s, library, monthly[0], until=datetime(2022, 12, 31)).number == 2
    add_entitlement(repo, "pku", "journals", 2010, 2020)
    with repo.catalog.session() as s:  # paid up to 2020, delivered from 2021: the earliest state there is
        assert versions.version_for_library(s, library, monthly[2]).number == 1
        assert versions.period_end(s, library, monthly[2]) == datetime(2020, 12, 31, 23, 59, 59, 999999)
        with pytest.raises(NotFound):
            versions.version_for_library(s, library, "no-such-package")


def test_a_grant_that_ends_earlier_ends_the_period_and_open_collections_read_the_newest_kept(repo, monthly):
    add_entitlement(repo, "pku", "journals", 2019, 2023)
    library = _library(repo, "pku")
    with repo.catalog.session() as s:
        assert versions.version_for_library(s, library, monthly[0], until=datetime(2022, 12, 31)).number == 2
        s.execute(update(Collection).where(Collection.key == "journals").values(access_mode="open"))
    with repo.catalog.session() as s:
        assert versions.version_for_library(s, library, monthly[0]).number == 3
    deaccession(repo, monthly[0], versions=[3], reason="withdrawn by the publisher")
    with repo.catalog.session() as s:
        assert versions.version_for_library(s, library, monthly[0]).number == 2  # withdrawn versions are passed over
