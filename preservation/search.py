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

* SQLite: FTS5 ``trigram`` tables.  A word of three characters or more is a
  quoted phrase (its trigrams in a row: a substring); a word of two
  characters is the set of indexed trigrams that begin with it, read from
  the index's vocabulary, OR-ed.  Every indexed value ends with a marker
  character, so a value's last two characters begin a trigram too.
* PostgreSQL: ``ILIKE`` served by ``pg_trgm`` GIN indexes for three
  characters or more; two-character words by a GIN index of each value's
  two-character runs.

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
from typing import Any, Iterable

from sqlalchemy import and_, or_, select, text
from sqlalchemy.orm import Session

from preservation import identifiers as ids
from preservation.access import rights
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
from preservation.catalog.search_tables import BIGRAM_FUNCTION, END, ITEMS_FTS, TITLES_FTS
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

_ITEM_COLUMNS = "{item_title}"
_AUTHOR_COLUMNS = "{authors}"
_TITLE_COLUMNS = "{title title_transliterated title_english}"
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
    nothing to look for, a year, offset or limit out of range.
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


class _SQLite:
    """FTS5 trigram MATCH expressions; two-character words through the index vocabulary."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def _bigram_terms(self, fts: str, columns: Iterable[str], word: str) -> list[str]:
        names = list(columns)
        marks = ", ".join(f":c{i}" for i in range(len(names)))
        rows = self.session.execute(
            text(f"SELECT DISTINCT term FROM {fts}_vocab WHERE term >= :low AND term < :high AND col IN ({marks})"),
            {"low": word, "high": word + "\U0010ffff", **{f"c{i}": c for i, c in enumerate(names)}},
        ).scalars()
        return list(rows)

    def match(self, fts: str, filter_: str, columns: Iterable[str], words: Iterable[str]) -> str | None:
        """The MATCH expression for all ``words`` in the columns; None when a word cannot match at all."""
        columns = list(columns)
        parts = []
        for word in words:
            if len(word) >= 3:
                parts.append(f"{filter_} : {_fts_string(word)}")
                continue
            terms = self._bigram_terms(fts, columns, word)
            if not terms:
                return None
            parts.append(f"{filter_} : (" + " OR ".join(_fts_string(t) for t in terms) + ")")
        return " AND ".join(parts)

    def item_ids(self, query: Query, *, count_cap: int | None = None) -> list[int] | int:
        clauses = []
        if query.words:
            clauses.append(self.match(ITEMS_FTS, _ITEM_COLUMNS, ["item_title"], query.words))
        if query.author:
            clauses.append(self.match(ITEMS_FTS, _AUTHOR_COLUMNS, ["authors"], query.author))
        if any(c is None for c in clauses):
            return 0 if count_cap else []
        params: dict[str, Any] = {"m": " AND ".join(clauses), "gone": PACKAGE_DEACCESSIONED}
        year = ""
        if query.year is not None:
            year, params["year"] = " AND i.year = :year", query.year
        sql = (f"SELECT f.rowid FROM {ITEMS_FTS} f CROSS JOIN items i ON i.id = f.rowid "
               f"CROSS JOIN packages p ON p.id = i.package_id "
               f"WHERE {ITEMS_FTS} MATCH :m AND p.state != :gone{year} ORDER BY f.rowid DESC")
        return _page_or_count(self.session, sql, params, query, count_cap)

    def title_ids(self, query: Query, *, count_cap: int | None = None) -> list[int] | int:
        match = self.match(TITLES_FTS, _TITLE_COLUMNS, _TITLE_FIELDS, query.words)
        if match is None:
            return 0 if count_cap else []
        sql = f"SELECT rowid FROM {TITLES_FTS} WHERE {TITLES_FTS} MATCH :m ORDER BY rowid DESC"
        return _page_or_count(self.session, sql, {"m": match}, query, count_cap)


def _like(word: str) -> str:
    return "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class _PostgreSQL:
    """ILIKE over pg_trgm GIN indexes; two-character words through the bigram GIN indexes."""

    def __init__(self, session: Session) -> None:
        self.session = session

    @staticmethod
    def _word(columns: Iterable[str], word: str, name: str, params: dict[str, Any]) -> str:
        if len(word) >= 3:
            params[name] = _like(word)
            return "(" + " OR ".join(f"{c} ILIKE :{name} ESCAPE '\\'" for c in columns) + ")"
        params[name] = [word]
        return "(" + " OR ".join(f"{BIGRAM_FUNCTION}({c}) @> CAST(:{name} AS text[])" for c in columns) + ")"

    def item_ids(self, query: Query, *, count_cap: int | None = None) -> list[int] | int:
        params: dict[str, Any] = {"gone": PACKAGE_DEACCESSIONED}
        where = [self._word(["i.item_title"], w, f"w{n}", params) for n, w in enumerate(query.words)]
        where += [self._word(["i.authors"], w, f"a{n}", params) for n, w in enumerate(query.author)]
        if query.year is not None:
            where.append("i.year = :year")
            params["year"] = query.year
        # materialised: the planner must not walk the primary key backwards hoping to meet matches soon
        sql = ("WITH m AS MATERIALIZED (SELECT i.id, i.package_id FROM items i WHERE " + " AND ".join(where) + ") "
               "SELECT m.id FROM m JOIN packages p ON p.id = m.package_id WHERE p.state != :gone ORDER BY m.id DESC")
        return _page_or_count(self.session, sql, params, query, count_cap)

    def title_ids(self, query: Query, *, count_cap: int | None = None) -> list[int] | int:
        params: dict[str, Any] = {}
        where = [self._word(_TITLE_FIELDS, w, f"w{n}", params) for n, w in enumerate(query.words)]
        sql = "SELECT id FROM titles WHERE " + " AND ".join(where) + " ORDER BY id DESC"
        return _page_or_count(self.session, sql, params, query, count_cap)


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

    * **read** — an active grant covers the item's package (or, for a title,
      its whole collection), or the collection is open;
    * **request** — not readable yet, but the access policy would approve a
      request at once (a trigger event, a post-cancellation entitlement of the
      collection by year, or of the title by date: :func:`rights.decide_for_item`);
    * **dark** — only staff can open it; a request goes to them.

    Grants and policy decisions are loaded once per collection (and year), so a page
    of hits costs a few queries, not a few per hit.
    """

    def __init__(self, session: Session, library_id: int | None) -> None:
        self.session = session
        self.library_id = library_id
        self._rights: dict[int, rights.ReadRights] = {}

    def _read_rights(self, collection: Collection) -> rights.ReadRights:
        if collection.id not in self._rights:
            self._rights[collection.id] = rights.ReadRights(self.session, self.library_id, collection)
        return self._rights[collection.id]

    def for_item(self, item: Item) -> tuple[str | None, str]:
        package = item.package
        collection = package.collection
        if self.library_id is None:
            return None, f"{collection.access_mode} collection"
        right = self._read_rights(collection).for_package(package)
        if right.allowed:
            return READ, right.reason
        decision = rights.decide_for_item(self.session, self.library_id, collection, package, item)
        return (REQUEST if decision.approve else DARK), decision.why

    def for_title(self, title: Title) -> tuple[str | None, str]:
        collection = title.collection
        if self.library_id is None:
            return None, f"{collection.access_mode} collection"
        read = self._read_rights(collection)
        if collection.access_mode == rights.MODE_OPEN:
            return READ, "the collection is open"
        whole = [g for g in read.grants if g.package_id is None and g.from_year is None and g.to_year is None]
        if whole:
            return READ, f"grant {whole[0].id}"
        decision = rights.decide_for_title(self.session, self.library_id, collection, title)
        return (REQUEST if decision.approve else DARK), decision.why


def library_id_of(session: Session, library_code: str | None) -> int | None:
    if library_code is None:
        return None
    found = session.execute(select(Library.id).where(Library.code == library_code)).scalar_one_or_none()
    if found is None:
        raise NotFound(f"no library {library_code!r}")
    return found


# --------------------------------------------------------------------------------------------------------- the search


def _title_hit(title: Title, standing: tuple[str | None, str]) -> dict[str, Any]:
    return {
        "type": "title", "id": title.id, "kind": title.kind, "title": title.title,
        "title_transliterated": title.title_transliterated, "title_english": title.title_english,
        "publisher": title.publisher, "collection": title.collection.key,
        "identifiers": [{"scheme": i.scheme, "value": i.value} for i in title.identifiers],
        "standing": standing[0], "standing_reason": standing[1],
    }


def item_summary(item: Item) -> dict[str, Any]:
    """What a hit or an item page shows of an item (its files excepted)."""
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


def _load(session: Session, model, wanted: list[int]) -> list:
    if not wanted:
        return []
    rows = {r.id: r for r in session.scalars(select(model).where(model.id.in_(wanted)))}
    return [rows[i] for i in wanted if i in rows]


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
        title_ids = engine.title_ids(query) if with_titles else []
        titles_total = engine.title_ids(query, count_cap=COUNT_CAP + 1) if with_titles else 0
        item_ids = engine.item_ids(query)
        items_total = engine.item_ids(query, count_cap=COUNT_CAP + 1)
    standings = Standings(session, library_id)
    titles = [_title_hit(t, standings.for_title(t)) for t in _load(session, Title, title_ids)]
    items = []
    for item in _load(session, Item, item_ids):
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
