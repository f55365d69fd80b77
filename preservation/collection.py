"""Registering and listing collections: the licensed databases whose deliveries are preserved."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from preservation.catalog import lineages
from preservation.catalog.models import Collection, Package
from preservation.errors import AlreadyExists, InvalidRequest, NotFound
from preservation.repository import Repository
from preservation.text import check_name, check_xml_text

ACCESS_MODES = ("dark", "trigger", "pca", "open")


def _collection_dict(c: Collection, packages: int = 0) -> dict[str, Any]:
    return {
        "key": c.key,
        "title": c.title,
        "publisher": c.publisher,
        "licence": c.licence,
        "access_mode": c.access_mode,
        "description": c.description,
        "packages": packages,
    }


def add_collection(
    repo: Repository,
    key: str,
    title: str,
    *,
    publisher: str = "",
    licence: str = "",
    access_mode: str | None = None,
    description: str = "",
) -> dict[str, Any]:
    check_name(key, "collection key")
    if not title.strip():
        raise InvalidRequest("a collection needs a title")
    for field, value in (("title", title), ("publisher", publisher), ("licence", licence),
                         ("description", description)):
        check_xml_text(value, field)
    mode = access_mode or repo.policy.access.default_mode
    if mode not in ACCESS_MODES:
        raise InvalidRequest(f"access mode {mode!r} must be one of {', '.join(ACCESS_MODES)}")
    with repo.catalog.session() as s:
        if s.execute(select(Collection).where(Collection.key == key)).scalar_one_or_none():
            raise AlreadyExists(f"a collection with key {key!r} exists already")
        c = Collection(key=key, title=title, publisher=publisher, licence=licence, access_mode=mode, description=description)
        s.add(c)
        s.flush()
        return _collection_dict(c)


def get_collection(session, key: str) -> Collection:
    c = session.execute(select(Collection).where(Collection.key == key)).scalar_one_or_none()
    if c is None:
        raise NotFound(f"no collection with key {key!r}: add it with `preserve collection add {key} --title …`")
    return c


def list_collections(repo: Repository) -> list[dict[str, Any]]:
    with repo.catalog.session() as s:
        counts = lineages.count_by(s, Package.collection_id)  # packages, not versions (docs/versions.md)
        return [_collection_dict(c, counts.get(c.id, 0)) for c in s.scalars(select(Collection).order_by(Collection.key))]
