"""Agents as separate processes: a three-node audit, a SIGKILL mid-write, challenges, TLS."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from preservation.errors import AccessDenied, StorageError, StorageUnavailable
from storage_adapters import read_all, traffic
from storage_adapters.node import NodeAdapter
from storage_adapters.signing import possession_proof
from tests.services import free_port, service_missing

from .agents import AgentProcess, write_keys_file

ORGANISATIONS = ("university", "cas", "institute")
MiB = 1024 * 1024


def key_for(name: str) -> str:
    return f"test-only-key-for-{name}-0123456789"


def start_agent(base: Path, name: str, **options) -> AgentProcess:
    root = base / name
    root.mkdir(parents=True, exist_ok=True)
    keys = write_keys_file(base / f"{name}-keys.yaml", {f"coordinator-{name}": key_for(name)})
    return AgentProcess(root, keys, options.pop("port", None) or free_port(), base / f"{name}.log", **options).start()


def adapter_for(agent: AgentProcess, name: str, **options) -> NodeAdapter:
    return NodeAdapter(agent.uri, key_id=f"coordinator-{name}", key=key_for(name), **options)


@pytest.fixture(scope="module")
def three_agents(tmp_path_factory):
    """One agent process per organisation type, each with its own root and key."""
    base = tmp_path_factory.mktemp("three-nodes")
    agents = {name: start_agent(base, name) for name in ORGANISATIONS}
    try:
        for agent in agents.values():
            agent.wait_ready()
        yield agents
    finally:
        for agent in agents.values():
            agent.stop()


def test_an_audit_of_three_nodes_moves_digests_not_content(three_agents):
    fractions = {}
    for n, (name, agent) in enumerate(three_agents.items()):
        contents = {f"pkg-{name}/data/large-{i}.bin": os.urandom(MiB + 4096 * i + n) for i in range(6)}
        contents |= {f"pkg-{name}/data/small-{i:02d}.txt": os.urandom(100 * i + 7) for i in range(40)}
        with adapter_for(agent, name) as node:
            for key, content in contents.items():
                node.write(key, content, size=len(content))
            before = traffic(node)
            results = list(node.digest_many(sorted(contents), ["sha256", "sha512"], workers=4))
            audit_traffic = traffic(node) - before
        assert sorted(r.key for r in results) == sorted(contents)
        for result in results:
            content = contents[result.key]
            assert result.error is None
            assert result.digests == {
                "sha256": hashlib.sha256(content).hexdigest(), "sha512": hashlib.sha512(content).hexdigest()
            }
        digested = sum(r.bytes_read for r in results)
        assert digested == sum(map(len, contents.values())) > 6 * MiB
        fractions[name] = audit_traffic / digested
        assert fractions[name] < 0.05, fractions
    print("audit traffic / bytes digested on the node:", {k: f"{v:.4%}" for k, v in fractions.items()})


def test_a_challenge_tells_an_altered_file_from_the_good_bytes(three_agents):
    agent = three_agents["cas"]
    good = os.urandom(3 * MiB)
    with adapter_for(agent, "cas") as node:
        node.write("pkg/challenged.bin", good)
        nonce = os.urandom(32)
        assert node.challenge("pkg/challenged.bin", MiB, 4096, nonce) == possession_proof(nonce, [good[MiB : MiB + 4096]])

        altered = bytearray(good)
        altered[MiB + 100] ^= 0x01
        (agent.root / "pkg" / "challenged.bin").write_bytes(altered)

        nonce = os.urandom(32)
        expected = possession_proof(nonce, [good[MiB : MiB + 4096]])
        assert node.challenge("pkg/challenged.bin", MiB, 4096, nonce) != expected
        untouched = possession_proof(nonce, [good[: MiB]])
        assert node.challenge("pkg/challenged.bin", 0, MiB, nonce) == untouched


def test_agent_killed_mid_write_leaves_nothing_and_the_write_succeeds_after_restart(tmp_path):
    agent = start_agent(tmp_path, "university").wait_ready()
    temp_dir = agent.root / ".preserve-tmp"
    chunk = os.urandom(MiB)
    total_chunks = 64
    killed = threading.Event()

    def stream():
        for i in range(total_chunks):
            yield chunk
            # Once the agent holds part of the object in its temporary file, kill it.
            if not killed.is_set() and i >= 4:
                deadline = time.monotonic() + 10
                while not any(p.stat().st_size > 0 for p in temp_dir.glob("*.part")):
                    assert time.monotonic() < deadline, "the agent never started writing"
                    time.sleep(0.01)
                agent.kill()
                killed.set()

    try:
        with adapter_for(agent, "university", retries=2, backoff=0.01) as node:
            with pytest.raises(StorageError) as caught:
                node.write("pkg/huge.bin", stream(), size=total_chunks * MiB)
            assert isinstance(caught.value, StorageUnavailable)
        assert killed.is_set()
        assert not (agent.root / "pkg").exists()

        agent.start().wait_ready()
        with adapter_for(agent, "university") as node:
            assert [o.key for o in node.list()] == []
            result = node.write("pkg/huge.bin", (chunk for _ in range(total_chunks)), size=total_chunks * MiB)
            assert result.size == total_chunks * MiB
            digest = next(node.digest_many(["pkg/huge.bin"], ["sha256"])).digests["sha256"]
            assert digest == hashlib.sha256(chunk * total_chunks).hexdigest()
            assert [o.key for o in node.list()] == ["pkg/huge.bin"]
    finally:
        agent.stop()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 (made with the openssl CLI)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        service_missing("the openssl command")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "agent.pem", directory / "agent.key"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


def test_tls_with_a_self_signed_certificate_and_ca_file(tmp_path, certificate):
    cert, key = certificate
    agent = start_agent(tmp_path, "institute", tls_cert=cert, tls_key=key).wait_ready()
    try:
        assert agent.uri.startswith("node+https://")
        with adapter_for(agent, "institute", ca_file=str(cert)) as node:
            node.write("pkg/over-tls", b"private bytes")
            assert read_all(node, "pkg/over-tls") == b"private bytes"
            (digested,) = node.digest_many(["pkg/over-tls"])
            assert digested.digests["sha256"] == hashlib.sha256(b"private bytes").hexdigest()
        with adapter_for(agent, "institute", retries=0) as untrusting:
            with pytest.raises(AccessDenied, match="ca_file"):
                untrusting.stat("pkg/over-tls")
        plain = NodeAdapter(agent.uri.replace("https", "http"), key_id="coordinator-institute",
                            key=key_for("institute"), retries=0)
        with plain, pytest.raises(StorageUnavailable):
            plain.stat("pkg/over-tls")
    finally:
        agent.stop()
