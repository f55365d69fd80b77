"""An item by its DOI, for a library: its metadata, its files and the library's standing on it.

A DOI holds ``/`` (``10.7498/aps.68.20190001``) and, after its prefix, any
character; in a URL it arrives decoded, so the web layer cannot tell where a
DOI ends and ``/files/<path>`` begins when either holds ``/files/``.
:func:`split_item_path` settles it against the catalog: of the ways to
split, the one whose DOI names an item and whose path is one of that item's
files.

What an item's files are, their sizes and digests, is shown to a library
that may read the item (and to staff), as a package's file list is; its
metadata to every member library, as search shows it.  The bytes are served
by the package's verified delivery (:mod:`preservation.access.delivery`)
under the package's read right: the same grants, whatever path led there.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from preservation import identifiers as ids
from preservation import versions
from preservation.access.accounts import Principal
from preservation.access.as_of import Reading, reading
from preservation.access.rights import decide_for_item, read_right
from preservation.access.usage import INVESTIGATION, record
from preservation.access.viewing import viewings
from preservation.catalog.library_models import Item, ItemFile
from preservation.catalog.models import PACKAGE_DEACCESSIONED, PackageFile
from preservation.errors import InvalidIdentifier, NotFound
from preservation.repository import Repository
from preservation.search import DARK, READ, REQUEST, item_summary

FILES_SEPARATOR = "/files/"


def find_item(session: Session, doi: str) -> Item:
    """The item with this DOI (any form :func:`ids.parse_doi` reads); raises InvalidIdentifier or NotFound."""
    value = ids.parse_doi(doi)
    item = session.execute(select(Item).where(Item.doi == value)).scalar_one_or_none()
    if item is None or item.package.state == PACKAGE_DEACCESSIONED:
        raise NotFound(f"no item with DOI {ascii(value)}")
    return item


def _doi_or_none(text: str) -> str | None:
    try:
        return ids.parse_doi(text)
    except InvalidIdentifier:
        return None


def split_item_path(session: Session, doi: str, path: str) -> tuple[Item, str | None]:
    """The item and file path meant by ``…/items/<doi>/files/<path>``, wherever ``/files/`` falls.

    Tries every place ``/files/`` occurs in the whole (the router split at the
    last): the item must exist and the path be one of its files.  When none
    is, the whole may itself be an item's DOI (one holding ``/files/``): then
    the path is None.  Raises NotFound when nothing fits, InvalidIdentifier
    when no part is a DOI at all.
    """
    whole = f"{doi}{FILES_SEPARATOR}{path}"
    candidates = []
    start = whole.find(FILES_SEPARATOR)
    while start != -1:
        candidates.append((whole[:start], whole[start + len(FILES_SEPARATOR):]))
        start = whole.find(FILES_SEPARATOR, start + 1)
    dois = [(value, rest) for value, rest in ((_doi_or_none(d), p) for d, p in candidates) if value]
    if not dois:
        ids.parse_doi(doi)  # raises InvalidIdentifier with the reason
    for value, rest in dois:
        item = session.execute(select(Item).where(Item.doi == value)).scalar_one_or_none()
        if item is None or item.package.state == PACKAGE_DEACCESSIONED:
            continue
        if session.execute(select(ItemFile.id).where(ItemFile.item_id == item.id, ItemFile.path == rest)).first():
            return item, rest
    whole_doi = _doi_or_none(whole)
    if whole_doi is not None:
        item = session.execute(select(Item).where(Item.doi == whole_doi)).scalar_one_or_none()
        if item is not None and item.package.state != PACKAGE_DEACCESSIONED:
            return item, None
    raise NotFound(f"no item file {ascii(whole[:400])}")


def _files(session: Session, item: Item, state: Reading) -> list[dict[str, Any]]:
    """The item's files in the state the reader reads (of a versioned package, those its version holds), each
    saying whether a browser may show it (``inline``, :mod:`preservation.access.viewing`)."""
    files = _state_files(session, item, state)
    shown = viewings(session, state.version_id, [f["path"] for f in files])
    for f in files:
        f["inline"] = shown[f["path"]].inline
    return files


def _state_files(session: Session, item: Item, state: Reading) -> list[dict[str, Any]]:
    if state.versioned:
        out = []
        for path, role in session.execute(select(ItemFile.path, ItemFile.role).where(ItemFile.item_id == item.id)
                                          .order_by(ItemFile.id)).all():
            found = versions.locate(session, state.version_id, path)
            if found is not None:
                out.append({"path": path, "role": role, "size": found.size, "sha256": found.sha256})
        return out
    rows = session.execute(
        select(ItemFile.path, ItemFile.role, PackageFile.size, PackageFile.sha256)
        .join(PackageFile, (PackageFile.package_id == ItemFile.package_id) & (PackageFile.path == ItemFile.path),
              isouter=True)
        .where(ItemFile.item_id == item.id).order_by(ItemFile.id)).all()
    return [{"path": p, "role": role, "size": size, "sha256": sha} for p, role, size, sha in rows]


def item_detail(repo: Repository, principal: Principal, doi: str) -> dict[str, Any]:
    """The item's metadata, the library's standing and (if it may read, or is staff) its files.

    Showing a readable item is usage (a COUNTER investigation).  Raises
    InvalidIdentifier for a malformed DOI, NotFound for an unknown one.
    """
    with repo.catalog.session() as s:
        item = find_item(s, doi)
        package = item.package
        right = read_right(s, principal.library_id, package, item=item)  # grants of its title, issue, itself too
        if right.allowed:
            standing, why = READ, right.reason
        else:
            decision = decide_for_item(s, principal.library_id, package.collection, package, item)
            standing, why = (REQUEST if decision.approve else DARK), decision.why
        out = item_summary(item)
        # the version its files are of, bounded by the same right (an item or title grant ending in 2022 shows
        # the files as delivered by 2022, the ones its download links serve)
        state = reading(s, principal, package, exact=False, need_right=False, right=right)
        out.update(standing=standing, standing_reason=why, version=state.to_dict(),
                   files=_files(s, item, state) if right.allowed or principal.is_staff else None)
        if right.allowed:
            record(s, principal, kind=INVESTIGATION, collection_id=package.collection_id, package_id=package.id,
                   item_id=item.id)
        return out


def item_file(repo: Repository, doi: str, path: str) -> tuple[str, str | None, str]:
    """(package id, file path, DOI) of an item's file; the path is None when ``doi/files/path`` is itself
    an item's DOI.  Raises InvalidIdentifier, NotFound."""
    with repo.catalog.session() as s:
        item, rest = split_item_path(s, doi, path)
        return item.package_id, rest, item.doi or ""
