"""Running the access service with uvicorn: listen address, TLS, the session secret, quiet logs.

The session secret is ``access_secret`` from ``preserve.yaml``; without it a
random one is generated once and kept in ``<home>/access-secret`` (mode
0600), so sessions survive a restart and every process on the host agrees.
Credentials in query strings (the fixity API's ``api_key``) are masked in
the access log by their decoded name.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

import uvicorn

from preservation import units
from preservation.access.web.app import SECRET_PARAMETERS, create_app, credential_name
from preservation.access.web.auth import ServiceConfig
from preservation.errors import ConfigError
from preservation.repository import Repository
from preservation.text import VisibleArguments

SECRET_FILE = "access-secret"


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) → (host, port); raises ConfigError."""
    try:
        return units.parse_listen(text)
    except ValueError as e:
        raise ConfigError(f"--listen {text!r}: use HOST:PORT, e.g. 127.0.0.1:8200") from e


def session_secret(repo: Repository) -> str:
    if repo.settings.access_secret:
        if len(repo.settings.access_secret) < 32:
            raise ConfigError("access_secret in preserve.yaml must have at least 32 characters")
        return repo.settings.access_secret
    path = Path(repo.settings.home) / SECRET_FILE
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(secrets.token_urlsafe(48))
    return path.read_text(encoding="ascii").strip()


def mask_credentials(target: str) -> str:
    """``target`` (a path with its query) with the value of every secret parameter replaced by ``***``.

    Names are compared decoded, so ``api%5Fkey=…`` and ``%61pi_key=…`` are
    masked as ``api_key=…`` is (the service refuses them anyway).
    """
    path, sep, query = target.partition("?")
    if not sep:
        return target
    fields = [f"{field.partition('=')[0]}=***" if credential_name(field.partition("=")[0]) in SECRET_PARAMETERS
              else field for field in query.split("&")]
    return f"{path}?{'&'.join(fields)}"


class MaskApiKeys(logging.Filter):
    """Mask credentials in uvicorn access-log lines (``api_key=***``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(mask_credentials(a) if isinstance(a, str) else a for a in record.args)
        return True


def build_server(repo: Repository, config: ServiceConfig, host: str, port: int, *,
                 tls_cert: str | None = None, tls_key: str | None = None, log_level: str = "info") -> uvicorn.Server:
    if bool(tls_cert) != bool(tls_key):
        raise ConfigError("TLS needs both --tls-cert and --tls-key")
    for path in (tls_cert, tls_key):
        if path and not os.path.isfile(path):
            raise ConfigError(f"TLS file {path} does not exist")
    access_log = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, MaskApiKeys) for f in access_log.filters):
        access_log.addFilter(MaskApiKeys())
    if not any(isinstance(f, VisibleArguments) for f in access_log.filters):
        access_log.addFilter(VisibleArguments())
    uv_config = uvicorn.Config(
        create_app(repo, config), host=host, port=port, ssl_certfile=tls_cert, ssl_keyfile=tls_key,
        log_level=log_level, lifespan="off", server_header=False, proxy_headers=False, timeout_graceful_shutdown=30,
        log_config=None,  # its records reach our handler (dated lines): preservation.logsetup
    )
    return uvicorn.Server(uv_config)


def serve(repo: Repository, listen: str, *, cookie_secure: bool = True, tls_cert: str | None = None,
          tls_key: str | None = None) -> None:
    """Run the access service until interrupted; raises ConfigError for a bad address or TLS files."""
    host, port = parse_listen(listen)
    config = ServiceConfig(secret=session_secret(repo), cookie_secure=cookie_secure,
                           timezone=repo.settings.access_timezone)
    build_server(repo, config, host, port, tls_cert=tls_cert, tls_key=tls_key).run()
