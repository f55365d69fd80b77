"""Crash anywhere: SIGKILL ingest, version ingest, replication, audit and repair at random instants.

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

The 30 kills of an ingest are split: 15 of a first delivery (``ingest``)
and 15 of a version ingest (``version-ingest``, docs/versions.md: a second
delivery of the corpus with files changed, removed, renamed and added,
matched to the first by the policy's bag-info identifier).  Right after each kill of a version ingest,
nothing of the version is half-visible (its version row, references and
stored files all there, or none); after resuming, version 2's state is the
second delivery.
"""

from __future__ import annotations

import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
import yaml
from sqlalchemy import func, select

from preservation import versions
from preservation.audit import audit
from preservation.catalog.models import PACKAGE_PRESERVED, REPLICA_VERIFIED, Package, PackageFile, Replica, utcnow
from preservation.catalog.version_models import PackageVersion, VersionFile
from preservation.ingest import ingest
from preservation.repository import Repository
from preservation.settings import REPO_ROOT
from storage_adapters.filesystem import TEMP_DIR

from ..corruption import add_file, delete, flip_bit, truncate
from ..fixtures import make_repo
from . import summary
from .disk import SLOW_DISK_ENV
from .invariants import Damage, check_catalog_against_nodes, check_settled, tree
from .work import SavedHome, make_corpus, payload_digests, resume_work

KILLS = 20
MIN_LANDED = 13  # kills that must hit the operation while it works (not after it finished, on a loaded machine)
CLEAN_RUNS = 3
CORPUS_FILES = 100
IDENTIFIER = "External-Identifier=crash-corpus-monthly"  # how the policy matches the second delivery to the first


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """The first delivery (``delivery``) and, beside it, the second (``delivery-v2``): 6 files changed,
    3 removed, 3 renamed, 4 added."""
    first = make_corpus(tmp_path_factory.mktemp("crash-corpus") / "delivery", CORPUS_FILES, seed=7)
    second = _second(first)
    shutil.copytree(first, second)
    files = sorted(p for p in second.rglob("*") if p.is_file())
    rng = random.Random(18)
    for p in files[:6]:
        p.write_bytes(rng.randbytes(3000))
    for p in files[6:9]:
        p.unlink()
    for p in files[9:12]:
        p.rename(p.with_name("renamed-" + p.name))
    (second / "added").mkdir()
    for i in range(4):
        (second / "added" / f"new-{i}.bin").write_bytes(rng.randbytes(5000))
    return first


def _second(corpus: Path) -> Path:
    return corpus.with_name("delivery-v2")


# --- the five operations --------------------------------------------------------------


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


def _first_preserved(home: Path, corpus: Path, catalog_url: str | None) -> None:
    """The first delivery preserved, under a policy that matches a delivery to it by its bag-info identifier."""
    home.mkdir(parents=True)
    policy = yaml.safe_load((REPO_ROOT / "policies" / "default.yaml").read_text(encoding="utf-8"))
    policy["versions"] = {"match_on": ["identifier"]}
    (home / "policy.yaml").write_text(yaml.safe_dump(policy), encoding="utf-8")
    repo = make_repo(home, catalog_url, policy=home / "policy.yaml")
    try:
        label, value = IDENTIFIER.split("=")
        assert ingest(repo, corpus, "journals", bag_info={label: value})["state"] == PACKAGE_PRESERVED
    finally:
        repo.close()


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
    kills: int = KILLS
    after_kill: Callable[[Repository], list[str]] | None = None  # what must hold the moment it was killed
    after_resume: Callable[[Repository, Path], list[str]] | None = None  # what the finished work must be


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


def _version_two(repo: Repository) -> str | None:
    with repo.catalog.session() as s:
        return s.scalar(select(PackageVersion.package_id).where(PackageVersion.number == 2))


def _version_two_unfinished(repo: Repository, _damage) -> bool:
    v2 = _version_two(repo)
    with repo.catalog.session() as s:
        return v2 is None or s.get(Package, v2).state != PACKAGE_PRESERVED


def _resume_version_ingest(repo: Repository, corpus: Path) -> None:
    resume_work(repo)
    if _version_two(repo) is None:  # killed before registration: the operator runs the command again
        label, value = IDENTIFIER.split("=")
        ingest(repo, _second(corpus), "journals", bag_info={label: value})


def _half_visible(repo: Repository) -> list[str]:
    """A version row without its package, references or stored files; a new package without its version row."""
    problems = []
    with repo.catalog.session() as s:
        rows = {v.package_id: v for v in s.scalars(select(PackageVersion))}
        packages = list(s.scalars(select(Package.id)))
        for pid in packages:
            v = rows.get(pid)
            if v is None:
                if len(packages) > 1 and rows:
                    problems.append(f"package {pid} has no version row")
                continue
            if v.number == 1:
                continue
            refs = s.scalar(select(func.count()).select_from(VersionFile).where(VersionFile.package_id == pid))
            if refs != v.changes["unchanged"] + v.changes["renamed"]:
                problems.append(f"version {pid} has {refs} references, not {v.changes}")
            stored = s.scalar(select(func.count()).select_from(PackageFile)
                              .where(PackageFile.package_id == pid, PackageFile.path.like("data/%")))
            if stored != v.changes["added"] + v.changes["changed"]:
                problems.append(f"version {pid} stores {stored} payload files, not {v.changes}")
        if len(packages) > 1 and len(rows) != len(packages):
            problems.append(f"{len(packages)} packages but {len(rows)} version rows")
        if len(packages) == 1 and rows:
            problems.append(f"version rows without their packages: {sorted(rows)}")
    return problems


def _version_two_is_the_delivery(repo: Repository, corpus: Path) -> list[str]:
    v2 = _version_two(repo)
    with repo.catalog.session() as s:
        count = s.scalar(select(func.count()).select_from(Package))
    if v2 is None or count != 2:
        return [f"{count} packages and version 2 {v2}: the second delivery is not the first's version 2"]
    state = {row.path: row.sha256 for row in versions.iter_state(repo.catalog, v2)}
    return [] if state == payload_digests(_second(corpus)) else ["version 2's state is not the second delivery"]


def _one_package_holding(repo: Repository, corpus: Path) -> list[str]:
    with repo.catalog.session() as s:
        ids = list(s.scalars(select(Package.id)))
        if len(ids) != 1:
            return [f"{len(ids)} packages registered for one delivery"]
        rows = {f.path: f.sha256 for f in s.scalars(select(PackageFile).where(PackageFile.package_id == ids[0],
                                                                              PackageFile.is_tag.is_(False)))}
    return [] if rows == payload_digests(corpus) else ["the package's payload is not the delivery"]


def _resume_audit(repo: Repository, corpus: Path) -> None:
    audit(repo)  # the interrupted command, run again
    resume_work(repo)


OPERATIONS = {
    op.name: op for op in (
        Operation("ingest", lambda home, corpus, url: make_repo(home, url).close(),
                  lambda corpus: ["ingest", str(corpus), "--collection", "journals", "--inline", "-q"], 0,
                  _not_one_preserved, _resume_ingest, kills=15,
                  after_resume=_one_package_holding),
        Operation("version-ingest", _first_preserved,
                  lambda corpus: ["ingest", str(_second(corpus)), "--collection", "journals", "--info", IDENTIFIER,
                                  "--inline", "-q"], 0,
                  _version_two_unfinished, _resume_version_ingest, kills=15, after_kill=_half_visible,
                  after_resume=_version_two_is_the_delivery),
        Operation("replication", _registered, lambda corpus: ["worker", "--once", "--kind", "replicate"], 0,
                  _not_all_verified, lambda repo, corpus: resume_work(repo), open_delay=0.002),
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
        if op.after_kill is not None:
            violations += [f"after the kill: {v}" for v in op.after_kill(repo)]
        held = {(r.package_id, r.node_id) for r in _replicas(repo)}
        violations += [f"after the kill: verified copy {c} is gone from the catalog" for c in verified_before - held]
        unfinished = op.incomplete(repo, damage)
        verified = sum(r.state == REPLICA_VERIFIED for r in _replicas(repo))
        temporary = sum(len(tree(root / TEMP_DIR)) for root in (home / "nodes").iterdir())
        op.resume(repo, corpus)
        violations += [f"after resuming: {v}" for v in check_settled(repo, staging=home / "staging")]
        violations += [f"after resuming: copy {c} verified before is not verified"
                       for c in verified_before - _verified_copies(repo)]
        if op.after_resume is not None:
            violations += [f"after resuming: {v}" for v in op.after_resume(repo, corpus)]
    return Aftermath(violations, unfinished, verified, temporary)


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
    duration = min(timings)  # a loaded machine slows some clean runs; the shortest keeps the kills inside

    rng = random.Random(f"crash-{name}")
    landed = with_temporary = 0
    verified_counts: list[int] = []
    for i in range(op.kills):
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
    summary.report(f"crash/{name} ({saved_home.backend}): {landed}/{op.kills} kills landed mid-operation "
                   f"(operation {duration:.2f}s, {CORPUS_FILES} files{slow}; verified copies at the kill {{{spread}}}; {with_temporary} kills "
                   "left temporary files, swept), all invariants hold after each kill and after resuming")
    wanted = MIN_LANDED * op.kills // KILLS
    assert landed >= wanted, f"only {landed}/{op.kills} kills hit {name} while it was working"
