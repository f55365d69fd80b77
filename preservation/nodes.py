"""Registering and listing the storage nodes operators name."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from preservation.catalog.models import NODE_STATUSES, ORG_TYPES, Node, Replica
from preservation.errors import AlreadyExists, InvalidRequest, NotFound, PreservationError
from preservation.repository import Repository
from preservation.text import check_name, check_xml_text
from storage_adapters import adapter_class


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
    check_name(name, "node name")
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
