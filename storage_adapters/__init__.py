"""Storage back ends for preservation nodes, behind one small interface.

``open_adapter(uri)`` picks the back end from the URI scheme.  Back ends are
imported lazily so that, say, boto3 is loaded only for ``s3://`` nodes.

An adapter's methods are the interface (:class:`StorageAdapter`); the
functions here are conveniences over it (``exists``, ``read_all``) and the
calls of optional abilities that give a neutral answer where an adapter
lacks one (``flush``, ``traffic``, ``sweep_temporary``).
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from preservation.errors import UnsupportedURI

from .base import DigestResult, ObjectInfo, StorageAdapter, WriteResult, check_key, exists, read_all
from .features import Features, LocalStore, flush, sweep_temporary, traffic

BACK_ENDS_BY_SCHEME: dict[str, str] = {
    "file": "storage_adapters.filesystem:FilesystemAdapter",
    "s3": "storage_adapters.s3:S3Adapter",
    "node+http": "storage_adapters.node:NodeAdapter",
    "node+https": "storage_adapters.node:NodeAdapter",
}


def adapter_class(uri: str) -> type[StorageAdapter]:
    scheme = urlsplit(uri).scheme.lower()
    target = BACK_ENDS_BY_SCHEME.get(scheme)
    if target is None:
        raise UnsupportedURI(f"known schemes are {', '.join(sorted(BACK_ENDS_BY_SCHEME))}", uri=uri)
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise UnsupportedURI(f"the {scheme} back end is not installed here ({e})", uri=uri) from e
    return getattr(module, class_name)


def open_adapter(uri: str, **options: Any) -> StorageAdapter:
    """Open the storage at ``uri``; raises UnsupportedURI or a StorageError."""
    return adapter_class(uri)(uri, **options)


def open_local(path: str | os.PathLike[str], *, create: bool = True, fsync: bool = True) -> StorageAdapter:
    """A store over the local directory ``path`` (a staging bag, a restore target): its
    ``features.local`` gives kernel copies and checked paths.  Without ``create`` a missing
    directory raises StorageUnavailable; without ``fsync`` writes are not forced to disk."""
    return open_adapter(Path(os.path.abspath(path)).as_uri(), create=create, fsync=fsync)


__all__ = [
    "DigestResult", "Features", "LocalStore", "ObjectInfo", "StorageAdapter", "WriteResult", "adapter_class",
    "check_key", "exists", "flush", "open_adapter", "open_local", "read_all", "sweep_temporary", "traffic",
]
