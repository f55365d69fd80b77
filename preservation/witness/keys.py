"""Importing and rotating the nodes' witness keys (``preserve witness-keys``, docs/evidence.md).

A node agent co-signs checkpoints with its own key; the coordinator counts a
co-signature only by the key it trusts for that node
(:mod:`.keyring`).  An operator imports that key instead of
trusting the agent's first answer: fetched from the agent (``GET
/v1/witness/key``) or read from the public key file the node's operator sent,
and in both cases confirmed by the fingerprint the node's operator reads out
(``preserve node witness-key`` prints it).  A rotation retires the old key:
its co-signatures still count on the checkpoints signed up to then, so old
checkpoints stay verifiable.  Each import and rotation is an event.

``file://`` and ``s3://`` nodes have no key: the coordinator writes their
witness record itself (``show`` says what it holds), and only an agent's
co-signature is a witness's word.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from preservation import checkpoints
from preservation.catalog.models import Node
from preservation.errors import NotFound, PreservationError, WitnessKeyRefused
from preservation.events import KEY_INTRODUCTION, SUCCESS, record_event
from preservation.repository import Repository
from preservation.signing_keys import parse_verifier_key
from preservation.witness.keyring import (
    checked_key,
    confirm,
    current_keys,
    fingerprint,
    install,
    read_key_file,
    retired_keys,
)
from preservation.witness_records import read_latest
from storage_adapters.features import FEATURE_WITNESS


def _node(repo: Repository, name: str) -> Node:
    with repo.catalog.session() as s:
        node = s.scalar(select(Node).where(Node.name == name))
        if node is None:
            raise NotFound(f"no node named {name!r}: see `preserve node list`")
        s.expunge(node)
    return node


def _public(entry: dict[str, Any] | None) -> dict[str, Any] | None:
    if entry is None:
        return None
    return {k: v for k, v in entry.items() if k != "key"}


def _agent(repo: Repository, node: Node):
    return repo.adapter(node).features.provider(FEATURE_WITNESS)


def _agent_key(repo: Repository, node: Node) -> str:
    """The key the node's agent says it co-signs with; WitnessKeyRefused for a node that is no agent."""
    agent = _agent(repo, node)
    if agent is None:
        raise WitnessKeyRefused(f"node {node.name} is not a node agent: the coordinator writes its witness record "
                                "itself, so it has no key to trust")
    answer = agent.witness_key()
    vkey = answer.get("witness_key") if isinstance(answer, dict) else None
    if not isinstance(vkey, str) or len(vkey) > 300:
        raise WitnessKeyRefused(f"node {node.name}'s agent did not answer with a witness key")
    return checked_key(vkey, f"the key node {node.name}'s agent gave")


def list_witness_keys(repo: Repository) -> list[dict[str, Any]]:
    """Every node with the witness key trusted for it (None: none yet) and its retired keys; no node is asked."""
    current, retired = current_keys(repo.settings), retired_keys(repo.settings)
    with repo.catalog.session() as s:
        nodes = list(s.scalars(select(Node.name).order_by(Node.name)))
    return [{"node": name, "trusted": _public(current.get(name)),
             "retired": [_public(r) for r in retired.get(name, ())]} for name in nodes]


def show_witness_key(repo: Repository, name: str) -> dict[str, Any]:
    """One node as a witness: the key trusted for it, its retired keys, and what the node itself holds: an
    agent's key (fetched, compared with the trusted one), or for a ``file://`` or ``s3://`` node the newest
    checkpoint of the record the coordinator writes there and the log keys it names.  Raises NotFound."""
    node = _node(repo, name)
    out: dict[str, Any] = {"node": node.name, "trusted": _public(current_keys(repo.settings).get(node.name)),
                           "retired": [_public(r) for r in retired_keys(repo.settings).get(node.name, ())]}
    if _agent(repo, node) is None:
        out["witness"] = "record"
        try:
            held = read_latest(repo.adapter(node), repo.settings.checkpoints.origin)
        except PreservationError as e:
            out["record"] = {"error": e.to_dict()}
        else:
            out["record"] = ({"size": held["size"], "log_keys": list(held.get("log_keys") or [])}
                             if held else None)
        return out
    out["witness"] = "agent"
    try:
        vkey = _agent_key(repo, node)
    except PreservationError as e:
        out["agent_key"] = {"error": e.to_dict()}
        return out
    name_, kid, _ = parse_verifier_key(vkey)
    out["agent_key"] = {"name": name_, "key_id": kid, "verifier_key": vkey, "fingerprint": fingerprint(vkey),
                        "trusted": out["trusted"] is not None and out["trusted"]["verifier_key"] == vkey}
    return out


def trust_witness_key(repo: Repository, name: str, *, confirm_fingerprint: str, key_file: Path | None = None,
                      rotate: bool = False) -> dict[str, Any]:
    """Trust a key for node ``name``'s co-signatures: the one in ``key_file``, else the one its agent gives,
    once its fingerprint matches ``confirm_fingerprint``.  Without ``rotate`` the node must have no key yet
    (the same key again changes nothing); with it, the current key is retired, still counting on the
    checkpoints signed so far.  Raises NotFound, WitnessKeyRefused, and the agent's errors when asked."""
    node = _node(repo, name)
    if _agent(repo, node) is None:
        raise WitnessKeyRefused(f"node {node.name} is not a node agent: the coordinator writes its witness record "
                                "itself, so it has no key to trust (docs/evidence.md)")
    vkey = read_key_file(key_file) if key_file is not None else _agent_key(repo, node)
    full = confirm(vkey, confirm_fingerprint)
    current = current_keys(repo.settings).get(node.name)
    kid = parse_verifier_key(vkey)[1]
    if current is not None and current["verifier_key"] == vkey:
        if rotate:
            raise WitnessKeyRefused(f"node {node.name} co-signs with key {kid} already: a rotation needs a new key")
        return {"node": node.name, "key_id": kid, "fingerprint": full, "changed": False, "retired": None}
    if current is None and rotate:
        raise WitnessKeyRefused(f"node {node.name} has no witness key to rotate: trust one first")
    if current is not None and not rotate:
        raise WitnessKeyRefused(f"node {node.name} co-signs with key {current['key_id']}, not {kid}: to replace it "
                                f"run `preserve witness-keys rotate {node.name}`")
    with repo.catalog.session() as s:
        latest = checkpoints.latest_checkpoint(s)
        through = latest.size if latest is not None else 0
        retired = current["key_id"] if current is not None else None
        record_event(s, KEY_INTRODUCTION, SUCCESS, node_name=node.name,
                     detail={"witness_key": vkey, "fingerprint": full, "source": "file" if key_file else "agent",
                             "retired": retired, "retired_valid_through": through if retired else None})
        install(repo.settings, node.name, vkey, retire_through=through if rotate else None)  # fails: no event
    return {"node": node.name, "key_id": kid, "fingerprint": full, "changed": True, "retired": retired,
            "retired_valid_through": through if retired else None}
