"""A three-node network of node agents (separate processes) under the real ingest, audit and challenges."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import delete, select

from devtools.demo import make_sample_delivery
from preservation.access import delivery as delivery_module
from preservation.access.delivery import ChunkedFile, file_row, open_verified
from preservation.audit import audit, audit_replica
from preservation.catalog.chunk_models import FileChunks
from preservation.catalog.models import Job, Replica
from preservation.chunk_digests import CHUNK_BYTES, chunk_digest
from preservation.challenge import challenge_replica
from preservation.codes import NOT_REGULAR
from preservation.collection import add_collection
from preservation.home import init_home
from preservation.ingest import ingest
from preservation.nodes import add_node
from preservation.repository import Repository

from .corruption import replace_with_fifo, replace_with_socket, replace_with_symlink
from .node_agent.agents import KEY, KEY_ID, AgentProcess, write_keys_file
from .services import free_port

ORGS = [("uni", "university", "beijing"), ("cas", "cas", "beijing"), ("inst", "institute", "wuhan")]


@pytest.fixture
def network(tmp_path):
    keys = write_keys_file(tmp_path / "keys.yaml", {KEY_ID: KEY})
    agents = {}
    try:
        for name, _, _ in ORGS:
            root = tmp_path / "agents" / name
            root.mkdir(parents=True)
            agents[name] = AgentProcess(root, keys, free_port(), tmp_path / f"{name}.log").start()
        for a in agents.values():
            a.wait_ready()
        home = tmp_path / "coordinator"
        home.mkdir()
        creds = "\n".join(f"  {n}: {{key_id: {KEY_ID}, key: '{KEY}'}}" for n, _, _ in ORGS)
        (home / "preserve.yaml").write_text(f"node_credentials:\n{creds}\n", encoding="utf-8")
        init_home(home)
        repo = Repository.open(home)
        for name, org_type, region in ORGS:
            add_node(repo, name, org_type, region, agents[name].uri)
        add_collection(repo, "journals", "期刊", publisher="P", licence="L")
        yield repo, agents
        repo.close()
    finally:
        for a in agents.values():
            a.stop()


def test_audit_over_node_agents_moves_digests_not_data(network, tmp_path):
    repo, agents = network
    delivery = make_sample_delivery(tmp_path / "delivery", megabytes=4)
    result = ingest(repo, delivery, "journals")
    assert result["state"] == "preserved"
    report = audit(repo, package_id=result["package_id"])
    assert report.ok and len(report.replicas) == 3
    for one in report.replicas:
        assert one.fixity.bytes_read_on_node >= result["bytes"]
        assert one.fixity.bytes_over_network < 0.05 * result["total_bytes"], one.to_dict()


def test_failed_challenge_makes_the_copy_suspect_and_queues_a_full_audit(network, tmp_path):
    repo, agents = network
    result = ingest(repo, make_sample_delivery(tmp_path / "d", megabytes=1), "journals")
    pid = result["package_id"]
    with repo.catalog.session() as s:
        replicas = {r.node.name: r.id for r in s.scalars(select(Replica).where(Replica.package_id == pid))}
    assert challenge_replica(repo, replicas["uni"]).passed
    # alter every byte of every file of the cas copy, keeping sizes: any challenge must now fail
    for path in (agents["cas"].root / pid).rglob("*"):
        if path.is_file() and path.stat().st_size:
            path.write_bytes(bytes(b ^ 0xFF for b in path.read_bytes()))
    outcome = challenge_replica(repo, replicas["cas"])
    assert not outcome.passed
    with repo.catalog.session() as s:
        assert s.get(Replica, replicas["cas"]).state == "suspect"
        jobs = s.scalars(select(Job).where(Job.kind == "audit", Job.state == "queued")).all()
        assert [j.payload["replica_id"] for j in jobs] == [replicas["cas"]]
    full = audit(repo, node_name="cas")
    assert not full.ok and full.replicas[0].state == "corrupt"


def test_challenge_command_exits_1_and_names_the_altered_copy(network, tmp_path, run_cli):
    repo, agents = network
    pid = ingest(repo, make_sample_delivery(tmp_path / "d", megabytes=1), "journals")["package_id"]
    home = repo.settings.home
    assert run_cli("challenge", "--count", "3", "--json", home=home).json()["failed"] == 0
    for path in (agents["inst"].root / pid).rglob("*"):
        if path.is_file() and path.stat().st_size:
            path.write_bytes(bytes(b ^ 0x55 for b in path.read_bytes()))
    out = run_cli("challenge", "--node", "inst", "--count", "1", exit_code=1, home=home)
    assert "FAILED" in out.output and "inst:" in out.output


@pytest.mark.timeout(300)  # an agent that opened a FIFO the blocking way would hang: fail instead
def test_fifos_sockets_and_links_on_an_agent_are_findings_in_audits_and_challenges(network, tmp_path):
    repo, agents = network
    pid = ingest(repo, make_sample_delivery(tmp_path / "d", megabytes=1), "journals")["package_id"]
    files = sorted(p for p in (agents["cas"].root / pid).rglob("*") if p.is_file())
    replaced = {files[0]: "symbolic link", **{path: "fifo" for path in files[1:]}}
    replace_with_symlink(files[0], files[1])
    for path in files[1:]:
        replace_with_fifo(path)
    replace_with_socket(agents["cas"].root / pid / "data" / "stray")
    with repo.catalog.session() as s:
        replica = s.scalars(select(Replica).join(Replica.node).where(Replica.package_id == pid,
                                                                       Replica.node.has(name="cas"))).one()
        replica_id = replica.id
    outcome = challenge_replica(repo, replica_id)
    assert not outcome.passed and outcome.finding == NOT_REGULAR
    [bad] = audit(repo, node_name="cas").failed
    root = agents["cas"].root / pid
    expected = {(path.relative_to(root).as_posix(), kind) for path, kind in replaced.items()}
    expected.add(("data/stray", "socket"))
    assert {(f.path, f.params["kind"]) for f in bad.fixity.findings} == expected
    assert set(bad.fixity.findings.codes()) == {NOT_REGULAR}


def test_an_audit_through_an_agent_records_no_chunk_digests_the_first_serving_here_does(
        network, tmp_path, monkeypatch):
    """What served bytes are checked against never comes from a node's word: an agent's audit leaves an older
    package without chunk digests; the first serving (spooled, sha256 checked here) records them."""
    repo, agents = network
    data = random.Random(4).randbytes(3 * CHUNK_BYTES + 77)
    delivery = tmp_path / "big-delivery"
    delivery.mkdir()
    (delivery / "big.bin").write_bytes(data)
    (delivery / "small.txt").write_bytes(b"small\n")
    result = ingest(repo, delivery, "journals")
    pid = result["package_id"]

    def rows():
        with repo.catalog.session() as s:
            return s.execute(select(FileChunks.path, FileChunks.digests).where(FileChunks.package_id == pid)).all()

    ingested = rows()
    assert [path for path, _ in ingested] == ["data/big.bin"]
    with repo.catalog.session() as s:  # as a package ingested before chunk digests existed
        s.execute(delete(FileChunks).where(FileChunks.package_id == pid))
        replicas = {r.node.name: r.id for r in s.scalars(select(Replica).where(Replica.package_id == pid))}
    (agents["cas"].root / pid / "data/big.bin").write_bytes(data[:-1] + b"!")  # a copy whose file fails
    assert audit_replica(repo, replicas["cas"]).state == "corrupt" and rows() == []
    one = audit_replica(repo, replicas["uni"])
    assert one.ok and one.fixity.chunks_recorded == 0 and rows() == []
    assert one.fixity.bytes_over_network < 0.05 * len(data)  # digests computed on the node: no content moved
    with repo.catalog.session() as s:
        row = file_row(s, pid, "data/big.bin")
    with open_verified(repo, pid, row, agent="test") as served:
        assert not isinstance(served, ChunkedFile)  # spooled and verified whole here
        assert b"".join(served.chunks(0, len(data))) == data
    assert rows() == ingested
    checked = []

    def counted(piece):
        checked.append(len(piece))
        return chunk_digest(piece)

    monkeypatch.setattr(delivery_module, "chunk_digest", counted)
    start, end = CHUNK_BYTES + 5, 2 * CHUNK_BYTES + 9  # chunks 1 and 2
    with open_verified(repo, pid, row, agent="test", start=start, end=end) as served:
        assert isinstance(served, ChunkedFile)
        assert b"".join(served.chunks(start, end)) == data[start:end]
    assert checked == [CHUNK_BYTES, CHUNK_BYTES]
