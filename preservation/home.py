"""The repository home: its settings file and its catalog, created or brought to the current schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from preservation.catalog.db import Catalog
from preservation.home_dir import exposed, require_catalog_file, sqlite_path  # noqa: F401 - sqlite_path: offered
from preservation.settings import CONFIG_NAME, Settings, load_settings

DEFAULT_CONFIG = """\
# preserve settings for this home.  Every key is optional.
# catalog_url: postgresql+psycopg://preserve@db.example.org/preserve
# policy: /etc/preserve/policies/default.yaml
# workers: 2
# node_credentials:
#   cas-beijing: {key_id: coordinator, key: "<shared HMAC key of that node agent>"}
"""


def init_home(home: str | Path | None) -> dict[str, Any]:
    """Create the home (config, catalog) or bring its catalog to the current schema."""
    settings = load_settings(home)
    settings.home.mkdir(parents=True, exist_ok=True)
    config = settings.home / CONFIG_NAME
    if not config.exists():
        config.write_text(DEFAULT_CONFIG, encoding="utf-8")
    new_key = ensure_checkpoint_key(settings)
    catalog = Catalog(settings.catalog_url)
    try:
        before = catalog.current_revision()
        after = catalog.upgrade()
    finally:
        catalog.dispose()
    return {"home": str(settings.home), "catalog": catalog.display_url, "revision_before": before, "revision": after,
            "checkpoint_key_created": new_key}


def require_catalog(settings: Settings) -> None:
    """Refuse a home whose SQLite catalog does not exist (:func:`preservation.home_dir.require_catalog_file`)."""
    require_catalog_file(settings.catalog_url, settings.home)


def exposed_config(settings: Settings) -> Path | None:
    """The settings file when it holds secrets (node keys, the access secret) and others than its owner may read it."""
    return exposed(settings.home / CONFIG_NAME, bool(settings.node_credentials or settings.access_secret))


CHECKPOINT_KEY = "keys/checkpoint.key"


def ensure_checkpoint_key(settings: Settings) -> str | None:
    """Give the home its checkpoint signing key (docs/evidence.md) unless the config names one.

    Writes ``keys/checkpoint.key`` (0600) and its public key beside it, and appends ``checkpoints.key`` and
    ``checkpoints.origin`` to the config; a configured key whose file is missing is made where the config says.
    Returns the new key's verifier key, or None when nothing was made.
    """
    # imported here: every command opens the home (require_catalog), only init makes keys (cryptography is slow to load)
    from preservation.signing_keys import generate_key, new_origin

    cfg = settings.checkpoints
    if cfg.key is not None:
        if cfg.key.exists() or not cfg.origin:
            return None
        return generate_key(cfg.key, cfg.origin)
    if "checkpoints" in settings.model_fields_set:
        return None  # the operator configured checkpoints without a key: `preserve events checkpoint` says so
    origin = new_origin()
    vkey = generate_key(settings.home / CHECKPOINT_KEY, origin)
    config = settings.home / CONFIG_NAME
    text = config.read_text(encoding="utf-8")
    lead = "" if not text or text.endswith("\n") else "\n"
    with config.open("a", encoding="utf-8") as f:
        f.write(f"{lead}# the event log's signing key (docs/evidence.md): keep it 0600 and back it up apart\n"
                f"checkpoints:\n  key: {CHECKPOINT_KEY}\n  origin: {origin}\n")
    return vkey
