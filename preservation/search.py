"""Search: titles and items by words of their titles (Chinese included), by identifier, author and year.

Chinese is not split by spaces, so a "word" here is any run of characters
that must occur in the title, not a dictionary word: ``物理`` finds
``中国物理学报``, ``phys`` finds ``Physics of Fluids``.  A query is split on
white space (full-width U+3000 too); every word must occur (AND), in any of a
title's titles (original script, transliteration, English) or in an item's
title.  Words of one character are ignored, since a single Han character
matches much of a Chinese catalog; a query of nothing else is refused.  A
query that is itself a valid DOI, ISSN, ISBN or CN serial number
(:func:`preservation.identifiers.recognise`) is an exact lookup instead.

The index (:mod:`preservation.catalog.search_tables`, migration 0007):

* SQLite: FTS5 ``trigram`` tables; a word of three characters or more is a
  quoted phrase (its trigrams in a row: a substring).  A two-character word
  of letters or digits is one token of the bigram tables (``unicode61``
  tokens of each value's two-character runs), so ``物理`` reads one posting
  list; a two-character word with punctuation (``C+``) is the set of indexed
  trigrams that begin with it, read from the trigram index's vocabulary and
  OR-ed (every indexed value ends with a marker character, so a value's last
  two characters begin a trigram too).
* PostgreSQL: ``ILIKE`` served by ``pg_trgm`` GIN indexes for three
  characters or more, and by GIN indexes of each value's two-character runs
  for two; each query counts its matches first and picks its plan by the
  count (see :class:`_PostgreSQL`).

Nothing of the query reaches SQL but bound parameters and quoted FTS5
strings (``"`` doubled), so FTS5 operators (``NEAR``, ``AND``, ``*``, ``^``,
parentheses, column filters) typed by a user are only characters to find;
``%``, ``_`` and ``\\`` are escaped for ``ILIKE``.

Hits come newest first (highest id), at most :data:`MAX_LIMIT` a page.
Totals are counted up to :data:`COUNT_CAP` (``total_exact`` says whether the
count is complete): counting every match of a common word would cost more
than the page.  Each hit carries the caller's **standing** (see
:class:`Standings`).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Iterable

from sqlalchemy import and_, or_, select, text
from sqlalchemy.orm import Session, joinedload

from preservation import identifiers as ids
from preservation.access import rights
from preservation.access.reasons import Reason, word
from preservation.catalog.access_models import Library
from preservation.catalog.library_models import (
    ID_CN,
    ID_ISBN_ONLINE,
    ID_ISBN_PRINT,
    ID_ISSN_ONLINE,
    ID_ISSN_PRINT,
    Item,
    Title,
    TitleIdentifier,
)
from preservation.catalog.models import PACKAGE_DEACCESSIONED, Collection, Package
from preservation.catalog.search_tables import BIGRAM_FUNCTION, BIGRAMS, END, ITEMS_FTS, TITLES_FTS
from preservation.errors import InvalidRequest, NotFound
from preservation.repository import Repository
from preservation.text import check_xml_text

MAX_QUERY = 200  # characters of a query or an author
MAX_WORDS = 8
MAX_LIMIT = 100
DEFAULT_LIMIT = 20
MAX_OFFSET = 10_000  # deeper pages cost a scan of everything before them: narrow the query instead
COUNT_CAP = 1000
MIN_YEAR, MAX_YEAR = 1000, 2999

READ = "read"  # an active grant (or an open collection) lets the library read it now
REQUEST = "request"  # not yet readable, but a request would be approved by the policy at once
DARK = "dark"  # only staff can open it: a request goes to them
STANDINGS = (READ, REQUEST, DARK)

_TITLE_FIELDS = ("title", "title_transliterated", "title_english")


@dataclass(frozen=True)
class Query:
    """A checked search: words of titles and/or an author, or one exact identifier, and an optional year."""

    words: tuple[str, ...] = ()
    author: tuple[str, ...] = ()
    identifier: tuple[str, str] | None = None  # (scheme: issn|isbn|cn|doi, normalised value)
    year: int | None = None
    offset: int = 0
    limit: int = DEFAULT_LIMIT

    def to_dict(self) -> dict[str, Any]:
        return {"words": list(self.words), "author": list(self.author),
                "identifier": dict(zip(("scheme", "value"), self.identifier)) if self.identifier else None,
                "year": self.year, "offset": self.offset, "limit": self.limit}


def _words(value: str, field: str) -> tuple[str, ...]:
    check_xml_text(value, field, max_length=MAX_QUERY)
    if END in value:
        raise InvalidRequest(f"{field} contains U+E000, a character search does not look for")
    words = [w for w in value.split() if len(w) >= 2]
    if len(words) > MAX_WORDS:
        raise InvalidRequest(f"{field} has more than {MAX_WORDS} words")
    if value.strip() and not words:
        raise InvalidRequest(f"{field} needs a word of at least two characters")
    return tuple(dict.fromkeys(w.lower() for w in words))


def _whole(value: object, field: str, low: int, high: int) -> int:
    """A whole number from outside: an int, or ASCII digits only; refused outside ``low``..``high``."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InvalidRequest(f"{field} must be a whole number")
    if isinstance(value, str):
        if not (value.isascii() and value.isdigit() and len(value) <= 19):
            raise InvalidRequest(f"{field} must be a whole number written with digits 0-9")
        value = int(value)
    if not low <= value <= high:
        raise InvalidRequest(f"{field} must be between {low} and {high}")
    return value


def make_query(
    q: str | None = None, *, issn: str | None = None, isbn: str | None = None, cn: str | None = None,
    doi: str | None = None, author: str | None = None, year: int | str | None = None,
    offset: int | str = 0, limit: int | str = DEFAULT_LIMIT,
) -> Query:
    """Check outside input and build a :class:`Query`.

    Raises InvalidText (E113) for characters XML cannot carry or an overlong
    text, InvalidIdentifier (E115) for a malformed identifier or a wrong
    check digit, InvalidRequest (E112) for anything else: two identifiers,
    an identifier with words or an author, nothing to look for, a year,
    offset or limit out of range.
    """
    given = {scheme: value for scheme, value in
             ((ids.ISSN, issn), (ids.ISBN, isbn), (ids.CN, cn), (ids.DOI, doi)) if value not in (None, "")}
    if len(given) > 1:
        raise InvalidRequest("give at most one identifier (ISSN, ISBN, CN or DOI)")
    identifier = None
    if given:
        scheme, value = next(iter(given.items()))
        identifier = (scheme, ids.parse(scheme, value))
    words: tuple[str, ...] = ()
    if q:
        check_xml_text(q, "query", max_length=MAX_QUERY)
        recognised = ids.recognise(q.strip()) if identifier is None else None
        if recognised is not None:
            identifier = recognised
        else:
            words = _words(q, "query")
    authors = _words(author, "author") if author else ()
    if identifier is not None and (words or authors):
        raise InvalidRequest("an identifier is looked up alone (a year may narrow it): leave out words and author")
    if not (words or authors or identifier):
        raise InvalidRequest("give words of a title, an author or an identifier (ISSN, ISBN, CN, DOI)")
    return Query(
        words=words, author=authors, identifier=identifier,
        year=None if year in (None, "") else _whole(year, "year", MIN_YEAR, MAX_YEAR),
        offset=_whole(offset, "offset", 0, MAX_OFFSET), limit=_whole(limit, "limit", 1, MAX_LIMIT),
    )


# ---------------------------------------------------------------------------------------------------- SQL, per dialect


def _fts_string(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


def _bigram_word(word: str) -> bool:
    """A two-character word that unicode61 reads as one token (letters and digits only)."""
    return len(word) == 2 and word.isalnum()


class _SQLite:
    """FTS5 MATCH expressions: trigram tables for three characters and more, bigram tables for two."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def _vocabulary_terms(self, fts: str, columns: list[str], word: str) -> list[str]:
        marks = ", ".join(f":c{i}" for i in range(len(columns)))
        rows = self.session.execute(
            text(f"SELECT DISTINCT term FROM {fts}_vocab WHERE term >= :low AND term < :high AND col IN ({marks})"),
            {"low": word, "high": word + "\U0010ffff", **{f"c{i}": c for i, c in enumerate(columns)}},
        ).scalars()
        return list(rows)

    def _expressions(self, fts: str, columns: list[str], words: Iterable[str]) -> tuple[list[str], list[str]] | None:
        """(trigram-table expressions, bigram-table expressions) for all ``words``; None when one cannot match."""
        filter_ = "{" + " ".join(columns) + "}"
        trigram, bigram = [], []
        for word in words:
            if _bigram_word(word):
                bigram.append(f"{filter_} : {_fts_string(word)}")
            elif len(word) >= 3:
                trigram.append(f"{filter_} : {_fts_string(word)}")
            else:  # two characters with punctuation: the trigrams that begin with them
                terms = self._vocabulary_terms(fts, columns, word)
                if not terms:
                    return None
                trigram.append(f"{filter_} : (" + " OR ".join(_fts_string(t) for t in terms) + ")")
        return trigram, bigram

    def _ids(self, fts: str, parts: list[tuple[list[str], Iterable[str]]], joins: str, where: str,
             params: dict[str, Any], query: Query, count_cap: int | None) -> list[int] | int:
        trigram, bigram = [], []
        for columns, words in parts:
            found = self._expressions(fts, columns, words)
            if found is None:
                return 0 if count_cap else []
            trigram += found[0]
            bigram += found[1]
        # the first table with an expression drives (its rowid order is the page's); the other filters
        tables = [(fts, trigram), (fts + BIGRAMS, bigram)]
        (driver, first), *rest = [(t, e) for t, e in tables if e]
        params = {**params, "m0": " AND ".join(first)}
        clauses = [f"{driver} MATCH :m0"]
        for n, (table, expressions) in enumerate(rest, start=1):
            params[f"m{n}"] = " AND ".join(expressions)
            clauses.append(f"f.rowid IN (SELECT rowid FROM {table} WHERE {table} MATCH :m{n})")
        sql = (f"SELECT f.rowid FROM {driver} f {joins} WHERE " + " AND ".join(clauses + ([where] if where else []))
               + " ORDER BY f.rowid DESC")
        return _page_or_count(self.session, sql, params, query, count_cap)

    def item_ids(self, query: Query, *, count_cap: int | None = None) -> list[int] | int:
        params: dict[str, Any] = {"gone": PACKAGE_DEACCESSIONED}
        where = "p.state != :gone"
        if query.year is not None:
            where += " AND i.year = :year"
            params["year"] = query.year
        joins = "CROSS JOIN items i ON i.id = f.rowid CROSS JOIN packages p ON p.id = i.package_id"
        parts = [(["item_title"], query.words), (["authors"], query.author)]
        return self._ids(ITEMS_FTS, [(c, w) for c, w in parts if w], joins, where, params, query, count_cap)

    def title_ids(self, query: Query, *, count_cap: int | None = None) -> list[int] | int:
        return self._ids(TITLES_FTS, [(list(_TITLE_FIELDS), query.words)], "", "", {}, query, count_cap)


def _like(word: str) -> str:
    return "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class _PostgreSQL:
    """ILIKE served by pg_trgm GIN indexes (two-character words by the bigram GIN indexes), with a plan per query.

    Which plan is fast depends on how many rows match, which the planner can
    only guess (``ILIKE '%…%'`` has no statistics).  So the matches are first
    counted up to the cap through the GIN indexes alone (a bitmap of the
    index's postings, rows read only until the cap).  Up to the cap, the page
    is read the same way and sorted; past it, matches are frequent and the
    page is found by walking the newest rows backwards, checking only
    ``ILIKE``, which stops after a page's worth of matches.  The plan is
    pinned with ``SET LOCAL enable_*`` (JIT and parallel workers off),
    reset after each statement.
    """

    _BITMAP_ONLY = ("enable_seqscan", "enable_indexscan", "enable_indexonlyscan")
    _NEWEST_FIRST = ("enable_seqscan", "enable_bitmapscan")

    def __init__(self, session: Session) -> None:
        self.session = session
        self._counts: dict[tuple[str, Query], int] = {}
        self._saved: dict[str, str] | None = None

    @staticmethod
    def _word(columns: Iterable[str], word: str, name: str, params: dict[str, Any], indexed: bool) -> str:
        params[name] = _like(word)
        like = "(" + " OR ".join(f"{c} ILIKE :{name} ESCAPE '\\'" for c in columns) + ")"
        if len(word) >= 3 or not indexed:
            return like
        params[name + "b"] = [word]  # trigrams cannot serve two characters: the bigram index finds candidates
        bigram = " OR ".join(f"{BIGRAM_FUNCTION}({c}) @> CAST(:{name}b AS text[])" for c in columns)
        return f"({bigram}) AND {like}"

    _SETTINGS = ("enable_seqscan", "enable_indexscan", "enable_indexonlyscan", "enable_bitmapscan", "jit",
                 "max_parallel_workers_per_gather", "plan_cache_mode")
    # never JIT or parallel workers: the bigram function's cost makes plans look large enough for both, which
    # cost more to start (tens of milliseconds) than these statements take; and always a plan for the words
    # given, as the driver prepares a statement it has run five times and a generic plan cannot tell
    # a rare word from a frequent one
    _FIXED = {"jit": "off", "max_parallel_workers_per_gather": "0", "plan_cache_mode": "force_custom_plan"}

    def _configure(self, values: dict[str, str]) -> None:
        """Settings for this transaction (``set_config(..., true)`` is ``SET LOCAL``), in one round trip."""
        calls = ", ".join(f"set_config('{name}', :v{n}, true)" for n, name in enumerate(values))
        self.session.execute(text(f"SELECT {calls}"), {f"v{n}": v for n, v in enumerate(values.values())})

    def _execute(self, sql: str, params: dict[str, Any], switched_off: tuple[str, ...]):
        if self._saved is None:
            calls = ", ".join(f"current_setting('{name}')" for name in self._SETTINGS)
            self._saved = dict(zip(self._SETTINGS, self.session.execute(text(f"SELECT {calls}")).one()))
        self._configure({name: ("off" if name in switched_off else self._saved[name]) for name in self._SETTINGS[:4]}
                        | self._FIXED)
        try:
            return self.session.execute(text(sql), params).all()
        finally:
            self._configure(self._saved)

    def _search(self, kind: str, query: Query, count_cap: int | None) -> list[int] | int:
        key = (kind, query)
        if key not in self._counts:
            sql, params = self._sql(kind, query, indexed=True)
            self._counts[key] = self._execute(f"SELECT count(*) FROM (SELECT 1 {sql} LIMIT :cap) AS c",
                                              {**params, "cap": COUNT_CAP + 1}, self._BITMAP_ONLY)[0][0]
        count = self._counts[key]
        if count_cap:
            return min(count, count_cap)
        frequent = count > COUNT_CAP
        sql, params = self._sql(kind, query, indexed=not frequent)
        rows = self._execute(f"SELECT x.id {sql} ORDER BY x.id DESC LIMIT :limit OFFSET :offset",
                             {**params, "limit": query.limit, "offset": query.offset},
                             self._NEWEST_FIRST if frequent else self._BITMAP_ONLY)
        return [int(r[0]) for r in rows]

    def _sql(self, kind: str, query: Query, *, indexed: bool) -> tuple[str, dict[str, Any]]:
        params: dict[str, Any] = {}
        if kind == "titles":
            where = [self._word([f"x.{c}" for c in _TITLE_FIELDS], w, f"w{n}", params, indexed)
                     for n, w in enumerate(query.words)]
            return "FROM titles x WHERE " + " AND ".join(where), params
        where = [self._word(["x.item_title"], w, f"w{n}", params, indexed) for n, w in enumerate(query.words)]
        where += [self._word(["x.authors"], w, f"a{n}", params, indexed) for n, w in enumerate(query.author)]
        if query.year is not None:
            where.append("x.year = :year")
            params["year"] = query.year
        params["gone"] = PACKAGE_DEACCESSIONED
        where.append("x.package_id NOT IN (SELECT id FROM packages WHERE state = :gone)")
        return "FROM items x WHERE " + " AND ".join(where), params

    def item_ids(self, query: Query, *, count_cap: int | None = None) -> list[int] | int:
        return self._search("items", query, count_cap)

    def title_ids(self, query: Query, *, count_cap: int | None = None) -> list[int] | int:
        return self._search("titles", query, count_cap)


def _page_or_count(session: Session, sql: str, params: dict[str, Any], query: Query,
                   count_cap: int | None) -> list[int] | int:
    if count_cap:
        return session.execute(text(f"SELECT count(*) FROM ({sql} LIMIT :cap) AS c"),
                               {**params, "cap": count_cap}).scalar_one()
    rows = session.execute(text(f"{sql} LIMIT :limit OFFSET :offset"),
                           {**params, "limit": query.limit, "offset": query.offset})
    return [int(r[0]) for r in rows]


def _engine_for(session: Session) -> _SQLite | _PostgreSQL:
    name = session.get_bind().dialect.name
    if name == "sqlite":
        return _SQLite(session)
    if name == "postgresql":
        return _PostgreSQL(session)
    raise InvalidRequest(f"search is not available on a {name} catalog")


# ------------------------------------------------------------------------------------------------ exact identifiers

_TITLE_SCHEMES = {ids.ISSN: (ID_ISSN_PRINT, ID_ISSN_ONLINE), ids.ISBN: (ID_ISBN_PRINT, ID_ISBN_ONLINE),
                  ids.CN: (ID_CN,)}


def _identifier_hits(session: Session, query: Query) -> tuple[list[int], list[int]]:
    """(title ids, item ids) of an exact identifier, newest first; items of a title only with a year."""
    scheme, value = query.identifier  # type: ignore[misc]
    if scheme == ids.DOI:
        found = session.execute(
            select(Item.id).join(Package, Package.id == Item.package_id)
            .where(Item.doi == value, Package.state != PACKAGE_DEACCESSIONED)).scalars().all()
        return [], list(found)
    title_ids = list(session.execute(
        select(TitleIdentifier.title_id).where(TitleIdentifier.scheme.in_(_TITLE_SCHEMES[scheme]),
                                               TitleIdentifier.value == value)
        .distinct().order_by(TitleIdentifier.title_id.desc())).scalars())
    conditions = []
    if scheme == ids.ISBN:
        conditions.append(Item.isbn == value)
    if query.year is not None and title_ids:
        conditions.append(Item.title_id.in_(title_ids))
    item_ids: list[int] = []
    if conditions:
        clause = or_(*conditions)
        if query.year is not None:
            clause = and_(clause, Item.year == query.year)
        item_ids = list(session.execute(
            select(Item.id).join(Package, Package.id == Item.package_id)
            .where(clause, Package.state != PACKAGE_DEACCESSIONED)
            .order_by(Item.id.desc()).limit(MAX_OFFSET + MAX_LIMIT)).scalars())
    return title_ids, item_ids


# ----------------------------------------------------------------------------------------------------------- standing


class Standings:
    """The standing of one library on titles and items: read, request or dark, with the reason.

    * **read** — an active grant covers the item's package, or the item in
      library terms (its title, its issue, itself); for a title, a grant of
      the whole collection or of the whole title; or the collection is open;
    * **request** — not readable yet, but the access policy would approve a
      request at once (a trigger event, a post-cancellation entitlement of the
      collection by year, or of the title by date: :func:`rights.decide_for_item`);
    * **dark** — only staff can open it; a request goes to them.

    Grants, policy decisions and title entitlements are loaded once per
    collection, package and title, so a page of hits costs a few queries, not
    a few per hit.
    """

    def __init__(self, session: Session, library_id: int | None) -> None:
        self.session = session
        self.library_id = library_id
        self._rights: dict[int, rights.ReadRights] = {}
        self._decisions: dict[tuple[int, str | None], rights.PolicyDecision] = {}
        self._title_rows: dict[int, list] = {}

    def load_titles(self, title_ids: Iterable[int | None]) -> None:
        """Load the library's title entitlements of these titles in one query."""
        if self.library_id is not None:
            wanted = [t for t in title_ids if t is not None and t not in self._title_rows]
            self._title_rows.update(rights.title_entitlements(self.session, self.library_id, wanted))

    def _read_rights(self, collection: Collection) -> rights.ReadRights:
        if collection.id not in self._rights:
            self._rights[collection.id] = rights.ReadRights(self.session, self.library_id, collection)
        return self._rights[collection.id]

    def _decision(self, collection: Collection, package: Package | None) -> rights.PolicyDecision:
        key = (collection.id, None if package is None else package.id)
        if key not in self._decisions:
            self._decisions[key] = rights.decide_by_policy(self.session, self.library_id, collection, package)
        return self._decisions[key]

    def for_item(self, item: Item) -> tuple[str | None, str]:
        package = item.package
        collection = package.collection
        if self.library_id is None:
            return None, Reason("mode-collection", mode=word("mode", collection.access_mode))
        right = self._read_rights(collection).for_item(package, item)  # grants of its title, issue or itself too
        if right.allowed:
            return READ, right.reason
        if item.title_id is not None:
            self.load_titles([item.title_id])
        decision = rights.decide_for_item(
            self.session, self.library_id, collection, package, item,
            package_decision=self._decision(collection, package), title_rows=self._title_rows.get(item.title_id))
        return (REQUEST if decision.approve else DARK), decision.why

    def for_title(self, title: Title) -> tuple[str | None, str]:
        collection = title.collection
        if self.library_id is None:
            return None, Reason("mode-collection", mode=word("mode", collection.access_mode))
        read = self._read_rights(collection)
        if collection.access_mode == rights.MODE_OPEN:
            return READ, Reason("collection-open")
        whole = [g for g in read.grants if g.package_id is None and g.from_year is None and g.to_year is None
                 and (not rights.grant_is_scoped(g) or (g.title_id == title.id and rights.grant_scope(g) == "title"
                                                         and not g.first_date and not g.last_date))]
        if whole:
            return READ, Reason("grant", grant=whole[0].id)
        self.load_titles([title.id])
        decision = rights.decide_for_title(self.session, self.library_id, collection, title,
                                           collection_decision=self._decision(collection, None),
                                           title_rows=self._title_rows.get(title.id))
        return (REQUEST if decision.approve else DARK), decision.why


def library_id_of(session: Session, library_code: str | None) -> int | None:
    if library_code is None:
        return None
    found = session.execute(select(Library.id).where(Library.code == library_code)).scalar_one_or_none()
    if found is None:
        raise NotFound(f"no library {library_code!r}")
    return found


# --------------------------------------------------------------------------------------------------------- the search


def _title_hit(title: Title, identifiers: list[dict[str, str]], standing: tuple[str | None, str]) -> dict[str, Any]:
    return {
        "type": "title", "id": title.id, "kind": title.kind, "title": title.title,
        "title_transliterated": title.title_transliterated, "title_english": title.title_english,
        "publisher": title.publisher, "collection": title.collection.key, "identifiers": identifiers,
        "standing": standing[0], "standing_reason": standing[1],
    }


def item_summary(item: Any) -> dict[str, Any]:
    """What a hit or an item page shows of an item (its files excepted): an Item, or a hit's view of one."""
    title = item.title
    return {
        "type": "item", "id": item.id, "kind": item.kind, "doi": item.doi, "title": item.item_title,
        "authors": [a for a in item.authors.split("; ") if a], "language": item.language, "year": item.year,
        "published": item.published, "volume": item.volume, "issue": item.issue,
        "first_page": item.first_page, "last_page": item.last_page, "isbn": item.isbn,
        "journal": None if title is None else {"id": title.id, "title": title.title,
                                               "title_english": title.title_english},
        "collection": item.package.collection.key, "package_id": item.package_id,
    }


_ITEM_FIELDS = (Item.id, Item.kind, Item.doi, Item.item_title, Item.authors, Item.language, Item.year,
                Item.published, Item.volume, Item.issue, Item.first_page, Item.last_page, Item.isbn,
                Item.package_id, Item.title_id)


def _packages(session: Session, ids: Iterable[str]) -> dict[str, Package]:
    wanted = set(ids)
    if not wanted:
        return {}
    return {p.id: p for p in session.scalars(
        select(Package).where(Package.id.in_(wanted)).options(joinedload(Package.collection)))}


def _load_items(session: Session, wanted: list[int]) -> list[SimpleNamespace]:
    """The hits' items in ``wanted`` order, each a view with what a hit shows (one query, plus their packages)."""
    if not wanted:
        return []
    rows = session.execute(
        select(*_ITEM_FIELDS, Title.title.label("t_title"), Title.title_english.label("t_english"))
        .outerjoin(Title, Title.id == Item.title_id).where(Item.id.in_(wanted))).all()
    packages = _packages(session, (r.package_id for r in rows))
    views = {}
    for r in rows:
        title = None if r.title_id is None else SimpleNamespace(id=r.title_id, title=r.t_title,
                                                                 title_english=r.t_english)
        views[r.id] = SimpleNamespace(**{f.key: getattr(r, f.key) for f in _ITEM_FIELDS}, title=title,
                                      package=packages[r.package_id])
    return [views[i] for i in wanted if i in views]


def _load_titles(session: Session, wanted: list[int]) -> list[tuple[Title, list[dict[str, str]]]]:
    if not wanted:
        return []
    titles = {t.id: t for t in session.scalars(
        select(Title).where(Title.id.in_(wanted)).options(joinedload(Title.collection)))}
    identifiers: dict[int, list[dict[str, str]]] = {t: [] for t in titles}
    for title_id, scheme, value in session.execute(
            select(TitleIdentifier.title_id, TitleIdentifier.scheme, TitleIdentifier.value)
            .where(TitleIdentifier.title_id.in_(wanted)).order_by(TitleIdentifier.id)):
        identifiers[title_id].append({"scheme": scheme, "value": value})
    return [(titles[i], identifiers[i]) for i in wanted if i in titles]


def search_in(session: Session, query: Query, library_id: int | None) -> dict[str, Any]:
    """Run ``query`` in ``session``: one page of title hits and one of item hits, with totals and standings."""
    if query.identifier is not None:
        title_ids, item_ids = _identifier_hits(session, query)
        titles_total, items_total = len(title_ids), len(item_ids)
        title_ids = title_ids[query.offset: query.offset + query.limit]
        item_ids = item_ids[query.offset: query.offset + query.limit]
    else:
        engine = _engine_for(session)
        # titles have no author or year of their own: an author or a year narrows the search to items
        with_titles = bool(query.words) and not query.author and query.year is None
        titles_total = engine.title_ids(query, count_cap=COUNT_CAP + 1) if with_titles else 0
        title_ids = engine.title_ids(query) if titles_total else []
        items_total = engine.item_ids(query, count_cap=COUNT_CAP + 1)
        item_ids = engine.item_ids(query) if items_total else []
    standings = Standings(session, library_id)
    loaded_titles = _load_titles(session, title_ids)
    loaded_items = _load_items(session, item_ids)
    standings.load_titles([t.id for t, _ in loaded_titles] + [i.title_id for i in loaded_items])
    titles = [_title_hit(t, identifiers, standings.for_title(t)) for t, identifiers in loaded_titles]
    items = []
    for item in loaded_items:
        hit = item_summary(item)
        hit["standing"], hit["standing_reason"] = standings.for_item(item)
        items.append(hit)
    return {
        "query": query.to_dict(),
        "titles": {"total": min(titles_total, COUNT_CAP), "total_exact": titles_total <= COUNT_CAP, "hits": titles},
        "items": {"total": min(items_total, COUNT_CAP), "total_exact": items_total <= COUNT_CAP, "hits": items},
    }


def search(repo: Repository, query: Query, *, library_id: int | None = None,
           library_code: str | None = None) -> dict[str, Any]:
    """Search the catalog; standings are the library's (by id or code), none without a library.

    Raises NotFound (E110) for an unknown library code.
    """
    with repo.catalog.session() as s:
        if library_id is None:
            library_id = library_id_of(s, library_code)
        return search_in(s, query, library_id)
