"""Optional abilities of a storage adapter, found by name, however the adapter is wrapped.

An adapter declares what it can do beyond the core interface; each ability
names the object that provides it, like rclone's ``Features`` and restic's
``AsBackend``.  A wrapper (retries, say) hands on its inner adapter's
features, so a service asks the adapter it was given, never its class:

    local = adapter.features.local          # None unless the files are on this host
    if local is not None:
        local.copy_local(source_local, source_key, key, size=size, check=check)

``node_digest``       digests are computed where the data lives (only digests
                      cross the network)
``server_side_copy``  ``copy_from`` copies inside the store; the provider is the
                      store a copy reads from
``object_lock``       objects are written under WORM retention (the node asks for it
                      and its store allows it)
``checksums``         ``stat`` returns checksums stored by the server
``local_files``       the objects are files on this host: the provider is a
                      :class:`LocalStore` (checked paths, kernel copies, the
                      one-pass fan-out, and the fast local ``inventory`` and
                      ``verify_many``)
``flush``             writes are made durable together, not one by one: the
                      provider's ``flush()`` syncs the completed ones (call
                      :func:`flush`, a no-op where writes are durable at once)
``traffic``           the provider counts the bytes it moves over a network
                      (call :func:`traffic`: 0 for storage on this host)
``witness``           the node co-signs checkpoints of the coordinator's event log: the
                      provider's ``witness(document)`` sends one and returns the node's
                      answer, ``witness_key()`` its public key (docs/evidence.md)
``temporary_files``   an interrupted write can leave a temporary file or upload
                      behind: the provider's ``sweep_temporary(older_than_seconds)``
                      removes old ones (call :func:`sweep_temporary`)
``free_space``        the store reports the free space where it writes: the provider's
                      ``free_space()`` gives ``(free, total)`` bytes, or None when it
                      knows none at the moment (call :func:`free_space`: None for a store
                      without the ability, such as S3, which has no such figure)

``local_files`` and ``witness`` are for services to call directly, and ``flush``, ``traffic``,
``temporary_files`` and ``free_space`` through
the functions here, which give the neutral answer when an adapter lacks the
ability.  The others are facts to ask about (``FEATURE_NODE_DIGEST in
adapter.features``) while the calls go to the adapter itself, so that its
wrappers (retries) still see them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping, Protocol, Sequence, TypeVar

if TYPE_CHECKING:
    from .base import StorageAdapter, VerifyBatch
    from .fanout import FanOut
    from .filesystem import DraftTree, PreparedCopy

T = TypeVar("T")

FEATURE_NODE_DIGEST = "node_digest"
FEATURE_SERVER_SIDE_COPY = "server_side_copy"
FEATURE_OBJECT_LOCK = "object_lock"
FEATURE_CHECKSUMS = "checksums"
FEATURE_LOCAL_FILES = "local_files"
FEATURE_FLUSH = "flush"
FEATURE_TRAFFIC = "traffic"
FEATURE_TEMPORARY_FILES = "temporary_files"
FEATURE_WITNESS = "witness"
FEATURE_FREE_SPACE = "free_space"


class LocalStore(Protocol):
    """What the ``local_files`` feature provides: a store whose objects are files here."""

    root: str
    location: str

    def local_file(self, key: str) -> str:
        """The checked path of ``key``'s file (open it without following a link: ``localfiles.no_follow``)."""

    def copy_local(
        self, source: "LocalStore", source_key: str, key: str, *, size: int, check: Callable[[str], T]
    ) -> T:
        """Copy a file of another local store in the kernel; ``check`` re-reads it before it is visible."""

    def prepare_copy(self, source: "LocalStore", source_key: str, key: str, *, size: int) -> "PreparedCopy":
        """Copy a file of another local store into a temporary file, visible only on commit."""

    def fan_out(self, algorithms: Sequence[str], *, drop_source: bool = False) -> "FanOut":
        """A one-pass copier from this store to several local stores (see :mod:`storage_adapters.fanout`)."""

    def draft(self, prefix: str) -> "DraftTree":
        """A new tree of objects under ``prefix``, written where a fan-out puts it and visible only
        once published whole, by one rename (see :class:`storage_adapters.filesystem.DraftTree`)."""

    def inventory_local(self, prefix: str) -> Iterator[tuple[str, int | None]]:
        """What ``inventory`` gives, by names only (the adapter's ``inventory`` calls this)."""

    def verify_local(
        self, prefix: str, rows: Iterable[tuple[str, int, tuple[str, ...]]], algorithms: tuple[str, ...], workers: int
    ) -> Iterator["VerifyBatch"]:
        """What ``verify_many`` gives, checked here (the adapter's ``verify_many`` calls this)."""


class Features:
    """The optional abilities of one adapter: ``name in features``, and who provides each.

    Immutable.  A wrapper hands on its inner adapter's; one that changed what
    an ability means would hand on a copy without it.
    """

    __slots__ = ("_providers",)

    def __init__(self, providers: Mapping[str, Any] | None = None) -> None:
        self._providers = dict(providers or {})

    @classmethod
    def of(cls, provider: Any, names: Iterable[str]) -> "Features":
        """Every ability in ``names``, each provided by ``provider`` itself."""
        return cls(dict.fromkeys(names, provider))

    def __contains__(self, name: object) -> bool:
        return name in self._providers

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._providers))

    def __repr__(self) -> str:
        return f"Features({', '.join(self)})"

    def provider(self, name: str) -> Any | None:
        """The object that provides ability ``name``; None when the adapter lacks it."""
        return self._providers.get(name)

    @property
    def local(self) -> LocalStore | None:
        """The store on this host behind the adapter, for local paths and kernel copies; None if remote."""
        return self._providers.get(FEATURE_LOCAL_FILES)


def flush(adapter: "StorageAdapter") -> None:
    """Make the completed writes of ``adapter`` durable (before copies are verified)."""
    provider = adapter.features.provider(FEATURE_FLUSH)
    if provider is not None:
        provider.flush()


def traffic(adapter: "StorageAdapter") -> int:
    """Bytes ``adapter`` has moved over a network so far (0 for storage on this host)."""
    provider = adapter.features.provider(FEATURE_TRAFFIC)
    return 0 if provider is None else provider.traffic()


def sweep_temporary(adapter: "StorageAdapter", older_than_seconds: float = 3600.0) -> int:
    """Remove what interrupted writes to ``adapter`` left, older than the given age; returns how many."""
    provider = adapter.features.provider(FEATURE_TEMPORARY_FILES)
    return 0 if provider is None else provider.sweep_temporary(older_than_seconds)


def free_space(adapter: "StorageAdapter") -> tuple[int, int] | None:
    """``(free, total)`` bytes where ``adapter`` writes, as its store reports them; None when it reports none.

    Raises the adapter's errors (StorageUnavailable when a remote store does not answer)."""
    provider = adapter.features.provider(FEATURE_FREE_SPACE)
    return None if provider is None else provider.free_space()
