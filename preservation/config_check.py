"""`preserve config check`: is this home ready to run?  Every check is made, each reported ok, warn or fail.

* the config file: parsed (the settings' own validation), not writable by others, and not readable by
  others when it holds secrets (:func:`preservation.home.exposed_config`);
* the policy it names: loads and validates;
* key files (the checkpoint signing key): present and private (no group or other permission bits);
* free space where this host writes (the staging area, a SQLite catalog's directory);
* the catalog: reachable, its schema at the migrations' head (nothing is created on a wrong home);
* every node not offline: its credentials (``node_credentials`` for a node agent), reachable (the
  scheduler's probe, :func:`preservation.liveness.probe_node`), writable (a small object written, read
  back and deleted under ``.preserve/tmp/``), and free space against what it still has to receive: measured
  here for a storage on this host, asked of a node agent (its health answer), and an ``info`` row for a store
  that reports none (S3).

Each problem carries a ``CFG`` finding code (docs/operations.md).  Nothing here changes the catalog.
"""

from __future__ import annotations

import os
import shutil
import stat
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from preservation import codes, liveness
from preservation.catalog.db import Catalog
from preservation.catalog.models import (
    NODE_OFFLINE, REPLICA_COPYING, REPLICA_PENDING, REPLICA_REPAIRING, Node, Replica,
)
from preservation.errors import CatalogError, PreservationError
from preservation.home import exposed_config, sqlite_path
from preservation.layout import SCRATCH_PREFIX
from preservation.policy import load_policy
from preservation.repository import Repository
from preservation.settings import CONFIG_NAME, Settings, load_settings
from preservation.units import human_bytes
from storage_adapters.base import read_all
from storage_adapters.features import free_space

OK, INFO, WARN, FAIL = "ok", "info", "warn", "fail"
PROBE_PREFIX = SCRATCH_PREFIX + "config-check-"
PROBE_BYTES = b"preserve config check: safe to delete\n"
DEFAULT_MIN_FREE = 1024**3  # bytes every place that is written to should keep free, beyond what it must receive
TO_BE_WRITTEN = (REPLICA_PENDING, REPLICA_COPYING, REPLICA_REPAIRING)


@dataclass
class Check:
    check: str
    status: str
    message: str
    code: str | None = None
    subject: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.check, "subject": self.subject, "status": self.status, "code": self.code,
                "message": self.message}


@dataclass
class ConfigReport:
    home: str
    checks: list[Check] = field(default_factory=list)

    def add(self, check: str, status: str, message: str, code: str | None = None, subject: str = "") -> Check:
        found = Check(check, status, message, code if status != OK else None, subject)
        self.checks.append(found)
        return found

    @property
    def ok(self) -> bool:
        return all(c.status != FAIL for c in self.checks)

    def counts(self) -> dict[str, int]:
        return {s: sum(1 for c in self.checks if c.status == s) for s in (OK, INFO, WARN, FAIL)}


def check_config(home: str | os.PathLike | None, *, min_free_bytes: int = DEFAULT_MIN_FREE,
                 probe_nodes: bool = True) -> ConfigReport:
    """Run every check that can run; a check that cannot (no settings, no catalog) is not guessed at."""
    report = ConfigReport(home=str(home or ""))
    try:
        settings = load_settings(home)
    except PreservationError as e:
        report.add("config file", FAIL, f"{e.code} {e.message}", codes.CONFIG_UNREADABLE)
        return report
    report.home = str(settings.home)
    if not settings.home.is_dir():
        report.add("home", FAIL, f"{settings.home} is not a directory (is --home right?)", codes.CONFIG_UNREADABLE,
                   str(settings.home))
        return report
    _config_file(report, settings)
    _policy(report, settings)
    _keys(report, settings)
    _local_space(report, settings, min_free_bytes)
    repo = _catalog(report, settings)
    if repo is not None:
        try:
            _nodes(report, repo, min_free_bytes, probe_nodes)
        finally:
            repo.close()
    return report


def _config_file(report: ConfigReport, settings: Settings) -> None:
    config = settings.home / CONFIG_NAME
    try:
        mode = config.stat().st_mode
    except FileNotFoundError:
        report.add("config file", WARN, f"no {CONFIG_NAME} in {settings.home}: every setting is its default",
                   codes.CONFIG_ABSENT, str(config))
        return
    except OSError as e:
        report.add("config file", FAIL, f"cannot read it ({e.strerror})", codes.CONFIG_UNREADABLE, str(config))
        return
    report.add("config file", OK, "parsed; every setting valid", subject=str(config))
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        report.add("config permissions", FAIL, f"others than its owner may change it (mode {mode & 0o777:o}): "
                   f"chmod go-w {config}", codes.CONFIG_WRITABLE, str(config))
    elif exposed_config(settings) is not None:
        report.add("config permissions", WARN, f"it holds node keys or the access secret and others than its owner "
                   f"may read it (mode {mode & 0o777:o}): chmod 600 {config}", codes.CONFIG_READABLE, str(config))
    else:
        report.add("config permissions", OK, f"mode {mode & 0o777:o}", subject=str(config))


def _policy(report: ConfigReport, settings: Settings) -> None:
    source = str(settings.policy_source)
    try:
        policy = load_policy(settings.policy_source)
    except PreservationError as e:
        report.add("policy", FAIL, f"{e.code} {e.message}", codes.CONFIG_POLICY, source)
        return
    report.add("policy", OK, f"{policy.label} (sha256 {policy.source_digest[:12]})", subject=source)


def _keys(report: ConfigReport, settings: Settings) -> None:
    key = settings.checkpoints.key
    if key is None:
        report.add("checkpoint key", WARN, "no checkpoints.key: the event log is not signed (preserve init makes one)",
                   codes.KEY_NOT_CONFIGURED)
        return
    try:
        mode = key.stat().st_mode
    except OSError as e:
        report.add("checkpoint key", FAIL, f"cannot read it ({e.strerror})", codes.KEY_MISSING, str(key))
        return
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        report.add("checkpoint key", FAIL, f"others than its owner may read or change it (mode {mode & 0o777:o}): "
                   f"chmod 600 {key}", codes.KEY_EXPOSED, str(key))
    else:
        report.add("checkpoint key", OK, f"mode {mode & 0o777:o}", subject=str(key))


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _space(report: ConfigReport, check: str, path: Path, need: int, min_free: int) -> None:
    """Free space on this host at ``path``, judged by :func:`_judge_space`."""
    try:
        free = shutil.disk_usage(_nearest_existing(path)).free
    except OSError as e:
        report.add(check, FAIL, f"cannot measure free space ({e.strerror})", codes.SPACE_SHORT, str(path))
        return
    _judge_space(report, check, str(path), free, need, min_free)


def _judge_space(report: ConfigReport, check: str, subject: str, free: int, need: int, min_free: int,
                 where: str = "") -> None:
    """fail below ``need`` + ``min_free`` free, warn below twice ``min_free`` beyond ``need``."""
    wanted = f"{human_bytes(need)} to receive + {human_bytes(min_free)} margin" if need else \
        f"{human_bytes(min_free)} margin"
    if free < need + min_free:
        report.add(check, FAIL, f"{human_bytes(free)} free{where}, below {wanted}", codes.SPACE_SHORT, subject)
    elif free < need + 2 * min_free:
        report.add(check, WARN, f"{human_bytes(free)} free{where}, close to {wanted}", codes.SPACE_LOW, subject)
    else:
        report.add(check, OK, f"{human_bytes(free)} free{where} ({wanted})", subject=subject)


def _local_space(report: ConfigReport, settings: Settings, min_free: int) -> None:
    _space(report, "free space: staging", Path(settings.staging_dir), 0, min_free)
    catalog_file = sqlite_path(settings.catalog_url)
    if catalog_file is not None:
        _space(report, "free space: catalog", catalog_file.parent, 0, min_free)


def _catalog(report: ConfigReport, settings: Settings) -> Repository | None:
    shown = settings.catalog_url
    catalog_file = sqlite_path(settings.catalog_url)
    if catalog_file is not None and not catalog_file.is_file():
        report.add("catalog", FAIL, f"no catalog at {catalog_file}: run `preserve init` (or is --home wrong?)",
                   codes.CATALOG_UNREACHABLE, str(catalog_file))
        return None
    catalog = None
    try:
        catalog = Catalog(settings.catalog_url)
        shown = catalog.display_url
        catalog.current_revision()
    except (PreservationError, SQLAlchemyError) as e:
        report.add("catalog", FAIL, f"cannot reach it: {e}", codes.CATALOG_UNREACHABLE, shown)
        if catalog is not None:
            catalog.dispose()
        return None
    report.add("catalog", OK, "reachable", subject=shown)
    try:
        catalog.check_schema()
    except CatalogError as e:
        report.add("catalog schema", FAIL, f"{e.code} {e.message}", codes.CATALOG_NOT_AT_HEAD, shown)
        catalog.dispose()
        return None
    report.add("catalog schema", OK, f"at the migrations' head ({catalog.current_revision()})", subject=shown)
    catalog.dispose()
    return Repository(settings, check_schema=False)


def _nodes(report: ConfigReport, repo: Repository, min_free: int, probe: bool) -> None:
    with repo.catalog.session() as s:
        nodes = s.scalars(select(Node).order_by(Node.name)).all()
        used = dict(s.execute(select(Replica.node_id, func.coalesce(func.sum(Replica.bytes), 0))
                              .group_by(Replica.node_id)).all())
        copies = dict(s.execute(select(Replica.node_id, func.count()).group_by(Replica.node_id)).all())
        # what placement already promised each node: its copies not yet written
        incoming = dict(s.execute(select(Replica.node_id, func.coalesce(func.sum(Replica.bytes), 0))
                                  .where(Replica.state.in_(TO_BE_WRITTEN)).group_by(Replica.node_id)).all())
        s.expunge_all()
    if not nodes:
        report.add("nodes", WARN, "no nodes: add them with `preserve node add`", codes.NODE_NONE)
    for node in nodes:
        if node.status == NODE_OFFLINE:
            report.add("node", OK, "offline: not checked", subject=node.name)
            continue
        try:
            repo.adapter_options(node.name, node.uri)
        except PreservationError as e:
            report.add("node credentials", FAIL, f"{e.code} {e.message}", codes.NODE_NO_CREDENTIALS, node.name)
            continue
        report.add("node credentials", OK, "present" if node.uri.startswith("node+") else "none needed",
                   subject=node.name)
        if not probe:
            continue
        problem = liveness.probe_node(repo, node, int(copies.get(node.id, 0)))
        if problem is not None:
            report.add("node reachable", FAIL, problem, codes.NODE_NOT_ANSWERING, node.name)
            continue
        report.add("node reachable", OK, "answers", subject=node.name)
        _node_writable(report, repo, node)
        _node_space(report, repo, node, int(used.get(node.id, 0)), int(incoming.get(node.id, 0)), min_free)


def _node_writable(report: ConfigReport, repo: Repository, node: Node) -> None:
    key = PROBE_PREFIX + uuid.uuid4().hex
    adapter = repo.adapter(node)
    written = False
    try:
        adapter.write(key, PROBE_BYTES, size=len(PROBE_BYTES))
        written = True
        if read_all(adapter, key) != PROBE_BYTES:
            raise OSError("the probe read back differs from what was written")
        adapter.delete(key)
        written = False
    except (PreservationError, OSError) as e:
        report.add("node writable", FAIL, f"a probe write, read and delete under .preserve/tmp/ failed: {e}",
                   codes.NODE_NOT_WRITABLE, node.name)
        return
    finally:
        if written:
            try:
                adapter.delete(key)
            except (PreservationError, OSError):
                pass  # reported above; it lies in the scratch area (.preserve/tmp/)
    report.add("node writable", OK, "probe written, read back and deleted", subject=node.name)


def _node_space(report: ConfigReport, repo: Repository, node: Node, used: int, incoming: int, min_free: int) -> None:
    if node.capacity_bytes is not None and used + min(min_free, node.capacity_bytes // 10) > node.capacity_bytes:
        report.add("node capacity", FAIL, f"{human_bytes(used)} of copies against a capacity of "
                   f"{human_bytes(node.capacity_bytes)}", codes.SPACE_SHORT, node.name)
    adapter = repo.adapter(node)
    local = adapter.features.local
    if local is not None:
        _space(report, "node free space", Path(local.root), incoming, min_free)
        report.checks[-1].subject = node.name
        return
    try:
        space = free_space(adapter)  # a node agent's disk, from its health answer
    except PreservationError as e:
        report.add("node free space", FAIL, f"the node did not say: {e.code} {e}", codes.NODE_NOT_ANSWERING,
                   node.name)
        return
    if space is None:  # S3 has no such figure (a bucket's quota, where a store has one, is not in the API)
        report.add("node free space", INFO, "not reported by the backend"
                   + (f"; capacity {human_bytes(node.capacity_bytes)}, {human_bytes(used)} used"
                      if node.capacity_bytes is not None else
                      "; the catalog sets it no capacity either, so nothing bounds what is placed there"),
                   subject=node.name)
        return
    free, total = space
    _judge_space(report, "node free space", node.name, free, incoming, min_free,
                 f" of {human_bytes(total)} (reported by the node)")
