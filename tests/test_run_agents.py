"""config/three-node/run-agents.sh takes its ports as options: --ports U,C,I and one option per agent.

Bad ports are refused (exit 2) before anything is created; good ones start three real agents that answer
on exactly those ports, and SIGTERM stops all three."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from .processes import REPO_ROOT, wait_until
from .services import free_port, port_open

SCRIPT = REPO_ROOT / "config" / "three-node" / "run-agents.sh"


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PRESERVE": str(Path(sys.executable).with_name("preserve"))}


@pytest.mark.parametrize("args, says", [
    (["--ports", "9101,9102"], "three ports"),
    (["--ports", "9101,,9103"], "three ports"),
    (["--ports", "0,9102,9103"], "not a port"),
    (["--ports", "９１０１,9102,9103"], "not a port"),
    (["--ports", "+9101,9102,9103"], "not a port"),
    (["--ports", "9101,9101,9103"], "must differ"),
    (["--cas-port", "65536"], "not a port"),
    (["--institute-port", "09103"], "not a port"),
    (["--university-port", "8102"], "must differ"),  # the cas agent's default port
    (["--host", "a b"], "not a host"),
    (["--colour", "red"], "unknown option"),
    (["--cas-port"], "not a port"),  # DIR is taken as its value: refused, nothing made
])
def test_bad_ports_are_refused_before_anything_starts(tmp_path, args, says):
    target = tmp_path / "agents"
    result = subprocess.run(["bash", str(SCRIPT), *args, str(target)], capture_output=True, text=True, timeout=60,
                            env=_env())
    assert result.returncode == 2 and says in result.stderr, result.stderr
    assert not target.exists()


def test_agents_listen_on_the_ports_given_and_stop_together(tmp_path):
    university, cas_first, institute, cas = (free_port() for _ in range(4))
    target = tmp_path / "agents"
    log = tmp_path / "run-agents.out"
    with open(log, "wb") as out:
        proc = subprocess.Popen(["bash", str(SCRIPT), "--ports", f"{university},{cas_first},{institute}",
                                 "--cas-port", str(cas), str(target)], stdout=out, stderr=subprocess.STDOUT,
                                env=_env())
    try:
        def healthy(port: int) -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        for port in (university, cas, institute):
            wait_until(lambda: healthy(port) or proc.poll() is not None, 90, what=f"an agent on port {port}")
            assert proc.poll() is None, log.read_text(errors="replace")
        assert not port_open("127.0.0.1", cas_first)  # the per-agent option replaced --ports' cas port
        text = log.read_text(errors="replace")
        for node, port in (("university-wuhan", university), ("cas-beijing", cas), ("institute-shanghai", institute)):
            assert f"{node}: node+http://127.0.0.1:{port} " in text
            assert (target / node).is_dir()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    assert code == 0
    wait_until(lambda: not any(port_open("127.0.0.1", p) for p in (university, cas, institute)), 30,
               what="the agents to stop")
