"""The search index: database objects that only migration 0007 describes, not the models.

Search (:mod:`preservation.search`) finds titles and items by any run of
characters of their titles, Chinese included, which no SQLAlchemy type
describes:

* **SQLite** — two FTS5 tables with the ``trigram`` tokenizer, kept in step
  with ``items`` and ``titles`` by triggers that note what changed and by a
  set-based update of the noted rows before each commit
  (:mod:`preservation.catalog.search_index`), so the metadata analyser's bulk
  Core inserts, cascaded deletes and updates all reach them.  They are
  *contentless* (``content=''``): the text lives once, in ``items`` and
  ``titles``; the index holds only trigrams.  Each indexed value ends with
  :data:`END` so that every two-character run of a value, the last one too,
  begins some trigram.  Two-character queries (``物理``) have tables of their
  own (``*_bigrams``, ``unicode61`` tokens) holding each value's
  two-character runs, counted out in SQL with :data:`POSITIONS_TABLE` (a
  trigger can hold no loop), so ``物理`` is one
  token with one posting list.  A two-character word holding punctuation
  (``C+``), which unicode61 would split, is answered from the trigram
  index's vocabulary (``*_vocab``) instead.
* **PostgreSQL** — ``pg_trgm`` GIN indexes (``gin_trgm_ops``) on the same
  columns for ``ILIKE`` of three characters or more, and GIN indexes on
  :data:`BIGRAM_FUNCTION` (the distinct two-character runs of a text, lower
  case) for two-character queries, which trigrams cannot serve.

``include_object`` tells alembic's comparison (``env.py`` and
``tests/test_catalog_schema.py``) to leave these objects alone.
"""

from __future__ import annotations

from typing import Any

END = "\ue000"  # a private-use character closing every indexed value (SQLite); never a query character
END_SQL = "char(57344)"  # the same character in SQLite's SQL

ITEMS_FTS = "search_items"  # columns item_title, authors; rowid = items.id
TITLES_FTS = "search_titles"  # columns title, title_transliterated, title_english; rowid = titles.id
BIGRAMS = "_bigrams"  # suffix of the FTS5 tables of two-character runs (unicode61 tokens)
POSITIONS_TABLE = "search_positions"  # 1..POSITIONS: the loop over a value's characters, in SQL
PENDING = "_pending"  # suffix of the lists of rows to index at commit (search_index, migration 0015)
POSITIONS = 4096  # two-character runs beyond a value's 4,096th character are not indexed
ITEM_COLUMNS = ("item_title", "authors")
TITLE_COLUMNS = ("title", "title_transliterated", "title_english")
FTS_SHADOW_SUFFIXES = ("_data", "_idx", "_config", "_docsize", "_content")

BIGRAM_FUNCTION = "search_bigrams"


def bigram_function_sql(name: str = BIGRAM_FUNCTION, *, migration: str = "0021") -> str:
    """``CREATE OR REPLACE FUNCTION name(value text)``: the distinct two-character runs of ``value`` in lower case,
    none holding a space (an empty array for NULL and for values shorter than two characters).

    ``migration`` "0007": the first definition, a SQL function with a sub-query.  "0021": the same arrays (in
    another order; an index's keys have none) from PL/pgSQL, in 40-50 % less of the server's time for a title
    and in a time that grows with a value's length, not its square (20,000 characters: 9 ms, not 3.8 s).  Up
    to 64 characters, each run is looked up in those found so far; a longer value is cut into characters once
    (``substr`` at each position walks it from its start) and its runs made distinct at the end.  The space
    test is made on the lower-case run when ``lower`` keeps the length (all but a few characters under ICU).
    """
    head = f"CREATE OR REPLACE FUNCTION {name}(value text) RETURNS text[] "
    attributes = "IMMUTABLE PARALLEL SAFE COST 10000"
    if migration == "0007":
        return (f"{head}LANGUAGE sql {attributes} AS $$ SELECT ARRAY(SELECT DISTINCT substr(lower(value), i, 2) "
                "FROM generate_series(1, char_length(value) - 1) i WHERE strpos(substr(value, i, 2), ' ') = 0) $$")
    return f"""{head}LANGUAGE plpgsql {attributes} AS $$
DECLARE
    n int := coalesce(char_length(value), 0);
    low text := lower(value);
    pair text;
    pairs text[] := '{{}}';
    chars text[];
    lows text[];
BEGIN
    IF n < 2 THEN
        RETURN pairs;
    END IF;
    IF n <= 64 AND char_length(low) = n THEN
        FOR i IN 1 .. n - 1 LOOP
            pair := substr(low, i, 2);
            IF strpos(pair, ' ') = 0 AND NOT (pair = ANY (pairs)) THEN
                pairs := pairs || pair;
            END IF;
        END LOOP;
        RETURN pairs;
    END IF;
    chars := string_to_array(value, NULL);
    lows := string_to_array(low, NULL);
    FOR i IN 1 .. n - 1 LOOP
        IF chars[i] <> ' ' AND chars[i + 1] <> ' ' THEN
            pairs := pairs || (coalesce(lows[i], '') || coalesce(lows[i + 1], ''));
        END IF;
    END LOOP;
    RETURN ARRAY(SELECT DISTINCT p FROM unnest(pairs) p);
END
$$"""

# PostgreSQL indexes: name -> (table, column, kind) with kind "trgm" or "bigram"
PG_INDEXES = {
    "ix_search_items_title_trgm": ("items", "item_title", "trgm"),
    "ix_search_items_authors_trgm": ("items", "authors", "trgm"),
    "ix_search_items_title_bigram": ("items", "item_title", "bigram"),
    "ix_search_items_authors_bigram": ("items", "authors", "bigram"),
    "ix_search_titles_title_trgm": ("titles", "title", "trgm"),
    "ix_search_titles_translit_trgm": ("titles", "title_transliterated", "trgm"),
    "ix_search_titles_english_trgm": ("titles", "title_english", "trgm"),
    "ix_search_titles_title_bigram": ("titles", "title", "bigram"),
    "ix_search_titles_translit_bigram": ("titles", "title_transliterated", "bigram"),
    "ix_search_titles_english_bigram": ("titles", "title_english", "bigram"),
}


def _fts_names() -> set[str]:
    names = {POSITIONS_TABLE}
    for base in (ITEMS_FTS, TITLES_FTS):
        names.add(f"{base}_vocab")
        names.add(base + PENDING)
        for table in (base, base + BIGRAMS):
            names.add(table)
            names.update(table + suffix for suffix in FTS_SHADOW_SUFFIXES)
    return names


SEARCH_TABLES = frozenset(_fts_names())
ISBN_INDEX = "ix_search_items_isbn"  # both dialects: a book's exact ISBN lookup
SEARCH_INDEXES = frozenset(PG_INDEXES) | {ISBN_INDEX}


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """alembic's ``include_object`` hook: False for the search index's own tables and indexes."""
    if type_ == "table" and name in SEARCH_TABLES:
        return False
    if type_ == "index" and name in SEARCH_INDEXES:
        return False
    return True
