"""Registering the things operators name: the repository home, nodes, collections."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from preservation.catalog.db import Catalog
from preservation.catalog.models import (
    NODE_STATUSES,
    ORG_TYPES,
    Collection,
    Node,
    Package,
    Replica,
)
from preservation.errors import AlreadyExists, InvalidRequest, NotFound, PreservationError
from preservation.repository import Repository
from preservation.settings import CONFIG_NAME, load_settings
from preservation.text import check_xml_text
from storage_adapters import adapter_class

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
ACCESS_MODES = ("dark", "trigger", "pca", "open")

DEFAULT_CONFIG = """\
# preserve settings for this home.  Every key is optional.
# catalog_url: postgresql+psycopg://preserve@db.example.org/preserve
# policy: /etc/preserve/policies/default.yaml
# workers: 2
# node_credentials:
#   cas-beijing: {key_id: coordinator, key: "<shared HMAC key of that node agent>"}
"""


def init_home(home: str | Path | None) -> dict[str, Any]:
    """Create the home (config, catalog) or bring its catalog to the current schema."""
    settings = load_settings(home)
    settings.home.mkdir(parents=True, exist_ok=True)
    config = settings.home / CONFIG_NAME
    if not config.exists():
        config.write_text(DEFAULT_CONFIG, encoding="utf-8")
    catalog = Catalog(settings.catalog_url)
    try:
        before = catalog.current_revision()
        after = catalog.upgrade()
    finally:
        catalog.dispose()
    return {"home": str(settings.home), "catalog": catalog.display_url, "revision_before": before, "revision": after}


def _node_dict(node: Node, replicas: int = 0, used: int = 0) -> dict[str, Any]:
    return {
        "name": node.name,
        "org_type": node.org_type,
        "organisation": node.organisation,
        "region": node.region,
        "uri": node.uri,
        "status": node.status,
        "capacity_bytes": node.capacity_bytes,
        "read_budget_bytes_per_day": node.read_budget_bytes_per_day,
        "replicas": replicas,
        "used_bytes": used,
    }


def add_node(
    repo: Repository,
    name: str,
    org_type: str,
    region: str,
    uri: str,
    *,
    organisation: str = "",
    capacity_bytes: int | None = None,
    read_budget_bytes_per_day: int | None = None,
    probe: bool = True,
) -> dict[str, Any]:
    """Register a node after checking its name, type and that its storage answers."""
    if not NAME_RE.fullmatch(name or ""):
        raise InvalidRequest(f"node name {name!r} must be 1-64 letters, digits, '.', '_' or '-'")
    if org_type not in ORG_TYPES:
        raise InvalidRequest(f"organisation type {org_type!r} must be one of {', '.join(ORG_TYPES)}")
    if not region or len(region) > 64:
        raise InvalidRequest("a region (1-64 characters) is required")
    for field, value in (("region", region), ("organisation", organisation), ("uri", uri)):
        check_xml_text(value, field)
    for label, value in (("capacity", capacity_bytes), ("read budget", read_budget_bytes_per_day)):
        if value is not None and value <= 0:
            raise InvalidRequest(f"the {label} must be a positive number of bytes")
    cls = adapter_class(uri)
    if probe:
        adapter = cls(uri, **repo.adapter_options(name, uri))
        try:
            next(iter(adapter.list("")), None)
        except PreservationError as e:
            raise type(e)(f"node {name}: its storage did not answer: {e}", **e.params) from e
        finally:
            adapter.close()
    with repo.catalog.session() as s:
        if s.execute(select(Node).where(Node.name == name)).scalar_one_or_none():
            raise AlreadyExists(f"a node named {name!r} exists already")
        node = Node(
            name=name,
            org_type=org_type,
            organisation=organisation,
            region=region,
            uri=uri,
            capacity_bytes=capacity_bytes,
            read_budget_bytes_per_day=read_budget_bytes_per_day,
        )
        s.add(node)
        try:
            s.flush()
        except IntegrityError as e:
            raise AlreadyExists(f"a node named {name!r} exists already") from e
        return _node_dict(node)


def set_node_status(repo: Repository, name: str, status: str) -> dict[str, Any]:
    if status not in NODE_STATUSES:
        raise InvalidRequest(f"status {status!r} must be one of {', '.join(NODE_STATUSES)}")
    with repo.catalog.session() as s:
        node = get_node(s, name)
        node.status = status
        return _node_dict(node)


def get_node(session, name: str) -> Node:
    node = session.execute(select(Node).where(Node.name == name)).scalar_one_or_none()
    if node is None:
        raise NotFound(f"no node named {name!r}: see `preserve node list`")
    return node


def list_nodes(repo: Repository) -> list[dict[str, Any]]:
    with repo.catalog.session() as s:
        usage = dict(
            (row[0], (row[1], row[2] or 0))
            for row in s.execute(
                select(Replica.node_id, func.count(Replica.id), func.sum(Replica.bytes)).group_by(Replica.node_id)
            )
        )
        return [
            _node_dict(n, *usage.get(n.id, (0, 0))) for n in s.scalars(select(Node).order_by(Node.name))
        ]


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
    if not NAME_RE.fullmatch(key or ""):
        raise InvalidRequest(f"collection key {key!r} must be 1-64 letters, digits, '.', '_' or '-'")
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
        counts = dict(
            s.execute(select(Package.collection_id, func.count(Package.id)).group_by(Package.collection_id)).all()
        )
        return [_collection_dict(c, counts.get(c.id, 0)) for c in s.scalars(select(Collection).order_by(Collection.key))]
