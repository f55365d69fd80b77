"""The schema revisions this code knows, read from the migration files without importing alembic.

Every command that opens the catalog checks its schema revision first; importing alembic (and mako, which it
pulls in) to learn the head costs more than the rest of ``preserve status``.  The migrations are linear
(docs/operations.md), each file naming its ``revision`` and ``down_revision`` at module level, so the chain
is read from the files' text.  ``tests/test_catalog_revisions.py`` holds this reading equal to alembic's own
(``ScriptDirectory``): alembic stays the one authority, this is its fast reader.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Callable

from preservation.errors import CatalogError, CatalogNotInitialised, CatalogOutdated, CatalogTooNew

VERSIONS = Path(__file__).resolve().parent / "migrations" / "versions"

_ASSIGNMENT = re.compile(r"""^(revision|down_revision)\s*(?::[^=]*)?=\s*(None|'([^']*)'|"([^"]*)")\s*$""",
                         re.MULTILINE)


def _read(path: Path) -> tuple[str, str | None]:
    found: dict[str, str | None] = {}
    for name, literal, single, double in _ASSIGNMENT.findall(path.read_text(encoding="utf-8")):
        found.setdefault(name, None if literal == "None" else (single or double))
    if "revision" not in found or "down_revision" not in found:
        raise CatalogError(f"migration {path.name} names no revision or down_revision as a plain string")
    return found["revision"], found["down_revision"]  # type: ignore[return-value]


@lru_cache(maxsize=1)
def chain() -> tuple[str, ...]:
    """Every revision, oldest first.  Raises CatalogError unless the migrations form one line."""
    down_of = dict(_read(path) for path in sorted(VERSIONS.glob("*.py")) if not path.name.startswith("_"))
    by_parent: dict[str | None, list[str]] = {}
    for revision, down in down_of.items():
        by_parent.setdefault(down, []).append(revision)
    ordered: list[str] = []
    parent: str | None = None
    while parent in by_parent:
        children = by_parent[parent]
        if len(children) != 1:
            raise CatalogError(f"migrations branch after {parent or 'the base'}: {sorted(children)}")
        parent = children[0]
        ordered.append(parent)
    if len(ordered) != len(down_of):
        raise CatalogError(f"migrations not on the line from the base: {sorted(set(down_of) - set(ordered))}")
    return tuple(ordered)


def head() -> str:
    """The revision a catalog must be at for this code ("" when there are no migrations)."""
    revisions = chain()
    return revisions[-1] if revisions else ""


def known() -> frozenset[str]:
    return frozenset(chain())


def applied(found: list[str], display_url: str) -> str | None:
    """The revision a catalog is at, from the rows of its ``alembic_version`` table (None: no row).

    Raises CatalogError when it holds more than one.
    """
    if len(found) > 1:
        raise CatalogError(f"the catalog at {display_url} is at several revisions at once: {sorted(found)}")
    return found[0] if found else None


def require_head(found: list[str] | None, has_tables: Callable[[], bool], display_url: str) -> None:
    """Raise unless a catalog is at :func:`head`.

    ``found``: the rows of its ``alembic_version`` table, None when it has no such table; ``has_tables``: whether
    it has any table.  Raises CatalogNotInitialised (an empty database), CatalogOutdated (an older revision, or
    tables without one) or CatalogTooNew (a revision this code does not know), CatalogError (several revisions).
    """
    current = applied(found, display_url) if found is not None else None
    target = head()
    if current is None:
        if not has_tables():
            raise CatalogNotInitialised(url=display_url)
        raise CatalogOutdated(url=display_url, current="(none)", head=target)
    if current == target:
        return
    if current in known():
        raise CatalogOutdated(url=display_url, current=current, head=target)
    raise CatalogTooNew(url=display_url, current=current, head=target)
