"""Crash anywhere: SIGKILL ingest, replication, audit and repair at 30 random instants each.

Each operation runs as a real `preserve` command in its own process (forked
from tests.faults.forkserver, so it starts working at once) and is killed
after a delay drawn from a seeded RNG over the operation's measured duration.
Right after each kill the design invariants are checked against the bytes on
the nodes; then the work is resumed the way a restarted system would (re-run
the command, the scheduler's catch-up tasks, `preserve worker --once`) and
everything must end preserved, exact and tidy.  Every operation is crashed
with its catalog on SQLite and again on PostgreSQL (a database of its own,
recreated from a template before each run), where the killed process's open
transaction and locks die with its connection.
"""

from __future__ import annotations

import random
import shutil
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
from sqlalchemy import select

from preservation.audit import audit
from preservation.catalog.models import PACKAGE_PRESERVED, REPLICA_VERIFIED, Package, PackageFile, Replica, utcnow
from preservation.ingest import ingest
from preservation.repository import Repository
from storage_adapters.filesystem import TEMP_DIR

from ..corruption import add_file, delete, flip_bit, truncate
from ..fixtures import make_repo
from . import summary
from .disk import SLOW_DISK_ENV
from .invariants import Damage, check_catalog_against_nodes, check_settled, tree
from .work import SavedHome, make_corpus, payload_digests, resume_work

KILLS = 30
MIN_LANDED = 20  # kills that must hit the operation while it works (not after it finished, on a loaded machine)
CLEAN_RUNS = 3
CORPUS_FILES = 100


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("crash-corpus") / "delivery", CORPUS_FILES, seed=7)


# --- the four operations --------------------------------------------------------------


def _registered(home: Path, corpus: Path, catalog_url: str | None) -> None:
    repo = make_repo(home, catalog_url)
    try:
        ingest(repo, corpus, "journals", replicate=False)
    finally:
        repo.close()


def _damaged(home: Path, corpus: Path, catalog_url: str | None) -> Damage:
    """A preserved package with damage on two of its three copies, not yet audited."""
    repo = make_repo(home, catalog_url)
    try:
        package_id = ingest(repo, corpus, "journals")["package_id"]
        with repo.catalog.session() as s:
            paths = sorted(f.path for f in s.scalars(select(PackageFile).where(PackageFile.package_id == package_id))
                           if f.size > 0 and f.path.startswith("data/"))
    finally:
        repo.close()
    rng = random.Random(11)
    damage = Damage(since=utcnow())
    rotted = rng.sample(paths, 25)
    for path in rotted:
        flip_bit(home / "nodes" / "uni-pku" / package_id / path, rng=rng)
        damage.changed.add(("uni-pku", package_id, path))
    lost = rng.sample(paths, 20)
    for path in lost[:15]:
        delete(home / "nodes" / "cas-nsl" / package_id / path)
        damage.missing.add(("cas-nsl", package_id, path))
    for path in lost[15:]:
        truncate(home / "nodes" / "cas-nsl" / package_id / path, keep=3)
        damage.changed.add(("cas-nsl", package_id, path))
    for extra in ("data/intruder.bin", "stray-tag.txt"):
        add_file(home / "nodes" / "cas-nsl" / package_id / extra)
        damage.extra.add(("cas-nsl", package_id, extra))
    damage.since = utcnow()
    return damage


def _audited(home: Path, corpus: Path, catalog_url: str | None) -> Damage:
    """The damaged package after an audit: two copies corrupt, their repairs queued."""
    damage = _damaged(home, corpus, catalog_url)
    with Repository.open(home) as repo:
        report = audit(repo)
        assert len(report.failed) == 2
    return damage


@dataclass
class Operation:
    name: str
    prepare: Callable[[Path, Path, str | None], Damage | None]  # (home, corpus, catalog URL or None)
    command: Callable[[Path], list[str]]
    exit_code: int
    incomplete: Callable[[Repository, Damage | None], bool]
    resume: Callable[[Repository, Path], None]
    open_delay: float = 0.0  # a slower disk under the node roots, so that a short operation can be hit inside


def _replicas(repo: Repository) -> list[Replica]:
    with repo.catalog.session() as s:
        found = list(s.scalars(select(Replica)))
        s.expunge_all()
        return found


def _not_all_verified(repo: Repository, _damage) -> bool:
    replicas = _replicas(repo)
    return not replicas or any(r.state != REPLICA_VERIFIED for r in replicas)


def _not_one_preserved(repo: Repository, _damage) -> bool:
    with repo.catalog.session() as s:
        states = list(s.scalars(select(Package.state)))
    return states != [PACKAGE_PRESERVED] or _not_all_verified(repo, _damage)


def _not_all_audited(repo: Repository, damage: Damage) -> bool:
    return any(r.last_audit_at is None or r.last_audit_at <= damage.since for r in _replicas(repo))


def _resume_ingest(repo: Repository, corpus: Path) -> None:
    resume_work(repo)
    with repo.catalog.session() as s:
        registered = s.scalar(select(Package.id))
    if registered is None:  # killed before registration: the operator runs the command again
        ingest(repo, corpus, "journals")


def _resume_audit(repo: Repository, corpus: Path) -> None:
    audit(repo)  # the interrupted command, run again
    resume_work(repo)


OPERATIONS = {
    op.name: op for op in (
        Operation("ingest", lambda home, corpus, url: make_repo(home, url).close(),
                  lambda corpus: ["ingest", str(corpus), "--collection", "journals", "--inline", "-q"], 0,
                  _not_one_preserved, _resume_ingest),
        Operation("replication", _registered, lambda corpus: ["worker", "--once", "--kind", "replicate"], 0,
                  _not_all_verified, lambda repo, corpus: resume_work(repo)),
        Operation("audit", _damaged, lambda corpus: ["audit"], 1, _not_all_audited, _resume_audit,
                  open_delay=0.003),
        Operation("repair", _audited, lambda corpus: ["worker", "--once", "--kind", "repair"], 0,
                  _not_all_verified, lambda repo, corpus: resume_work(repo), open_delay=0.002),
    )
}


@dataclass
class Aftermath:
    violations: list[str]
    unfinished: bool
    verified_copies: int  # copies the catalog called verified right after the kill
    temporary_files: int  # interrupted writes left in .preserve-tmp/ on the nodes


def _verified_copies(repo: Repository) -> set[tuple[str, int]]:
    return {(r.package_id, r.node_id) for r in _replicas(repo) if r.state == REPLICA_VERIFIED}


def _after_crash(home: Path, corpus: Path, op: Operation, damage: Damage | None,
                 verified_before: set[tuple[str, int]]) -> Aftermath:
    """What a kill left behind (checked at once), then the same home after the work was resumed."""
    with Repository.open(home) as repo:
        violations = [f"after the kill: {v}" for v in check_catalog_against_nodes(repo, damage)]
        held = {(r.package_id, r.node_id) for r in _replicas(repo)}
        violations += [f"after the kill: verified copy {c} is gone from the catalog" for c in verified_before - held]
        unfinished = op.incomplete(repo, damage)
        verified = sum(r.state == REPLICA_VERIFIED for r in _replicas(repo))
        temporary = sum(len(tree(root / TEMP_DIR)) for root in (home / "nodes").iterdir())
        op.resume(repo, corpus)
        violations += [f"after resuming: {v}" for v in check_settled(repo, staging=home / "staging")]
        violations += [f"after resuming: copy {c} verified before is not verified"
                       for c in verified_before - _verified_copies(repo)]
        if op.name == "ingest":
            violations += _one_package_holding(repo, corpus)
    return Aftermath(violations, unfinished, verified, temporary)


def _one_package_holding(repo: Repository, corpus: Path) -> list[str]:
    with repo.catalog.session() as s:
        ids = list(s.scalars(select(Package.id)))
        if len(ids) != 1:
            return [f"{len(ids)} packages registered for one delivery"]
        rows = {f.path: f.sha256 for f in s.scalars(select(PackageFile).where(PackageFile.package_id == ids[0],
                                                                              PackageFile.is_tag.is_(False)))}
    return [] if rows == payload_digests(corpus) else ["the package's payload is not the delivery"]


@pytest.fixture(params=["sqlite", "postgresql"])
def saved_home(request):
    """How the crash test saves and restores its home: the catalog on SQLite in it, or on PostgreSQL."""
    saved = SavedHome(request.param)
    try:
        yield saved
    finally:
        saved.close()


@pytest.mark.slow
@pytest.mark.parametrize("name", list(OPERATIONS))
def test_kill_anywhere_then_resume(name, forkserver, corpus, saved_home, tmp_path):
    op = OPERATIONS[name]
    home, saved = tmp_path / "home", tmp_path / "saved"
    damage = op.prepare(home, corpus, saved_home.catalog_url)
    with Repository.open(home) as repo:
        verified_before = _verified_copies(repo)
    saved_home.save(home, saved)
    argv = ["--home", str(home), *op.command(corpus)]
    env = {SLOW_DISK_ENV: f"{home / 'nodes'}:{op.open_delay}"} if op.open_delay else {}

    timings = []
    for i in range(CLEAN_RUNS):  # the operation's duration, measured as the killed runs will see it
        saved_home.restore(saved, home)
        clean = forkserver.run(argv, tmp_path / f"clean-{i}.log", env=env)
        assert clean.code == op.exit_code, (tmp_path / f"clean-{i}.log").read_text()
        timings.append(clean.seconds)
    clean_after = _after_crash(home, corpus, op, damage, verified_before)
    assert clean_after.violations == [], f"the uninterrupted run broke an invariant: {clean_after.violations[:5]}"
    duration = statistics.median(timings)

    rng = random.Random(f"crash-{name}")
    landed = with_temporary = 0
    verified_counts: list[int] = []
    for i in range(KILLS):
        saved_home.restore(saved, home)
        delay = rng.uniform(0.02, 0.9) * duration
        result = forkserver.run(argv, tmp_path / f"kill-{i}.log", env=env, kill_after=delay)
        after = _after_crash(home, corpus, op, damage, verified_before)
        if after.violations:
            shutil.copytree(home, tmp_path / f"failed-home-{i}", symlinks=True)
        assert after.violations == [], f"kill {i} of {name} at {delay:.3f}s of {duration:.3f}s: {after.violations[:5]}"
        if result.killed and result.started and not result.finished and after.unfinished:
            landed += 1
        with_temporary += after.temporary_files > 0
        verified_counts.append(after.verified_copies)
    spread = ", ".join(f"{n}:{verified_counts.count(n)}" for n in sorted(set(verified_counts)))
    slow = f", {op.open_delay * 1000:g} ms per file opened on the nodes" if op.open_delay else ""
    summary.report(f"crash/{name} ({saved_home.backend}): {landed}/{KILLS} kills landed mid-operation "
                   f"(operation {duration:.2f}s, {CORPUS_FILES} files{slow}; verified copies at the kill {{{spread}}}; {with_temporary} kills "
                   "left temporary files, swept), all invariants hold after each kill and after resuming")
    assert landed >= MIN_LANDED, f"only {landed}/{KILLS} kills hit {name} while it was working"
