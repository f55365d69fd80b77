"""Bad input: every malformed delivery or bag is refused with its coded findings and leaves no trace.

One repository serves the whole corpus: a refused delivery must not change
it, so each case checks the catalog counts, the staging area, the node roots
and the sentinel directory (the target of every escape attempt) before and
after.  The good cases, awkward but legal names, must round-trip exactly.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import func, select

from preservation.audit import audit
from preservation.catalog.models import Event, Job, Package, PackageFile, Replica
from preservation.errors import BagInvalid, DeliveryRejected
from preservation.ingest import ingest
from preservation.restore import restore

from ..fixtures import make_repo
from . import summary
from .inputs import BAD, GOOD
from .invariants import tree

MARKER = "untouched.txt"
RESULTS: dict[str, int] = {"bad": 0, "good": 0}


@pytest.fixture(scope="module")
def place(tmp_path_factory):
    """(repository, base directory): home, sentinel and the cases' sources side by side under ``base``."""
    base = tmp_path_factory.mktemp("bad-inputs")
    (base / "sentinel").mkdir()
    (base / "sentinel" / MARKER).write_text("nothing else may appear here\n")
    repo = make_repo(base / "home")
    yield repo, base
    repo.close()
    summary.report(f"bad input: {RESULTS['bad']}/{len(BAD)} malformed deliveries and bags refused with their codes, "
                   f"nothing registered, staged or written outside; {RESULTS['good']}/{len(GOOD)} awkward-but-legal "
                   "deliveries round-tripped")


def _counts(repo) -> tuple[int, ...]:
    with repo.catalog.session() as s:
        return tuple(s.scalar(select(func.count()).select_from(t)) for t in (Package, PackageFile, Replica, Job, Event))


def _finding_codes(error: Exception) -> set[str]:
    if isinstance(error, DeliveryRejected):
        return {f.code for f in error.findings}
    assert isinstance(error, BagInvalid)
    report = error.report
    return {f.code for f in getattr(report, "findings", report)}


def _escapes(base: Path) -> list[str]:
    """Files that an escaping path would have created anywhere outside the cases' own sources."""
    found = []
    for top in ("home", "sentinel"):
        for path in tree(base / top):
            if "EVIL" in path or "pwned" in path:
                found.append(f"{top}/{path}")
    sentinel = sorted(os.listdir(base / "sentinel"))
    if sentinel != [MARKER]:
        found.append(f"sentinel holds {sentinel}")
    return found


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_input_is_refused_with_its_codes_and_leaves_no_trace(place, name):
    repo, base = place
    case = BAD[name]
    source = case.build(base / "cases" / name, base / "sentinel")
    before = _counts(repo)
    with pytest.raises((DeliveryRejected, BagInvalid)) as raised:
        ingest(repo, source, "journals")
    assert type(raised.value) is case.error, f"{type(raised.value).__name__}: {raised.value}"
    codes = _finding_codes(raised.value)
    assert case.codes <= codes, f"wanted {sorted(case.codes)}, got {sorted(codes)}: {raised.value}"
    assert _counts(repo) == before, "a refused delivery changed the catalog"
    assert os.listdir(repo.staging_dir) == [], "a refused delivery left something in staging"
    for node in (base / "home" / "nodes").iterdir():
        assert tree(node) == {}, f"a refused delivery wrote to node {node.name}"
    assert _escapes(base) == []
    RESULTS["bad"] += 1


@pytest.mark.parametrize("name", sorted(GOOD))
def test_awkward_but_legal_names_round_trip(place, name):
    repo, base = place
    source, files = GOOD[name](base / "good" / name)
    result = ingest(repo, source, "journals")
    assert result["state"] == "preserved"
    assert audit(repo, package_id=result["package_id"]).ok
    out = base / "restored" / name
    restore(repo, result["package_id"], out)
    restored = {path[len("data/"):]: full.read_bytes() for path, full in tree(out).items() if path.startswith("data/")}
    assert restored == files
    assert os.listdir(repo.staging_dir) == []
    RESULTS["good"] += 1
