"""Where a home is and what in it may be read without loading the settings' models.

The home (``--home``, ``PRESERVE_HOME``, else ``~/.preserve``) holds ``preserve.yaml``, the default SQLite
catalog and the staging area.  These rules are used by :mod:`preservation.settings` (which validates the file)
and by :mod:`preservation.quick` (the quick read-only commands, which must not build its pydantic models).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from preservation.errors import CatalogNotInitialised

CONFIG_NAME = "preserve.yaml"


def default_home() -> Path:
    return Path(os.environ.get("PRESERVE_HOME") or Path.home() / ".preserve")


def resolve_home(home: str | os.PathLike | None) -> Path:
    """The home directory ``--home`` names (the default when None), absolute."""
    return (Path(home) if home else default_home()).expanduser().resolve()


def sqlite_path(catalog_url: str) -> Path | None:
    """The file of a SQLite catalog URL (None for another database or an in-memory one)."""
    if not catalog_url.startswith("sqlite"):
        return None
    path = catalog_url.split("///", 1)[-1].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def require_catalog_file(catalog_url: str, home: Path) -> None:
    """Refuse a home whose SQLite catalog does not exist, before anything would create it (a mistyped --home).

    Raises CatalogNotInitialised; creates nothing.  Another database is not checked here.
    """
    path = sqlite_path(catalog_url)
    if path is not None and not path.is_file():
        raise CatalogNotInitialised(url=f"{path} (is --home {home} the right home?)")


def exposed(config: Path, holds_secrets: bool) -> Path | None:
    """``config`` when it holds secrets (node keys, the access secret) and others than its owner may read it."""
    if not holds_secrets:
        return None
    try:
        mode = config.stat().st_mode
    except OSError:
        return None
    return config if mode & (stat.S_IRWXG | stat.S_IRWXO) else None
