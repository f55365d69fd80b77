"""Witness nodes for the evidence tests: node agents run as processes, each with its own witness key."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import delete, select, update

from preservation.catalog.evidence_models import Checkpoint, rebuild
from preservation.catalog.models import ChainHead, Event
from preservation.events import FIXITY_CHECK, GENESIS_HASH, SUCCESS, _hashed_fields, event_hash, record_event
from preservation.home import init_home
from preservation.nodes import add_node
from preservation.repository import Repository
from preservation.signing_keys import generate_key
from tests.node_agent.agents import KEY, KEY_ID, AgentProcess, write_keys_file
from tests.services import free_port

AGENTS = [("uni", "university", "beijing"), ("cas", "cas", "beijing"), ("inst", "institute", "wuhan")]
FILE_NODE = ("archive", "university", "shanghai")


def start_witnesses(base: Path) -> dict[str, AgentProcess]:
    keys = write_keys_file(base / "keys.yaml", {KEY_ID: KEY})
    agents = {}
    for name, _, _ in AGENTS:
        root = base / "storage" / name
        root.mkdir(parents=True)
        key = base / "witness-keys" / name / "witness.key"
        generate_key(key, f"witness.{name}")
        agents[name] = AgentProcess(root, keys, free_port(), base / f"{name}.log", witness_key=key).start()
    for agent in agents.values():
        agent.wait_ready(timeout=120)  # three interpreters starting at once on a busy machine
    return agents


def make_network(home: Path, agents: dict[str, AgentProcess], catalog_url: str | None = None,
                 file_node: bool = True, quorum: int | None = None) -> Repository:
    """A coordinator home whose nodes are the three witness agents (and a file:// node)."""
    home.mkdir(parents=True)
    creds = "\n".join(f"  {n}: {{key_id: {KEY_ID}, key: '{KEY}'}}" for n, _, _ in AGENTS)
    lines = [f"node_credentials:\n{creds}"]
    if catalog_url:
        lines.append(f"catalog_url: '{catalog_url}'")
    (home / "preserve.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    init_home(home)
    if quorum is not None:
        with open(home / "preserve.yaml", "a", encoding="utf-8") as f:
            f.write(f"  quorum: {quorum}\n")
    repo = Repository.open(home)
    for name, org_type, region in AGENTS:
        add_node(repo, name, org_type, region, agents[name].uri)
    if file_node:
        name, org_type, region = FILE_NODE
        add_node(repo, name, org_type, region, (home / "nodes" / name).as_uri(), create=True)
    return repo


def append_events(repo: Repository, n: int, start: int = 0) -> list[str]:
    ids = []
    for i in range(start, start + n):
        with repo.catalog.session() as s:
            ids.append(record_event(s, FIXITY_CHECK, SUCCESS, package_id="p-1", detail={"i": i}).event_id)
    return ids


def rewrite_outcome(repo: Repository, seq: int, outcome: str) -> None:
    """What an administrator with the database could do: change one event, recompute every later hash, the
    chain head and the stored tree."""
    with repo.catalog.session() as s:
        prev = GENESIS_HASH
        for ev in s.scalars(select(Event).order_by(Event.seq)):
            if ev.seq == seq:
                ev.outcome = outcome
            ev.prev_hash = prev
            ev.hash = event_hash(_hashed_fields(ev), prev)
            prev = ev.hash
        s.execute(update(ChainHead).where(ChainHead.id == 1).values(hash=prev))
        rebuild(s)


def truncate(repo: Repository, keep: int) -> None:
    """Drop every event after ``keep`` (and the checkpoints over them), as an administrator could."""
    with repo.catalog.session() as s:
        s.execute(delete(Event).where(Event.seq > keep))
        last = s.scalar(select(Event.hash).where(Event.seq == keep))
        s.execute(update(ChainHead).where(ChainHead.id == 1).values(seq=keep, hash=last))
        s.execute(delete(Checkpoint).where(Checkpoint.size > keep))
        rebuild(s)


def forget_checkpoints_after(repo: Repository, size: int) -> None:
    """An administrator hiding the checkpoints of a history they replaced (the key still at hand)."""
    with repo.catalog.session() as s:
        s.execute(delete(Checkpoint).where(Checkpoint.size > size))
