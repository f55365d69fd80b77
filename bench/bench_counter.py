"""COUNTER 5.1 reports at scale: TR, IR and DR of one library over a month of usage events.

    python -m bench.bench_counter [--events N] [--backends sqlite,postgresql]

In a fresh repository per back end: one collection with 200 titles (one in
four a book) of 10 items each, one library with 300 users, and ``--events``
usage events in one month (seeded: a user clicks an item, a click in eight is
a double click 5 s later, two in three are requests), inserted in bulk.  Then
each report is built in a child process of its own (``counter.build_report``)
and its time and peak resident set (VmHWM) are printed, at ``--events`` and at
twice as many: the report rows are the same, so the peak should not grow with
the number of events (the double-click filter streams the events; unique
counts are distinct counts in the database).

Not a unit test: nothing here asserts a time or a size.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import shutil
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

from bench.corpora import OUT_DIR

SEED = 51
ROOT = OUT_DIR / "counter"
TITLES, ITEMS_PER_TITLE, USERS = 200, 10, 300
MONTH = datetime(2026, 3, 1)


def _peak_rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def _report(home: str, report: str, queue) -> None:
    from preservation.access import counter
    from preservation.repository import Repository

    repo = Repository.open(home)
    try:
        started = time.perf_counter()
        req = counter.build_request(report, "BENCH", counter.parse_period("2026-03", "2026-03"), {})
        result = counter.build_report(repo, req)
        seconds = time.perf_counter() - started
    finally:
        repo.close()
    items = result["Report_Items"]
    rows = len(items[0]["Items"]) if report == "ir" and items else len(items)
    queue.put({"seconds": seconds, "peak_rss": _peak_rss(), "rows": rows})


def _run_report(home: Path, report: str) -> dict:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_report, args=(str(home), report, queue))
    child.start()
    outcome = queue.get()
    child.join()
    return outcome


def _home(backend: str) -> Path:
    from preservation.access.accounts import add_library
    from preservation.collection import add_collection
    from preservation.home import init_home
    from preservation.repository import Repository

    home = ROOT / f"home-{backend}"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    config = ""
    if backend == "postgresql":
        from tests.fixtures import _postgres_url
        url, _schema = _postgres_url()
        config = f"catalog_url: '{url}'\n"
    (home / "preserve.yaml").write_text(config, encoding="utf-8")
    init_home(home)
    with Repository.open(home) as repo:
        add_collection(repo, "bench", "Bench 期刊库")
        add_library(repo, "BENCH", "Bench 图书馆")
    return home


def _catalogue(home: Path) -> tuple[int, int, list[tuple[int, int, str]]]:
    """Titles, items and a package; returns (library id, collection id, [(item id, title id, package id)])."""
    from sqlalchemy import select

    from preservation.catalog.access_models import Library
    from preservation.catalog.library_models import Item, Title
    from preservation.catalog.models import Collection, Package
    from preservation.repository import Repository

    with Repository.open(home) as repo, repo.catalog.session() as s:
        library_id = s.execute(select(Library.id)).scalar_one()
        collection_id = s.execute(select(Collection.id)).scalar_one()
        package = Package(id="00000000-0000-4000-8000-000000000051", collection_id=collection_id, name="bench",
                          payload_oxum="0.0", payload_files=0, payload_bytes=0, total_bytes=0, policy="default")
        s.add(package)
        s.flush()
        out = []
        for t in range(TITLES):
            title = Title(collection_id=collection_id, kind="book" if t % 4 == 0 else "journal", title=f"题名 {t}")
            s.add(title)
            s.flush()
            for i in range(ITEMS_PER_TITLE):
                item = Item(package_id=package.id, title_id=title.id, kind="chapter" if t % 4 == 0 else "article",
                            item_title=f"Item {t}.{i}", year=2000 + i, source_format="csv")
                s.add(item)
                s.flush()
                out.append((item.id, title.id, package.id))
        return library_id, collection_id, out


def _add_events(home: Path, events: int, library_id: int, collection_id: int, items: list, seed: int) -> None:
    from preservation.access.usage import pseudonym, session_of
    from preservation.catalog.access_models import UsageEvent
    from preservation.repository import Repository

    rng = random.Random(seed)
    batch: list[dict] = []
    with Repository.open(home) as repo:
        engine = repo.catalog.engine
        written = 0
        while written < events:
            item_id, title_id, package_id = rng.choice(items)
            user = rng.randrange(USERS) + 1
            at = MONTH + timedelta(seconds=rng.randrange(28 * 86400))
            metric = "request" if rng.random() < 2 / 3 else "investigation"
            clicks = 2 if rng.random() < 1 / 8 else 1
            for click in range(clicks):
                when = at + timedelta(seconds=5 * click)
                visitor = f"user:{user}"
                batch.append(dict(occurred_at=when, library_id=library_id, user_id=user, collection_id=collection_id,
                                  package_id=package_id, path=f"data/{item_id}.pdf", bytes=1000, kind="download",
                                  metric=metric, item_id=item_id, title_id=title_id, visitor=pseudonym(visitor),
                                  session_id=session_of(visitor, when), month="2026-03"))
                written += 1
            if len(batch) >= 5000:
                with engine.begin() as conn:
                    conn.execute(UsageEvent.__table__.insert(), batch)
                batch.clear()
        if batch:
            with engine.begin() as conn:
                conn.execute(UsageEvent.__table__.insert(), batch)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args(argv)
    results = []
    for backend in args.backends.split(","):
        home = _home(backend)
        library_id, collection_id, items = _catalogue(home)
        total = 0
        for step, events in enumerate((args.events, args.events)):
            _add_events(home, events, library_id, collection_id, items, SEED + step)
            total += events
            for report in ("tr", "ir", "dr"):
                outcome = _run_report(home, report)
                print(f"  {backend:<10} {total:>9,} events  {report.upper()}  {outcome['seconds']:7.2f} s  "
                      f"{total / outcome['seconds']:10,.0f} events/s  {outcome['rows']:5} rows  "
                      f"peak RSS {outcome['peak_rss'] / 2**20:5.0f} MiB")
                results.append({"backend": backend, "events": total, "report": report, **outcome})
    (ROOT / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
