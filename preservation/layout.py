"""Where a package lives on a node: the one place that knows the keys.

A package's bag sits under ``<package id>/`` on every node, and beside the
bags, under ``.preserve/packages/``, a small JSON record of what the catalog
knows of each package with its signed evidence (``<package id>.json``) and the
package's events, one JSON object a line (``<package id>.events.jsonl``):
``catalog rebuild`` reads both back (:mod:`preservation.node_records`).  The
events that name no package are kept the same way under
``.preserve/repository/`` (:class:`RepositoryLayout`).  Everything that
builds or parses one of those keys goes through these classes, so the layout
can only ever change in one place.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Iterator

from storage_adapters import StorageAdapter, read_all

RECORD_PREFIX = ".preserve/packages/"
# scratch objects (`preserve config check` probes): any node deletes them, even an agent started without
# --allow-delete, and nothing the catalog knows ever lies there
SCRATCH_PREFIX = ".preserve/tmp/"
REPOSITORY_PREFIX = ".preserve/repository/"
RECORD_SUFFIX = ".json"
EVENTS_SUFFIX = ".events.jsonl"


class _RecordKeys(ABC):
    """Reading and writing a record and its events file, at the keys a subclass names."""

    @property
    @abstractmethod
    def record_key(self) -> str: ...

    @property
    @abstractmethod
    def events_key(self) -> str: ...

    def write_record(self, adapter: StorageAdapter, record: dict[str, Any]) -> None:
        adapter.write(self.record_key, json.dumps(record, ensure_ascii=False, indent=1).encode("utf-8"))

    def read_record(self, adapter: StorageAdapter) -> dict[str, Any]:
        """The record on ``adapter``; raises ObjectNotFound, and ValueError when it is not JSON."""
        return json.loads(read_all(adapter, self.record_key))

    def write_events(self, adapter: StorageAdapter, lines: bytes) -> None:
        """Replace the events file on ``adapter`` (atomic: a reader sees the old file or the new)."""
        adapter.write(self.events_key, lines)

    def read_events(self, adapter: StorageAdapter) -> bytes:
        """The events file on ``adapter``; raises ObjectNotFound."""
        return read_all(adapter, self.events_key)


@dataclass(frozen=True)
class PackageLayout(_RecordKeys):
    """The keys of one package on a node."""

    package_id: str

    @property
    def prefix(self) -> str:
        """The key prefix under which the package's bag lies (``<package id>/``)."""
        return f"{self.package_id}/"

    def key(self, path: str) -> str:
        """The node key of ``path``, a path inside the bag as the catalog holds it."""
        return self.prefix + path

    def path_of(self, key: str) -> str:
        """The bag path of ``key``, a key under :attr:`prefix`."""
        return key[len(self.prefix):]

    @property
    def record_key(self) -> str:
        return f"{RECORD_PREFIX}{self.package_id}{RECORD_SUFFIX}"

    @property
    def events_key(self) -> str:
        return f"{RECORD_PREFIX}{self.package_id}{EVENTS_SUFFIX}"


@dataclass(frozen=True)
class RepositoryLayout(_RecordKeys):
    """The keys of the repository record on a node: the events that name no package (nodes changed, policy
    reloads, trigger events, key introductions …) and their signed evidence, as a package's are kept beside it
    (:mod:`preservation.node_records`).  Its ``package_id`` is None, as those events' is."""

    package_id: None = None

    @property
    def record_key(self) -> str:
        return f"{REPOSITORY_PREFIX}repository{RECORD_SUFFIX}"

    @property
    def events_key(self) -> str:
        return f"{REPOSITORY_PREFIX}repository{EVENTS_SUFFIX}"


def recorded_package_ids(adapter: StorageAdapter) -> Iterator[str]:
    """The ids of the packages that have a record on ``adapter``."""
    for info in adapter.list(RECORD_PREFIX):
        name = info.key[len(RECORD_PREFIX):]
        if name.endswith(RECORD_SUFFIX) and "/" not in name:
            yield name[: -len(RECORD_SUFFIX)]
