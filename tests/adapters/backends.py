"""Every storage back end the contract suite runs against.

A back end joins the suite by adding one factory here: it takes the pytest
``request`` and ``tmp_path`` and returns a fresh, empty adapter.
"""

from __future__ import annotations

from typing import Callable

from storage_adapters import StorageAdapter, open_adapter


def make_file_adapter(request, tmp_path) -> StorageAdapter:
    return open_adapter((tmp_path / "fsnode").as_uri())


BACKENDS: dict[str, Callable] = {
    "file": make_file_adapter,
}
