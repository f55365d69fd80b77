"""Node agents for tests: in this process (uvicorn in a thread) or as separate processes.

Also a raw, signed HTTP client that sends request targets byte for byte (no
URL normalisation), for the tests that attack the agent.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import httpx

from preservation.node_agent import AgentConfig, build_server, create_app
from storage_adapters import StorageAdapter
from storage_adapters.filesystem import FilesystemAdapter
from storage_adapters.node import NodeAdapter
from storage_adapters.signing import EMPTY_SHA256, STREAMING_TRAILER, make_trailer, sign_request
from tests.services import free_port

# Test-only credentials: never use these anywhere else.
KEY_ID = "test-coordinator"
KEY = "test-only-key-0123456789abcdef"
KEYS = {KEY_ID: KEY.encode()}

REPO = Path(__file__).resolve().parents[2]


class ThreadedAgent:
    """An agent over ``storage`` (or a filesystem root), served by uvicorn in a thread of this process.

    ``wrap`` can put an ASGI middleware around the app (to inject faults).
    """

    def __init__(
        self,
        root: Path,
        *,
        allow_delete: bool = True,
        storage: StorageAdapter | None = None,
        wrap: Callable | None = None,
        **config,
    ) -> None:
        self.root = root
        self.port = free_port()
        adapter = storage or FilesystemAdapter(root.as_uri())
        app = create_app(adapter, AgentConfig(keys=KEYS, allow_delete=allow_delete, **config))
        self.app = wrap(app) if wrap else app
        self.server = build_server(self.app, "127.0.0.1", self.port, log_level="warning", access_log=False)
        self.thread = threading.Thread(target=self.server.run, name=f"agent-{self.port}", daemon=True)

    @property
    def uri(self) -> str:
        return f"node+http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "ThreadedAgent":
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the in-process agent on port {self.port} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)

    def adapter(self, uri: str | None = None, **options) -> NodeAdapter:
        options.setdefault("key_id", KEY_ID)
        options.setdefault("key", KEY)
        return NodeAdapter(uri or self.uri, **options)


def write_keys_file(path: Path, keys: Mapping[str, str]) -> Path:
    lines = ["# test-only keys", "keys:"] + [f'  {key_id}: "{secret}"' for key_id, secret in keys.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


@dataclass
class AgentProcess:
    """``python -m preservation.cli.node_serve`` (the body of `preserve node serve`) as a child process."""

    root: Path
    keys_file: Path
    port: int
    log_path: Path
    tls_cert: Path | None = None
    tls_key: Path | None = None
    allow_delete: bool = False
    access_log: bool = False
    witness_key: Path | None = None
    process: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"node+{'https' if self.tls_cert else 'http'}://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        cmd = [
            sys.executable, "-m", "preservation.cli.node_serve",
            "--storage", self.root.as_uri(),
            "--listen", f"127.0.0.1:{self.port}",
            "--keys", str(self.keys_file),
        ]
        if self.tls_cert:
            cmd += ["--tls-cert", str(self.tls_cert), "--tls-key", str(self.tls_key)]
        if self.allow_delete:
            cmd.append("--allow-delete")
        if self.access_log:
            cmd.append("--access-log")
        if self.witness_key:
            cmd += ["--witness-key", str(self.witness_key)]
        return cmd

    def start(self) -> "AgentProcess":
        log = open(self.log_path, "ab")
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        log.close()
        return self

    def wait_ready(self, timeout: float = 30.0) -> "AgentProcess":
        scheme = "https" if self.tls_cert else "http"
        verify = ssl.create_default_context(cafile=str(self.tls_cert)) if self.tls_cert else False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"agent on port {self.port} exited: {self.log_path.read_text(errors='replace')}")
            with contextlib.suppress(httpx.HTTPError), httpx.Client(verify=verify) as client:
                if client.get(f"{scheme}://127.0.0.1:{self.port}/v1/health", timeout=1).status_code == 200:
                    return self
            time.sleep(0.05)
        raise RuntimeError(f"agent on port {self.port} not ready: {self.log_path.read_text(errors='replace')}")

    def kill(self) -> None:
        """SIGKILL: no cleanup, no graceful shutdown."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes


def raw_request(
    port: int,
    method: str,
    target: str,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
    *,
    key_id: str = KEY_ID,
    key: bytes = KEY.encode(),
    sign: bool = True,
    sign_target: str | None = None,
    sign_body: bytes | None = None,
    timestamp: int | None = None,
    nonce: str | None = None,
) -> RawResponse:
    """Send ``target`` exactly as given, signed for ``sign_target``/``sign_body`` (default: what is sent).

    A PUT body is sent as ``body`` followed by a valid trailer for it.
    """
    headers = dict(headers or {})
    signed_path, _, signed_query = (sign_target or target).partition("?")
    if method == "PUT":
        content_sha256 = STREAMING_TRAILER
    else:
        signed_body = body if sign_body is None else sign_body
        content_sha256 = hashlib.sha256(signed_body).hexdigest() if signed_body else EMPTY_SHA256
    if sign:
        headers.update(
            sign_request(method, signed_path, signed_query, headers, content_sha256, key_id, key, timestamp, nonce)
        )
    if method == "PUT":
        signature = headers.get("Authorization", "=").rpartition("=")[2]
        body = body + make_trailer(key, signature, hashlib.sha256(body).hexdigest(), len(body))
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, target, body=body or None, headers=headers)
        response = conn.getresponse()
        return RawResponse(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        conn.close()
