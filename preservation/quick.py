"""The quick way into a home for read-only commands: their settings and the catalog, without pydantic or SQLAlchemy.

``preserve status`` and ``preserve node list`` must answer within 0.3 s (issue 22 point 3).  Importing
SQLAlchemy takes 0.2 s, building the settings' and the policy's pydantic models 0.15 s.  So these commands:

- read the catalog through :class:`~preservation.catalog.reader.Reader`: on a SQLite catalog with the stdlib
  driver (the queries SQLAlchemy compiled from their one definition, :mod:`preservation.read_queries`); on any
  other database through a SQLAlchemy session, with the same queries;
- take what they need of the settings and the policy from a digest of the validated values,
  ``<home>/.quick-settings.json``.  The digest is keyed by everything the values come from, as it is when
  looked at: the bytes of ``preserve.yaml`` and of the policy file read through their configured names and the
  real paths those names resolve to now (a symlink repointed is a change), the ``PRESERVE_CATALOG`` and
  ``PRESERVE_POLICY`` environment, and the code that validates them.  When any of it differs (or there is no
  digest) the settings and the policy are validated in full, by :func:`preservation.settings.load_settings` and
  :func:`preservation.policy.load_policy`, the one authority, which refuse a bad file as they do for every
  command, and the digest is written again.  A home that cannot be written, or that has no ``preserve.yaml`` (a
  mistyped ``--home``: nothing is written there), is validated in full each time.

The digest is kept for SQLite catalogs only: their URL holds no password.  For any other catalog no digest is
written (one left there is removed) and the settings are validated in full each time; such a catalog is read
through SQLAlchemy anyway.  The digest is believed only when it is a regular file (not a symlink) owned by this
user with mode 0600; it is written through a new temporary in the home (``O_CREAT|O_EXCL|O_NOFOLLOW``, 0600,
fsync'd) renamed over it.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from preservation.catalog.reader import Reader, open_sqlite
from preservation.home_dir import CONFIG_NAME, exposed, require_catalog_file, resolve_home, sqlite_path

DIGEST_NAME = ".quick-settings.json"
_PACKAGE = Path(__file__).resolve().parent
# the code whose change may change what the digest holds: the settings and policy models, the default policy, the
# catalog URL's display; and the libraries that validate (an upgrade rewrites their files: _LIBRARIES)
_CODE = ("settings.py", "policy.py", "monitoring_settings.py", "notification_settings.py", "home_dir.py", "quick.py",
         "codes.py", "catalog/db.py", "policies/default.yaml")
_LIBRARIES = ("pydantic", "pydantic_core", "yaml", "sqlalchemy")
_FORMAT = 2


@dataclass(frozen=True)
class Monitoring:
    """The ``monitoring:`` values liveness reads (catalog.reads.LivenessLimits)."""

    silent_after_seconds: float
    node_unreachable_alert_seconds: float


@dataclass(frozen=True)
class QuickSettings:
    """What the quick commands need of the settings and the policy, as validated."""

    home: Path
    catalog_url: str  # a SQLite catalog's when read from the digest (no password is ever written there)
    catalog_display: str  # the catalog's URL without its password
    holds_secrets: bool  # node keys or the access secret (the config file must then be private)
    policy_label: str
    audit_interval_days: float
    monitoring: Monitoring

    @property
    def exposed_config(self) -> Path | None:
        """The config file when it holds secrets and others than its owner may read it."""
        return exposed(self.home / CONFIG_NAME, self.holds_secrets)


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:  # missing, unreadable, a directory: not what was validated
        return None


def _key(home: Path) -> str:
    """The digest's key: the config (where its name leads now, its bytes), the environment that overrides it and the
    validating code."""
    h = hashlib.sha256(f"{_FORMAT}\0{home}\0".encode())
    for name in ("PRESERVE_CATALOG", "PRESERVE_POLICY"):
        h.update(f"{name}={os.environ.get(name, '')}\0".encode())
    h.update(json.dumps(_fingerprint(str(home / CONFIG_NAME))).encode())
    for name in _CODE:
        h.update(hashlib.sha256(_read(_PACKAGE / name) or b"").digest())
    for library in _LIBRARIES:  # found, not imported
        spec = importlib.util.find_spec(library)
        origin = Path(spec.origin) if spec is not None and spec.origin else None
        found = origin.stat() if origin is not None and origin.exists() else None
        h.update(f"{library}:{origin}:{found.st_mtime_ns if found else 0}:{found.st_size if found else 0}\0".encode())
    return h.hexdigest()


def _fingerprint(configured: str | None) -> list[str] | None:
    """Where a configured file's name leads now and the sha256 of the bytes read through it (None: no file named).

    Read through the name as configured, never through a path resolved earlier: a symlink repointed since the
    digest was written makes a different fingerprint.
    """
    if configured is None:
        return None
    raw = _read(Path(configured))
    return [os.path.realpath(configured), hashlib.sha256(raw).hexdigest() if raw is not None else "absent"]


def _validated(home: Path, key: str) -> dict[str, Any]:
    """Validate the settings and the policy in full (raises ConfigError, PolicyError) and make their digest."""
    from preservation.catalog.db import display_url
    from preservation.policy import load_policy
    from preservation.settings import load_settings

    settings = load_settings(home)
    policy_file = str(settings.policy) if settings.policy is not None else None  # as configured (not resolved)
    leads_to = os.path.realpath(policy_file) if policy_file is not None else None  # before it is read
    policy = load_policy(settings.policy_source)
    return {
        "key": key, "policy_file": policy_file,
        # the bytes validated (policy.source_digest), so that a change while validating shows at the next look
        "policy": None if policy_file is None else [leads_to, policy.source_digest],
        "catalog_url": settings.catalog_url, "catalog_display": display_url(settings.catalog_url),
        "holds_secrets": bool(settings.node_credentials or settings.access_secret),
        "policy_label": policy.label, "audit_interval_days": policy.audit.interval_days,
        "monitoring": {"silent_after_seconds": settings.monitoring.silent_after_seconds,
                       "node_unreachable_alert_seconds": settings.monitoring.node_unreachable_alert_seconds},
    }


def _current(digest: dict[str, Any], key: str) -> bool:
    """Whether the digest was made from what the files and the environment hold now, for a SQLite catalog."""
    return (digest.get("key") == key and isinstance(digest.get("catalog_url"), str)
            and sqlite_path(digest["catalog_url"]) is not None
            and digest.get("policy") == _fingerprint(digest.get("policy_file")))


def _load(path: Path) -> dict[str, Any] | None:
    """The digest when it is this user's alone: a regular file, not a symlink, owned by us, mode 0600; else None."""
    try:  # O_NONBLOCK: a FIFO put there is opened (and then refused) without waiting for a writer
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        found = os.fstat(fd)
        if (not stat.S_ISREG(found.st_mode) or found.st_uid != os.geteuid()
                or stat.S_IMODE(found.st_mode) != 0o600):
            return None
        raw = b"".join(iter(lambda: os.read(fd, 1 << 16), b""))
        digest = json.loads(raw)
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)
    return digest if isinstance(digest, dict) else None


def _partial(path: Path) -> Path:
    """A new name beside the digest for the temporary it is written to."""
    return path.with_name(f"{path.name}.{os.getpid()}.{os.urandom(8).hex()}.partial")


def _write(path: Path, digest: dict[str, Any]) -> None:
    """Replace the digest file whole (readers see the old or the new one), mode 0600; a failure is no error.

    The temporary is a new file (O_EXCL: nothing already there, not a symlink's target, is written), private
    whatever the umask, on stable storage before it is renamed over the digest.
    """
    if not (path.parent / CONFIG_NAME).is_file():
        return  # only a home `preserve init` made gets a digest: a mistyped --home is left as it was
    partial = _partial(path)
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(fd, 0o600)
            f.write(json.dumps(digest).encode())
            f.flush()
            os.fsync(fd)
        os.replace(partial, path)
    except OSError:
        with contextlib.suppress(OSError):
            partial.unlink()


def _settings(home: Path, digest: dict[str, Any]) -> QuickSettings:
    return QuickSettings(home=home, catalog_url=digest["catalog_url"], catalog_display=digest["catalog_display"],
                         holds_secrets=digest["holds_secrets"], policy_label=digest["policy_label"],
                         audit_interval_days=digest["audit_interval_days"],
                         monitoring=Monitoring(**digest["monitoring"]))


def quick_settings(home: str | os.PathLike | None) -> QuickSettings:
    """The settings the quick commands need, from the digest when it is current, else validated in full.

    Raises ConfigError or PolicyError for a bad settings or policy file, as loading them does.
    """
    home_path = resolve_home(home)
    key = _key(home_path)
    path = home_path / DIGEST_NAME
    digest = _load(path)
    try:
        if digest is not None and _current(digest, key):
            return _settings(home_path, digest)
    except (KeyError, TypeError, ValueError):
        pass  # not as this code writes it: validated in full below
    digest = _validated(home_path, key)
    if sqlite_path(digest["catalog_url"]) is None:  # its URL may hold a password: never on disk here
        with contextlib.suppress(OSError):
            path.unlink()  # one an older version wrote
    elif _key(home_path) == key and _current(digest, key):  # nothing changed while validating
        _write(path, digest)
    return _settings(home_path, digest)


@contextlib.contextmanager
def read_catalog(settings: QuickSettings) -> Iterator[Reader]:
    """A reader on the home's catalog, its schema checked; nothing is created.

    A SQLite catalog is opened with the stdlib driver; another database through a SQLAlchemy session.  Raises
    CatalogNotInitialised (no such catalog: a mistyped --home), CatalogOutdated, CatalogTooNew, CatalogError.
    """
    require_catalog_file(settings.catalog_url, settings.home)
    path = sqlite_path(settings.catalog_url)
    if path is not None:
        with open_sqlite(path, settings.catalog_display) as reader:
            yield reader
        return
    from preservation.catalog.db import Catalog

    catalog = Catalog(settings.catalog_url)
    try:
        catalog.check_schema()
        with catalog.session() as s:
            yield Reader.of_session(s)
    finally:
        catalog.dispose()
