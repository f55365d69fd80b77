"""Running the agent with uvicorn: listen address, TLS, logging."""

from __future__ import annotations

import ipaddress
import logging
import os

import uvicorn

from preservation import units
from preservation.errors import ConfigError
from preservation.text import VisibleArguments, safe_log_handler
from storage_adapters import open_adapter

from .app import create_app
from .config import AgentConfig

log = logging.getLogger("preservation.node_agent")


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) → (host, port); raises ConfigError."""
    try:
        return units.parse_listen(text)
    except ValueError as e:
        raise ConfigError(f"--listen {text!r}: use HOST:PORT, e.g. 127.0.0.1:8101") from e


def check_tls(tls_cert: str | None, tls_key: str | None) -> None:
    """Raise ConfigError unless both or neither of the TLS files are given, and exist."""
    if bool(tls_cert) != bool(tls_key):
        raise ConfigError("TLS needs both --tls-cert and --tls-key")
    for path in (tls_cert, tls_key):
        if path and not os.path.isfile(path):
            raise ConfigError(f"TLS file {path} does not exist")


def build_server(
    app,
    host: str,
    port: int,
    *,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    log_level: str = "info",
    access_log: bool = True,
) -> uvicorn.Server:
    """A uvicorn server for ``app``; TLS when both a certificate and its key are given."""
    check_tls(tls_cert, tls_key)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        ssl_certfile=tls_cert,
        ssl_keyfile=tls_key,
        log_level=log_level,
        access_log=access_log,
        lifespan="on",
        server_header=False,
        timeout_graceful_shutdown=30,
        log_config=None,  # its records reach our handler (dated lines): preservation.logsetup
    )
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, VisibleArguments) for f in access.filters):
        access.addFilter(VisibleArguments())
    return uvicorn.Server(config)


def serve(
    storage_uri: str,
    listen: str,
    config: AgentConfig,
    *,
    tls_cert: str | None = None,
    tls_key: str | None = None,
) -> None:
    """Serve the storage at ``storage_uri`` until interrupted; raises ConfigError or a StorageError."""
    host, port = parse_listen(listen)
    check_tls(tls_cert, tls_key)
    logging.basicConfig(level=logging.INFO, handlers=[safe_log_handler()])
    if not tls_cert and not _is_loopback(host):
        log.warning(
            "serving %s:%d without TLS: requests are signed, but content crosses the network in the clear",
            host, port,
        )
    adapter = open_adapter(storage_uri)
    server = build_server(create_app(adapter, config), host, port, tls_cert=tls_cert, tls_key=tls_key)
    server.run()
