"""Search at catalog scale: 1,000,000 items with Chinese and English titles, on SQLite and PostgreSQL.

    python -m bench.bench_search                      # 1,000,000 items, both back ends, docs/benchmarks.md
    python -m bench.bench_search --items 20000 --no-docs --backends sqlite   # a quick run (CI)
    python -m bench.run --only search                 # as part of make bench

Titles are generated from a fixed seed: Chinese titles are runs of 2-4
character words drawn (Zipf-like, as real vocabularies are) from 6,000
words over 3,000 Han characters, English titles 4-10 words from 6,000
pseudo-words of one to three consonant-vowel-consonant syllables (2,000
syllables, themselves drawn Zipf-like); half the items are Chinese.  Authors are Chinese or
English names; every item has a DOI, every title an ISSN.  Items are
written the way the metadata analyser writes them (Core inserts, 10,000 a
statement batch and a transaction), so on SQLite the index is written set-based at each commit; on
PostgreSQL the items' GIN indexes are dropped for the load and rebuilt after
it (``insert s`` is then the load and the rebuild), as a bulk load is done.

A fresh process then runs the query classes below through
``preservation.search.search_in`` with a library, so each query includes
the standing of every hit on its page (20 hits), and times each one (after
five of each class run untimed, so that the process's first statements,
which compile SQL and fill caches, are not counted):

* ``chinese-2``: two-character words (``物理``), drawn as users type them:
  frequent words more often;
* ``chinese-3-4``: three- and four-character runs taken from existing titles;
* ``english``: one or two English words;
* ``identifier``: DOI, ISSN and ISBN exactly;
* ``author``: an author's surname and given name.

Targets (issue 16): p95 < 100 ms per class on both back ends, peak memory
< 500 MiB.  The index's cost is measured separately: 10,000 items inserted
into a fresh SQLite catalog with the search index, and 10,000 without it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import shutil
import statistics
import sys
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, insert, text

from bench.corpora import OUT_DIR
from bench.measure import run_child

POSTGRES_URL = os.environ.get("PRESERVE_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SEED = 16
ITEMS_PER_PACKAGE = 10_000
BATCH = 10_000
TITLES = 2_000
QUERIES_PER_CLASS = 60
WARM_UP = 5  # queries of each class run untimed first
CLASSES = ("chinese-2", "chinese-3-4", "english", "identifier", "author")
TARGET_P95_MS = 100.0
TARGET_RSS = 500 * 2**20
DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
BEGIN, END = "<!-- bench_search: begin -->", "<!-- bench_search: end -->"

HAN = [chr(0x4E00 + i * 7) for i in range(3000)]  # 3,000 characters spread over the common block
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"


class Vocabulary:
    """Words of one language with Zipf-like weights, from the seed."""

    def __init__(self, rng: random.Random, chinese: bool, size: int = 6000) -> None:
        if chinese:
            words = {"".join(rng.choice(HAN) for _ in range(rng.choice((2, 2, 2, 3, 4)))) for _ in range(size * 2)}
        else:
            # 2,000 consonant-vowel-consonant syllables, drawn Zipf-like too: common syllables, hence common
            # trigrams, as English has ("ion", "the"), without every word sharing a handful of them
            syllables = [a + v + z for a in "bcdfghjklmnprstvwyz" for v in "aeiou" for z in "bdgklmnprstxyz"]
            rng.shuffle(syllables)
            syllables = syllables[:2000]
            weights = list(itertools.accumulate(1.0 / (rank + 1) ** 0.7 for rank in range(len(syllables))))
            words = {"".join(rng.choices(syllables, cum_weights=weights, k=rng.randint(1, 3)))
                     for _ in range(size * 2)}
        self.words = sorted(words)[:size]
        rng.shuffle(self.words)
        self.cumulative = list(itertools.accumulate(1.0 / (rank + 1) ** 0.9 for rank in range(len(self.words))))

    def draw(self, rng: random.Random, k: int) -> list[str]:
        return rng.choices(self.words, cum_weights=self.cumulative, k=k)


def _title(rng: random.Random, vocab: Vocabulary, chinese: bool) -> str:
    if chinese:
        return "".join(vocab.draw(rng, rng.randint(4, 8)))
    return " ".join(vocab.draw(rng, rng.randint(4, 10))).capitalize()


def _author(rng: random.Random, chinese: bool, english: Vocabulary) -> str:
    if chinese:
        return rng.choice(SURNAMES) + "".join(rng.choice(HAN) for _ in range(rng.randint(1, 2)))
    return f"{english.draw(rng, 1)[0].capitalize()}, {english.draw(rng, 1)[0].capitalize()}"


def _issn(n: int) -> str:
    from preservation.identifiers import issn_check_digit

    digits = f"{2000000 + n:07d}"
    return f"{digits[:4]}-{digits[4:]}{issn_check_digit(digits)}"


def _isbn(n: int) -> str:
    from preservation.identifiers import isbn13_check_digit

    body = f"978{100000000 + n:09d}"
    return body + isbn13_check_digit(body)


def populate(catalog_url: str, items: int) -> dict:
    """Catalog, collection, packages, titles and ``items`` items; returns timings."""
    from preservation.catalog.access_models import Library
    from preservation.catalog.db import Catalog
    from preservation.catalog.library_models import Item, Title, TitleIdentifier
    from preservation.catalog.models import Collection, Package

    rng = random.Random(SEED)
    chinese, english = Vocabulary(rng, True), Vocabulary(rng, False)
    catalog = Catalog(catalog_url)
    catalog.upgrade()
    with catalog.session() as s:
        collection = Collection(key="bench", title="Bench journals", access_mode="pca")
        s.add(collection)
        s.add(Library(code="bench-lib", name="Bench library"))
        s.flush()
        packages = []
        for p in range((items + ITEMS_PER_PACKAGE - 1) // ITEMS_PER_PACKAGE):
            package = Package(id=str(uuid.UUID(int=rng.getrandbits(128))), collection_id=collection.id,
                              name=f"bench-{2000 + p % 25}-{p}", state="preserved", payload_oxum="1.1",
                              payload_files=1, payload_bytes=1, total_bytes=1, bag_info={}, policy="default")
            s.add(package)
            packages.append(package.id)
        title_ids = []
        for n in range(TITLES):
            zh = n % 2 == 0
            t = Title(collection_id=collection.id, kind="journal", title=_title(rng, chinese if zh else english, zh),
                      title_english="" if not zh else _title(rng, english, False), kbart={})
            s.add(t)
            s.flush()
            s.add(TitleIdentifier(title_id=t.id, scheme="issn_print", value=_issn(n)))
            title_ids.append(t.id)
    rebuild = _drop_postgresql_search_indexes(catalog) if catalog.dialect == "postgresql" else []
    start = time.perf_counter()
    done = 0
    with catalog.engine.connect() as conn:
        while done < items:
            rows = []
            for i in range(done, min(items, done + BATCH)):
                zh = i % 2 == 0
                rows.append({
                    "package_id": packages[i // ITEMS_PER_PACKAGE], "title_id": title_ids[i % TITLES],
                    "kind": "article", "doi": f"10.{5000 + i % 7}/bench.{i}",
                    "item_title": _title(rng, chinese if zh else english, zh),
                    "authors": "; ".join(_author(rng, zh, english) for _ in range(rng.randint(1, 4))),
                    "language": "zh" if zh else "en", "year": 1990 + i % 36, "published": str(1990 + i % 36),
                    "isbn": _isbn(i) if i % 50 == 0 else "", "source_format": "jats",
                })
            with conn.begin():
                conn.execute(insert(Item), rows)
            done += len(rows)
    insert_seconds = time.perf_counter() - start
    index_start = time.perf_counter()
    if rebuild:
        with catalog.engine.begin() as conn:
            conn.execute(text("SET LOCAL maintenance_work_mem = '256MB'"))
            for definition in rebuild:
                conn.execute(text(definition))
    index_seconds = time.perf_counter() - index_start
    analyse = time.perf_counter()
    with catalog.engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    analyse_seconds = time.perf_counter() - analyse
    catalog.dispose()
    return {"items": items, "titles": TITLES, "packages": len(packages), "insert_seconds": insert_seconds,
            "index_seconds": index_seconds, "analyse_seconds": analyse_seconds}


def _drop_postgresql_search_indexes(catalog) -> list[str]:
    """Drop the search GIN indexes of ``items`` for a bulk load; returns the statements that rebuild them."""
    from preservation.catalog.search_tables import PG_INDEXES

    names = [name for name, (table, _, _) in PG_INDEXES.items() if table == "items"]
    with catalog.engine.begin() as conn:
        definitions = list(conn.execute(text(
            "SELECT pg_get_indexdef(c.oid) FROM pg_class c WHERE c.relname = ANY(:names) "
            "AND c.relnamespace = current_schema()::regnamespace"), {"names": names}).scalars())
        for name in names:
            conn.execute(text(f"DROP INDEX {name}"))
    return definitions


def _queries(rng: random.Random, session) -> dict[str, list[dict]]:
    """The query classes, drawn from the vocabulary and from rows actually in the catalog."""
    # the vocabularies of populate: the same seed, built in the same order
    seeded = random.Random(SEED)
    chinese, english = Vocabulary(seeded, True), Vocabulary(seeded, False)
    top = session.execute(text("SELECT max(id) FROM items")).scalar_one()
    sample = [rng.randint(1, top) for _ in range(QUERIES_PER_CLASS)]
    rows = {r[0]: r for r in session.execute(
        text("SELECT id, item_title, authors, doi, isbn FROM items WHERE id IN (%s)" % ",".join(map(str, sample))))}
    picked = [rows[i] for i in sample if i in rows]
    two = [w for w in chinese.draw(rng, QUERIES_PER_CLASS * 5) if len(w) == 2][:QUERIES_PER_CLASS]
    three_four = []
    for _, title, *_ in picked:
        if not title.isascii():
            n = rng.choice((3, 4))
            start = rng.randint(0, max(0, len(title) - n))
            three_four.append(title[start:start + n])
    while len(three_four) < QUERIES_PER_CLASS:
        three_four.append(rng.choice(chinese.words[:500]) + rng.choice(HAN))
    words = [" ".join(english.draw(rng, rng.choice((1, 1, 2)))) for _ in range(QUERIES_PER_CLASS)]
    identifiers = []
    for n, (_, _, _, doi, isbn) in enumerate(picked):
        identifiers.append({"doi": doi} if n % 3 else {"issn": _issn(rng.randrange(TITLES))})
    identifiers += [{"isbn": _isbn(50 * rng.randrange(top // 50))} for _ in range(QUERIES_PER_CLASS // 6)]
    authors = [{"author": a.split(";")[0].split(",")[0].strip()} for _, _, a, _, _ in picked]
    return {"chinese-2": [{"q": w} for w in two], "chinese-3-4": [{"q": w} for w in three_four[:QUERIES_PER_CLASS]],
            "english": [{"q": w} for w in words], "identifier": identifiers, "author": authors}


def query(catalog_url: str) -> dict:
    """Time every query class in this (fresh) process; returns per-query milliseconds by class."""
    from preservation import search
    from preservation.catalog.db import Catalog

    catalog = Catalog(catalog_url)
    rng = random.Random(SEED + 1)
    with catalog.session() as s:
        classes = _queries(rng, s)
        library_id = s.execute(text("SELECT id FROM libraries WHERE code = 'bench-lib'")).scalar_one()
    for queries in classes.values():  # warm-up, untimed: the process's first statements compile and cache
        for kwargs in queries[:WARM_UP]:
            with catalog.session() as s:
                search.search_in(s, search.make_query(**kwargs), library_id)
    times: dict[str, list[float]] = {}
    hits: dict[str, int] = {}
    for name, queries in classes.items():
        times[name], hits[name] = [], 0
        for kwargs in queries:
            with catalog.session() as s:
                start = time.perf_counter()
                result = search.search_in(s, search.make_query(**kwargs), library_id)
                times[name].append((time.perf_counter() - start) * 1000)
            hits[name] += len(result["items"]["hits"]) + len(result["titles"]["hits"])
    catalog.dispose()
    return {"times_ms": times, "hits": hits, "examples": {k: v[:3] for k, v in classes.items()}}


INDEX_ITEMS = 10_000
INDEX_REPEAT = 3


def index_cost(items: int = INDEX_ITEMS, repeat: int = INDEX_REPEAT) -> dict:
    """Seconds (wall and CPU, best of ``repeat``) to insert ``items`` items and commit, in fresh SQLite catalogs.

    ``with index``: as the catalog is, the triggers noting the rows and the
    set-based index update at commit (catalog.search_index); ``without
    index``: every search trigger dropped, the items' insert alone.  SQLite
    runs in this process, so its work is in the CPU figure.
    """
    from preservation.catalog.db import Catalog
    from preservation.catalog.library_models import Item
    from preservation.catalog.models import Collection, Package
    from preservation.catalog.search_tables import ITEMS_FTS, TITLES_FTS

    rng = random.Random(SEED)
    chinese, english = Vocabulary(rng, True), Vocabulary(rng, False)
    rows = [{"kind": "article", "doi": f"10.5000/t.{i}", "item_title": _title(rng, chinese if i % 2 else english,
                                                                              bool(i % 2)),
             "authors": _author(rng, bool(i % 2), english), "year": 2000, "source_format": "jats"}
            for i in range(items)]
    out: dict[str, dict[str, float]] = {}
    for _ in range(repeat):
        for label in ("with index", "without index"):
            directory = OUT_DIR / f"search-index-{uuid.uuid4().hex[:8]}"
            directory.mkdir(parents=True)
            try:
                catalog = Catalog(f"sqlite:///{directory / 'catalog.sqlite'}")
                catalog.upgrade()
                with catalog.session() as s:
                    c = Collection(key="t", title="t")
                    s.add(c)
                    s.flush()
                    s.add(Package(id="p", collection_id=c.id, name="p", state="preserved", payload_oxum="1.1",
                                  payload_files=1, payload_bytes=1, total_bytes=1, bag_info={}, policy="default"))
                if label == "without index":
                    with catalog.engine.begin() as conn:
                        for fts in (ITEMS_FTS, TITLES_FTS):
                            for suffix in ("ai", "ad", "au"):
                                conn.execute(text(f"DROP TRIGGER {fts}_{suffix}"))
                start, cpu = time.perf_counter(), time.process_time()
                with catalog.engine.begin() as conn:
                    conn.execute(insert(Item), [{**r, "package_id": "p"} for r in rows])
                seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
                best = out.setdefault(label, {"seconds": seconds, "cpu": cpu})
                best["seconds"], best["cpu"] = min(best["seconds"], seconds), min(best["cpu"], cpu)
                catalog.dispose()
            finally:
                shutil.rmtree(directory, ignore_errors=True)
    return out


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))] if ordered else 0.0


def _postgres_schema() -> tuple[str, str]:
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    engine = create_engine(POSTGRES_URL)
    try:
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    finally:
        engine.dispose()
    return f"{POSTGRES_URL}?options=-csearch_path%3D{schema}", schema


def _drop_postgres_schema(schema: str) -> None:
    engine = create_engine(POSTGRES_URL)
    try:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        engine.dispose()


def measure(backend: str, items: int) -> dict:
    schema = None
    directory = OUT_DIR / f"search-{backend}-{uuid.uuid4().hex[:8]}"
    if backend == "sqlite":
        directory.mkdir(parents=True)
        url = f"sqlite:///{directory / 'catalog.sqlite'}"
    else:
        url, schema = _postgres_schema()
    try:
        filled = run_child("bench.bench_search:populate", catalog_url=url, items=items)
        queried = run_child("bench.bench_search:query", catalog_url=url)
    finally:
        if schema:
            _drop_postgres_schema(schema)
        shutil.rmtree(directory, ignore_errors=True)
    classes = {}
    for name, values in queried.result["times_ms"].items():
        classes[name] = {"queries": len(values), "p50_ms": statistics.median(values), "p95_ms": _p(values, 0.95),
                         "max_ms": max(values), "hits": queried.result["hits"][name]}
    return {"backend": backend, "items": items,
            "insert_seconds": filled.result["insert_seconds"] + filled.result["index_seconds"],
            "populate_peak_rss": filled.peak_rss, "query_peak_rss": queried.peak_rss, "classes": classes,
            "others": max(filled.others, queried.others), "examples": queried.result["examples"]}


def render(results: list[dict], index: dict | None) -> str:
    lines = [BEGIN, "## Search", "",
             "Output of `python -m bench.bench_search` (`bench/bench_search.py`): items with generated Chinese and "
             "English titles written as the metadata analyser writes them, then each query class timed in a fresh "
             "process through `preservation.search.search_in` with a library (each page's standings included). "
             f"Targets: p95 < {TARGET_P95_MS:.0f} ms per class, peak memory < 500 MiB. `insert s` is the items' "
             "load: on SQLite with the index written at each commit (10,000 items a transaction), on PostgreSQL with the items' GIN indexes dropped and "
             "rebuilt after (included).", "",
             "| back end | items | insert s | class | queries | p50 ms | p95 ms | max ms | query peak RSS | target |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        for name, c in r["classes"].items():
            met = c["p95_ms"] < TARGET_P95_MS and r["query_peak_rss"] < TARGET_RSS
            lines.append(f"| {r['backend']} | {r['items']:,} | {r['insert_seconds']:.0f} | {name} | {c['queries']} | "
                         f"{c['p50_ms']:.1f} | {c['p95_ms']:.1f} | {c['max_ms']:.1f} | "
                         f"{r['query_peak_rss'] / 2**20:.0f} MiB | {'met' if met else 'MISSED'} |")
    lines.append("")
    for r in results:
        lines.append(f"- {r['backend']}: populating peak RSS {r['populate_peak_rss'] / 2**20:.0f} MiB; other "
                     f"processes used {r['others']:.0%} of the CPU during a measurement")
    if index:
        w, wo = index["with index"], index["without index"]
        lines.append(f"- SQLite search index: {INDEX_ITEMS:,} items inserted and committed in {w['seconds']:.2f} s "
                     f"(CPU {w['cpu']:.2f} s) with it (rows noted by the triggers, indexed set-based at commit), "
                     f"{wo['seconds']:.2f} s (CPU {wo['cpu']:.2f} s) without it: {w['cpu'] / wo['cpu']:.1f} × the "
                     f"CPU (best of {INDEX_REPEAT} each)")
    lines += ["", END]
    return "\n".join(lines)


def read_section() -> str | None:
    """The section the last run wrote to bench/out (for bench.run's report)."""
    path = OUT_DIR / "search.md"
    return path.read_text(encoding="utf-8") if path.exists() else None


def write_docs(section: str) -> None:
    doc = DOCS.read_text(encoding="utf-8")
    if BEGIN in doc and END in doc:
        doc = doc[:doc.index(BEGIN)] + section + doc[doc.index(END) + len(END):]
    else:
        doc = doc.rstrip("\n") + "\n\n" + section + "\n"
    DOCS.write_text(doc, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--no-docs", action="store_true", help="print the table, leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)
    results = []
    for backend in args.backends.split(","):
        results.append(measure(backend, args.items))
        print(json.dumps(results[-1]["classes"], indent=1), file=sys.stderr)
    index = run_child("bench.bench_search:index_cost").result if "sqlite" in args.backends else None
    section = render(results, index)
    print(section)
    (OUT_DIR / "search.json").write_text(json.dumps({"results": results, "index": index}, indent=1,
                                                    ensure_ascii=False), encoding="utf-8")
    (OUT_DIR / "search.md").write_text(section, encoding="utf-8")
    if not args.no_docs:
        write_docs(section)
    missed = any(c["p95_ms"] >= TARGET_P95_MS for r in results for c in r["classes"].values()) or \
        any(r["query_peak_rss"] >= TARGET_RSS for r in results)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
