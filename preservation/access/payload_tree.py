"""A package's content as a reader sees it: folders of its payload, a page at a time, and a search of file names.

A bag keeps its content under ``data/`` and its own BagIt tag files
(``bagit.txt``, ``bag-info.txt``, manifests, tag manifests, ``fetch.txt``)
beside it; readers see only the content, with paths relative to ``data/``.
Staff may ask to see the tag files as well.

Everything a reader names here comes from a URL: the folder, the search
text and the page number are checked first (coded InvalidRequest, a 400),
and a folder then exists only when the catalog's file list of the state the
reader reads (:mod:`preservation.access.as_of`) holds a file under it
(NotFound otherwise).  Nothing is ever resolved on a filesystem: a folder is
a prefix compared with catalog paths in byte order, which is the order of
the ``files`` table (collation "C" on PostgreSQL, binary on SQLite).

A folder lists its subfolders (with how many files and bytes each holds)
then its files, a page at a time, grouped in the database.  A search matches
file names anywhere under the folder, case-insensitively by Unicode case
folding of NFC text (Chinese names included); it compares text in Python over
the folder's paths as they stream from the catalog, so no character of the
search text is ever a SQL wildcard.
"""

from __future__ import annotations

import math
import unicodedata
from typing import Any

from sqlalchemy import Integer, case, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

from preservation import versions
from preservation.access.accounts import Principal
from preservation.access.as_of import PAYLOAD, Reading, reading
from preservation.access.delivery import get_package
from preservation.access.rights import package_year
from preservation.access.usage import record_usage
from preservation.access.viewing import viewings
from preservation.catalog.access_models import USAGE_VIEW
from preservation.errors import InvalidRequest, NotFound
from preservation.repository import Repository
from preservation.text import visible_controls

PAGE_SIZE = 100
MAX_PAGE = 10**6
MAX_FOLDER = 1000  # characters: a catalog path holds 1,024
MAX_QUERY = 200
MAX_TAG_FILES = 200
_STREAMED = 2000


class _slash_position(FunctionElement):  # noqa: N801  (an SQL function's name)
    """Where the first ``/`` is in a text (1-based, 0 for none): ``instr`` on SQLite, ``strpos`` on PostgreSQL."""

    type = Integer()
    inherit_cache = True


@compiles(_slash_position)
def _instr(element, compiler, **kw) -> str:
    return f"instr({compiler.process(element.clauses, **kw)}, '/')"


@compiles(_slash_position, "postgresql")
def _strpos(element, compiler, **kw) -> str:
    return f"strpos({compiler.process(element.clauses, **kw)}, '/')"


def _has_control(text: str) -> bool:
    """Control characters, line separators, bidirectional overrides: what ``text`` would show made visible."""
    return visible_controls(text) != text


def parse_folder(text: str) -> str:
    """A folder path relative to ``data/`` as a URL gives it ("" for the top); raises InvalidRequest for
    a path that could never name a folder: absolute, ``.``/``..`` or empty segments, control characters
    (NUL included), line separators or bidirectional overrides, over :data:`MAX_FOLDER` characters."""
    if text == "":
        return ""
    if len(text) > MAX_FOLDER:
        raise InvalidRequest(f"a folder path has at most {MAX_FOLDER} characters")
    if _has_control(text):
        raise InvalidRequest("a folder path holds no control characters")
    if text.startswith("/") or "\\" in text:
        raise InvalidRequest("a folder path is relative to the package's content, with / between folders")
    if any(part in ("", ".", "..") for part in text.split("/")):
        raise InvalidRequest("a folder path has no empty, '.' or '..' parts")
    return text


def parse_query(text: str) -> str:
    """The search text ("" for none), trimmed; raises InvalidRequest when longer than :data:`MAX_QUERY`
    characters or holding what :func:`preservation.text.visible_controls` would show."""
    text = text.strip()
    if len(text) > MAX_QUERY:
        raise InvalidRequest(f"a file name search has at most {MAX_QUERY} characters")
    if _has_control(text):
        raise InvalidRequest("a file name search holds no control characters")
    return text


def parse_page(text: str) -> int:
    """A page number written with digits 0-9 only, 1 to :data:`MAX_PAGE` ("" for the first); raises InvalidRequest."""
    if text == "":
        return 1
    if not (text.isascii() and text.isdigit() and len(text) <= len(str(MAX_PAGE))) or not 1 <= int(text) <= MAX_PAGE:
        raise InvalidRequest(f"page must be a whole number from 1 to {MAX_PAGE}")
    return int(text)


def parse_flag(text: str) -> bool:
    """``1`` for yes, ``0`` or "" for no; raises InvalidRequest for anything else."""
    if text not in ("", "0", "1"):
        raise InvalidRequest("a yes/no parameter is 1 or 0")
    return text == "1"


def _fold(text: str) -> str:
    return unicodedata.normalize("NFC", text).casefold()


def _within(rows: Any, prefix: str) -> tuple[Any, Any]:
    """Paths that start with ``prefix`` (which ends in ``/``), as an index range: ``/`` + 1 is ``0``."""
    return rows.c.path >= prefix, rows.c.path < prefix[:-1] + "0"


def _folder_counts(session: Session, rows: Any, prefix: str) -> dict[str, int]:
    """How many files and bytes lie under ``prefix`` (an index range, nothing grouped)."""
    files, size = session.execute(select(func.count(), func.sum(rows.c.size)).where(*_within(rows, prefix))).one()
    return {"files": int(files or 0), "bytes": int(size or 0)}


def _folder_entries(session: Session, rows: Any, prefix: str, offset: int) -> tuple[dict[str, int], list[Any]]:
    """(counts of the folder: entries, files, bytes; one page of its entries, folders first) under ``prefix``.

    One grouping query, read through to its end for the counts while only the page is kept: grouping is
    the cost (every path under the folder), so it is done once, not again for a count.
    """
    rest = func.substr(rows.c.path, len(prefix) + 1)
    slash = _slash_position(rest)
    named = (select(case((slash > 0, func.substr(rest, 1, slash - 1)), else_=rest).label("name"),
                    case((slash > 0, 1), else_=0).label("folder"), rows.c.path, rows.c.size, rows.c.sha256)
             .where(*_within(rows, prefix)).subquery())
    grouped = (select(named.c.name, named.c.folder, func.count().label("files"), func.sum(named.c.size).label("bytes"),
                      func.max(named.c.path).label("path"), func.max(named.c.sha256).label("sha256"))
               .group_by(named.c.name, named.c.folder).subquery())
    counts = {"entries": 0, "files": 0, "bytes": 0}
    page = []
    for row in session.execute(select(grouped).order_by(grouped.c.folder.desc(), grouped.c.name)
                               .execution_options(yield_per=_STREAMED)):
        if offset <= counts["entries"] < offset + PAGE_SIZE:
            page.append(row)
        counts["entries"] += 1
        counts["files"] += row.files
        counts["bytes"] += int(row.bytes or 0)
    return counts, page


def _search(session: Session, rows: Any, prefix: str, needle: str, offset: int) -> tuple[int, list[Any]]:
    """(how many files under ``prefix`` have a name holding ``needle``, one page of them in path order)."""
    wanted = _fold(needle)
    matched: list[Any] = []
    total = 0
    stream = (select(rows.c.path, rows.c.size, rows.c.sha256).where(*_within(rows, prefix))
              .order_by(rows.c.path).execution_options(yield_per=_STREAMED))
    for row in session.execute(stream):
        if wanted in _fold(row.path.rsplit("/", 1)[-1]):
            if offset <= total < offset + PAGE_SIZE:
                matched.append(row)
            total += 1
    return total, matched


def _tag_files(session: Session, rows: Any) -> tuple[int, list[dict[str, Any]]]:
    outside = (rows.c.path < PAYLOAD) | (rows.c.path >= PAYLOAD[:-1] + "0")
    total = session.scalar(select(func.count()).where(outside)) or 0
    listed = session.execute(select(rows.c.path, rows.c.size, rows.c.sha256).where(outside).order_by(rows.c.path)
                             .limit(MAX_TAG_FILES)).all()
    return total, [{"path": p, "size": size, "sha256": sha} for p, size, sha in listed]


def _crumbs(folder: str) -> list[dict[str, str]]:
    parts = folder.split("/") if folder else []
    return [{"name": name, "path": "/".join(parts[:i + 1])} for i, name in enumerate(parts)]


def _check_page(page: int, total: int) -> None:
    last = max(1, math.ceil(total / PAGE_SIZE))
    if page > last:
        raise InvalidRequest(f"page {page} is past the last page ({last})")


def package_tree(repo: Repository, principal: Principal, package_id: str, *, folder: str = "", query: str = "",
                 page: str = "", tag_files: str = "") -> dict[str, Any]:
    """One page of one folder of the content of the state the caller reads, or of a file name search in it.

    ``folder``, ``query``, ``page`` and ``tag_files`` are the URL's text
    (module docstring); ``tag_files`` ("1") lists the bag's tag files too,
    for staff only (a library's ask is ignored).  Entries' ``path`` is
    relative to ``data/``, ``bag_path`` the file's path in the bag (what a
    download names).  Raises InvalidRequest, NotFound (no such package or
    folder), AccessRefused (no read right; staff may list without one).
    """
    folder, query, number = parse_folder(folder), parse_query(query), parse_page(page)
    with_tags = parse_flag(tag_files) and principal.is_staff
    prefix = f"{PAYLOAD}{folder}/" if folder else PAYLOAD
    offset = (number - 1) * PAGE_SIZE
    with repo.catalog.session() as s:
        package = get_package(s, package_id)
        state = reading(s, principal, package, need_right=not principal.is_staff)
        rows = versions.state_rows(state.version_id).subquery()
        counts, listed = (_folder_counts(s, rows, prefix), []) if query else _folder_entries(s, rows, prefix, offset)
        if folder and counts["files"] == 0:
            raise NotFound(f"package {package.id} has no folder {folder[:200]!r}")
        if query:
            total, found = _search(s, rows, prefix, query, offset)
            entries = [_file_entry(r.path, r.size, r.sha256) for r in found]
        else:
            total = counts["entries"]
            entries = [_file_entry(r.path, r.bytes, r.sha256) if not r.folder else
                       {"name": r.name, "path": prefix[len(PAYLOAD):] + r.name, "folder": True, "files": r.files,
                        "size": int(r.bytes or 0)} for r in listed]
        _check_page(number, total)
        shown = viewings(s, state.version_id, [e["bag_path"] for e in entries if not e["folder"]])
        for e in entries:
            if not e["folder"]:
                e["inline"] = shown[e["bag_path"]].inline
        tags_total, tags = _tag_files(s, rows) if with_tags else (0, None)
        _record_view(s, principal, package.collection_id, state)
        return {"id": package.id, "name": package.name, "collection": package.collection.key,
                "year": package_year(package), "state": package.state, "total_bytes": package.total_bytes,
                "readable": state.right.allowed, "version": state.to_dict(), "folder": folder,
                "crumbs": _crumbs(folder), "query": query, "folder_files": counts["files"],
                "folder_bytes": counts["bytes"], "page": number, "pages": max(1, math.ceil(total / PAGE_SIZE)),
                "page_size": PAGE_SIZE, "total": total, "entries": entries, "tag_files": tags,
                "tag_files_total": tags_total}


def _file_entry(bag_path: str, size: int, sha256: str) -> dict[str, Any]:
    path = bag_path[len(PAYLOAD):]
    return {"name": path.rsplit("/", 1)[-1], "path": path, "bag_path": bag_path, "folder": False,
            "size": int(size), "sha256": sha256, "inline": False}


def _record_view(session: Session, principal: Principal, collection_id: int, state: Reading) -> None:
    """A library's listing is usage (a ``view``); staff judging a request is not."""
    if state.right.allowed:
        record_usage(session, principal, collection_id=collection_id, package_id=state.version_id, path="", size=0,
                     kind=USAGE_VIEW)
