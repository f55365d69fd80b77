"""The repository: settings, catalog, policy and node storage, opened together.

Library functions take a :class:`Repository`; the CLI, workers and HTTP
services each open one and hand it down.
"""

from __future__ import annotations

import os
import threading
from functools import cached_property
from pathlib import Path

from preservation.catalog.db import Catalog
from preservation.catalog.models import Node
from preservation.policy import Policy, load_policy
from preservation.errors import ConfigError
from preservation.settings import CONFIG_NAME, Settings, load_settings
from storage_adapters import StorageAdapter, adapter_class


class Repository:
    def __init__(self, settings: Settings, *, check_schema: bool = True) -> None:
        self.settings = settings
        self.catalog = Catalog(settings.catalog_url)
        if check_schema:
            self.catalog.check_schema()
        self._adapters: dict[tuple[str, str], StorageAdapter] = {}
        self._lock = threading.Lock()

    @classmethod
    def open(cls, home: str | Path | None = None, *, check_schema: bool = True) -> "Repository":
        return cls(load_settings(home), check_schema=check_schema)

    @cached_property
    def policy(self) -> Policy:
        return load_policy(self.settings.policy_source)

    def use_policy(self, policy: Policy) -> Policy:
        """Put a newly loaded policy in force (preservation.runtime.policy_reload); returns the old one."""
        old = self.policy
        self.__dict__["policy"] = policy  # what the cached property reads from now on (one atomic store)
        return old

    @property
    def staging_dir(self) -> Path:
        path = Path(self.settings.staging_dir)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def adapter_options(self, node_name: str, uri: str) -> dict:
        creds = self.settings.node_credentials.get(node_name)
        scheme = uri.split(":", 1)[0].lower()
        if scheme.startswith("node+") and not creds and not os.environ.get("PRESERVE_NODE_KEY"):
            raise ConfigError(f"node {node_name}: no key for its node agent; add one under node_credentials in "
                              f"{self.settings.home / CONFIG_NAME} ({node_name}: {{key_id: coordinator, key: …}})")
        if creds and scheme.startswith("node+"):
            options = {"key_id": creds.key_id, "key": creds.key}
            if creds.ca_file:
                options["ca_file"] = creds.ca_file
            return options
        return {}

    def adapter(self, node: Node) -> StorageAdapter:
        """The (cached, thread-safe to share) adapter for a node's storage."""
        cache_key = (node.name, node.uri)
        with self._lock:
            found = self._adapters.get(cache_key)
            if found is None:
                found = adapter_class(node.uri)(node.uri, **self.adapter_options(node.name, node.uri))
                self._adapters[cache_key] = found
            return found

    def close(self) -> None:
        with self._lock:
            for adapter in self._adapters.values():
                adapter.close()
            self._adapters.clear()
        self.catalog.dispose()

    def __enter__(self) -> "Repository":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
