"""The repository home: its settings file and its catalog, created or brought to the current schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from preservation.catalog.db import Catalog
from preservation.settings import CONFIG_NAME, load_settings

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
    catalog = Catalog(settings.catalog_url)
    try:
        before = catalog.current_revision()
        after = catalog.upgrade()
    finally:
        catalog.dispose()
    return {"home": str(settings.home), "catalog": catalog.display_url, "revision_before": before, "revision": after}
