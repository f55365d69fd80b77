"""What a node agent is started with: the keys it accepts and its limits.

Keys come from a small YAML (or JSON) document::

    keys:
      coordinator: "a long random secret shared with the coordinator"

given as a file (``--keys FILE``) or, for containers, as the text of the
environment variable ``PRESERVE_AGENT_KEYS``.
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

import yaml

from preservation.errors import ConfigError
from storage_adapters.signing import KEY_ID_PATTERN, MAX_CLOCK_SKEW, MIN_KEY_LENGTH

if TYPE_CHECKING:
    from preservation.notes import SigningKey

KEYS_ENV = "PRESERVE_AGENT_KEYS"

log = logging.getLogger("preservation.node_agent")


@dataclass(frozen=True)
class AgentConfig:
    """How an agent behaves; the storage it fronts is passed separately."""

    keys: Mapping[str, bytes]
    allow_delete: bool = False
    max_clock_skew: int = MAX_CLOCK_SKEW
    max_digest_workers: int = 4
    nonce_capacity: int = 1_000_000
    max_json_body: int = 16 * 1024 * 1024
    max_digest_keys: int = 10_000
    digest_heartbeat: float = 10.0
    worker_threads: int = 128
    witness_key: "SigningKey | None" = None
    """The agent's own Ed25519 key for co-signing checkpoints (``--witness-key``); None: not a witness."""


def parse_keys(text: str, source: str) -> dict[str, bytes]:
    """Parse a keys document; raises ConfigError naming ``source`` and the bad entry."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{source} is not valid YAML or JSON: {e}") from e
    if not isinstance(document, dict) or not isinstance(document.get("keys"), dict):
        raise ConfigError(f"{source} must hold a mapping 'keys:' of key id to secret")
    keys: dict[str, bytes] = {}
    for key_id, secret in document["keys"].items():
        if not isinstance(key_id, str) or not KEY_ID_PATTERN.fullmatch(key_id):
            raise ConfigError(f"{source}: key id {key_id!r} must be 1-64 letters, digits, '.', '_' or '-'")
        if not isinstance(secret, str) or len(secret) < MIN_KEY_LENGTH:
            raise ConfigError(f"{source}: the key for {key_id!r} must be a string of at least {MIN_KEY_LENGTH} characters")
        keys[key_id] = secret.encode("utf-8")
    if not keys:
        raise ConfigError(f"{source} names no keys: the agent would refuse every request")
    return keys


def load_keys(path: str | os.PathLike | None, environ: Mapping[str, str] | None = None) -> dict[str, bytes]:
    """Keys from ``path`` or, without one, from ``$PRESERVE_AGENT_KEYS``; raises ConfigError."""
    environ = os.environ if environ is None else environ
    if path is not None:
        file = Path(path)
        try:
            text = file.read_text(encoding="utf-8")
            mode = file.stat().st_mode
        except OSError as e:
            raise ConfigError(f"cannot read the keys file {file}: {e.strerror}") from e
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warning("the keys file %s is readable by other users: chmod 600 it", file)
        return parse_keys(text, str(file))
    if environ.get(KEYS_ENV):
        return parse_keys(environ[KEYS_ENV], f"${KEYS_ENV}")
    raise ConfigError(f"no keys: pass --keys FILE or set {KEYS_ENV}")
