"""Registering and listing the storage nodes operators name."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import unquote, urlsplit

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from preservation import events
from preservation.catalog import reads
from preservation.catalog.models import NODE_DRAINING, NODE_STATUSES, ORG_TYPES, REPLICA_VERIFIED, Job, Node, Replica
from preservation.catalog.reader import Reader
from preservation.errors import AlreadyExists, ConfigError, InvalidRequest, NodeInUse, NotFound, PreservationError
from preservation.jobs.queue import LIVE_STATES
from preservation.repository import Repository
from preservation.text import check_name, check_xml_text
from storage_adapters import adapter_class


_node_dict = reads.node_dict


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
    create: bool = True,
) -> dict[str, Any]:
    """Register a node after checking its name, type and that its storage answers.

    ``create`` False refuses a ``file://`` root that does not exist (a mistyped path, an unmounted disk)
    with ConfigError instead of creating it.  Raises AlreadyExists, InvalidRequest, ConfigError, StorageError.
    """
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
    with repo.catalog.session() as s:
        if s.execute(select(Node.id).where(Node.name == name)).scalar_one_or_none() is not None:
            raise AlreadyExists(f"a node named {name!r} exists already")
    check_local_root(name, uri, create=create)
    if probe:
        _probe(repo, cls, name, uri)
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
    """Every node by name with its copies and their bytes (:func:`preservation.catalog.reads.list_nodes`)."""
    with repo.catalog.session() as s:
        return reads.list_nodes(Reader.of_session(s))


def local_root(uri: str) -> str | None:
    """The directory of a ``file://`` URI (None for any other scheme)."""
    parts = urlsplit(uri)
    return unquote(parts.path) if parts.scheme.lower() == "file" else None


def check_local_root(name: str, uri: str, *, create: bool) -> None:
    """Refuse a ``file://`` root that does not exist unless ``create``: raises ConfigError."""
    root = local_root(uri)
    if root is not None and not create and os.path.isabs(root) and not os.path.isdir(root):
        raise ConfigError(f"node {name}: the directory {root} does not exist (a mistyped path? a disk not "
                          "mounted?): create it first, or pass --create to have it created")


def _probe(repo: Repository, cls, name: str, uri: str) -> None:
    adapter = cls(uri, **repo.adapter_options(name, uri))
    try:
        next(iter(adapter.list("")), None)
    except PreservationError as e:
        raise type(e)(f"node {name}: its storage did not answer: {e}", **e.params) from e
    finally:
        adapter.close()


def set_node_uri(repo: Repository, name: str, uri: str, *, probe: bool = True, create: bool = False
                 ) -> dict[str, Any]:
    """Point node ``name`` at new storage (the same copies, moved or re-mounted there).

    The storage is probed first; nothing changes if it does not answer.  Copies
    keep their state: the next audit of each tells whether the bytes are there.
    Raises NotFound, InvalidText, ConfigError, StorageError.
    """
    check_xml_text(uri, "uri")
    cls = adapter_class(uri)
    with repo.catalog.session() as s:
        old = get_node(s, name).uri
    check_local_root(name, uri, create=create)
    if probe:
        _probe(repo, cls, name, uri)
    with repo.catalog.session() as s:
        node = get_node(s, name)
        node.uri = uri
        events.record_event(s, events.METADATA_MODIFICATION, events.SUCCESS, node_name=name,
                            detail={"node": name, "uri": uri, "previous_uri": old})
        return _node_dict(node)


def rename_node(repo: Repository, name: str, new_name: str) -> dict[str, Any]:
    """Rename a node; its copies and jobs follow (they refer to it by id), past events keep the old name.

    Its entry in ``node_credentials`` is keyed by name: the result says so when
    the old name has one.  Raises NotFound, AlreadyExists, InvalidRequest.
    """
    check_name(new_name, "node name")
    with repo.catalog.session() as s:
        node = get_node(s, name)
        if new_name != name and s.execute(select(Node.id).where(Node.name == new_name)).scalar_one_or_none():
            raise AlreadyExists(f"a node named {new_name!r} exists already")
        node.name = new_name
        events.record_event(s, events.METADATA_MODIFICATION, events.SUCCESS, node_name=new_name,
                            detail={"node": new_name, "previous_name": name})
        out = _node_dict(node)
    out["credentials_to_rename"] = name in repo.settings.node_credentials
    return out


def remove_node(repo: Repository, name: str) -> dict[str, Any]:
    """Forget a drained node: only when none of its copies is still needed and no job works on it.

    The node must be ``draining``; every package with a copy on it must hold
    the policy's number of verified copies on other nodes (the drain placed
    them), and no live job may be about one of its copies.  Its copy records
    are then removed with it, each package's removal recorded as an event; its
    storage is left untouched.  Raises NotFound, NodeInUse.
    """
    needed = repo.policy.replication.copies
    with repo.catalog.session() as s:
        node = get_node(s, name)
        if node.status != NODE_DRAINING:
            raise NodeInUse(f"node {name} is {node.status}: drain it first (`preserve node set-status {name} "
                            "draining`), let the scheduler place its copies elsewhere, then remove it")
        replicas = list(s.scalars(select(Replica).where(Replica.node_id == node.id)))
        ids = [r.id for r in replicas]
        elsewhere = dict(s.execute(
            select(Replica.package_id, func.count()).where(
                Replica.package_id.in_(select(Replica.package_id).where(Replica.node_id == node.id)),
                Replica.node_id != node.id, Replica.state == REPLICA_VERIFIED,
            ).group_by(Replica.package_id)
        ).all())
        short = sorted({r.package_id for r in replicas if elsewhere.get(r.package_id, 0) < needed})
        if short:
            raise NodeInUse(f"node {name} still holds copies that are needed: {len(short)} package(s) have fewer "
                            f"than {needed} verified copies elsewhere (first: {short[0]}); wait for the drain "
                            "(`preserve status`) before removing it", packages=short[:10])
        live = [j.id for j in s.scalars(select(Job).where(Job.state.in_(LIVE_STATES)))
                if isinstance(j.payload, dict) and (j.payload.get("replica_id") in ids
                                                    or j.payload.get("node_id") == node.id)]
        if live:
            raise NodeInUse(f"node {name} has {len(live)} live job(s) (first: {live[0]}): let them finish or "
                            "cancel them (`preserve jobs cancel`)", jobs=live[:10])
        for r in replicas:
            events.record_event(s, events.DELETION, events.SUCCESS, package_id=r.package_id, replica_id=r.id,
                                node_name=name, detail={"reason": "node removed after its drain",
                                                        "state": r.state})
            s.delete(r)
        s.flush()
        out = _node_dict(node, 0, 0)
        s.delete(node)
        events.record_event(s, events.METADATA_MODIFICATION, events.SUCCESS, node_name=name,
                            detail={"node": name, "removed": True, "copies_forgotten": len(replicas)})
    out["copies_forgotten"] = len(replicas)
    return out
