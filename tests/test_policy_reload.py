"""Policy reload without a restart: a running worker and a running scheduler (real processes) reload their
policy on SIGHUP and when the file changes, record each reload as an event with the old and new digests,
and refuse a bad policy (logged with its code, recorded) while the old one stays in force."""

from __future__ import annotations

import hashlib
import os
import signal
from pathlib import Path

import pytest
from sqlalchemy import select

from preservation import events
from preservation.catalog.models import Event
from preservation.settings import DEFAULT_POLICY

from .fixtures import make_repo
from .processes import log_tails, start, stop, wait_until


def _policy_text(version: int, copies: int = 3) -> str:
    text = DEFAULT_POLICY.read_text(encoding="utf-8")
    assert "\nversion: 1\n" in text and "copies: 3" in text
    return text.replace("\nversion: 1\n", f"\nversion: {version}\n").replace("copies: 3", f"copies: {copies}")


def _replace(path: Path, text: str) -> None:
    """Change the policy as an operator's tools should: a whole new file renamed over the old one.

    (A file written in place can be read half-written by a tick; that read is refused and recorded as a
    failure, which is right, but it is not what these tests are about.)
    """
    new = path.with_name(path.name + ".new")
    new.write_text(text, encoding="utf-8")
    os.replace(new, path)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _reloads(repo) -> list[Event]:
    with repo.catalog.session() as s:
        found = s.scalars(select(Event).where(Event.event_type == events.POLICY_ASSIGNMENT,
                                              Event.package_id.is_(None)).order_by(Event.seq)).all()
        s.expunge_all()
    return [e for e in found if e.detail.get("action") == "policy reload"]


def _wait_for(repo, count: int, log: Path) -> Event:
    try:
        found = wait_until(lambda: len(_reloads(repo)) >= count and _reloads(repo), 30, what=f"{count} reload events")
    except AssertionError:
        raise AssertionError(log_tails(log, lines=30)) from None
    assert len(found) == count, [e.detail for e in found]
    return found[-1]


COMMANDS = {"worker": ("worker", "--poll", "0.2", "--concurrency", "1"),
            "scheduler": ("scheduler", "--tick", "0.3", "--standby-retry", "0.3")}
STARTED = {"worker": "started: 1 thread", "scheduler": "scheduler active"}


@pytest.mark.parametrize("process", ["worker", "scheduler"])
def test_sighup_and_a_changed_file_reload_and_a_bad_policy_is_refused(tmp_path, process):
    policy = tmp_path / "policy.yaml"
    v1 = _policy_text(1)
    policy.write_text(v1, encoding="utf-8")
    repo = make_repo(tmp_path / "home", policy=policy)
    log = tmp_path / f"{process}.log"
    proc = start(repo.settings.home, *COMMANDS[process], log=log)
    try:
        wait_until(lambda: STARTED[process] in log.read_text(errors="replace"), 60, what=f"the {process} to start")

        # SIGHUP alone: the new bytes have the same size and the old mtime, so no tick would see them
        stat = policy.stat()
        v2 = _policy_text(2)
        assert len(v2) == len(v1)
        with open(policy, "r+", encoding="utf-8") as f:  # same inode
            f.write(v2)
        os.utime(policy, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        proc.send_signal(signal.SIGHUP)
        ev = _wait_for(repo, 1, log)
        assert ev.outcome == events.SUCCESS and ev.policy == "default@2"
        assert ev.detail["trigger"] == "SIGHUP" and ev.detail["process"] == process
        assert (ev.detail["old_digest"], ev.detail["new_digest"]) == (_sha(v1), _sha(v2))
        assert ev.agent.startswith(f"preserve-{process}@")

        # a change seen at a tick, without any signal
        v3 = _policy_text(3)
        _replace(policy, v3)
        ev = _wait_for(repo, 2, log)
        assert ev.outcome == events.SUCCESS and ev.detail["trigger"] == "file change"
        assert (ev.detail["old_digest"], ev.detail["new_digest"]) == (_sha(v2), _sha(v3))

        # a bad policy: refused once (not at every tick), logged with its code, recorded; v3 stays in force
        bad = _policy_text(4, copies=0)
        _replace(policy, bad)
        ev = _wait_for(repo, 3, log)
        assert ev.outcome == events.FAILURE and ev.policy == "default@3"
        assert ev.detail["kept_policy"] == "default@3" and ev.detail["new_digest"] == _sha(bad)
        assert ev.detail["error"]["code"] == "E101" and "copies" in ev.detail["reason"]
        text = log.read_text(errors="replace")
        assert "policy reload refused" in text and "E101" in text and "default@3 stays in force" in text
        assert proc.poll() is None, "a bad policy must not stop the process"

        # fixed: the next reload replaces v3 (the bad one never was in force)
        v5 = _policy_text(5)
        _replace(policy, v5)
        ev = _wait_for(repo, 4, log)
        assert ev.outcome == events.SUCCESS and ev.policy == "default@5"
        assert (ev.detail["old_digest"], ev.detail["new_digest"]) == (_sha(v3), _sha(v5))
    finally:
        assert stop(proc) == 0, log_tails(log)
        repo.close()
    with repo.catalog.session() as s:
        assert events.verify_chain(s).ok


def test_an_unchanged_file_is_not_reloaded_and_sighup_with_the_default_policy_changes_nothing(tmp_path):
    from preservation.runtime.policy_reload import PolicyWatcher

    policy = tmp_path / "policy.yaml"
    policy.write_text(_policy_text(1), encoding="utf-8")
    repo = make_repo(tmp_path / "home", policy=policy)
    try:
        watcher = PolicyWatcher(repo, agent="test", process="worker", every=0)
        os.utime(policy)  # touched, same bytes
        assert watcher.tick() is None
        watcher.request()
        assert watcher.tick() is None and repo.policy.version == 1 and _reloads(repo) == []
    finally:
        repo.close()
    default = make_repo(tmp_path / "other")
    try:
        watcher = PolicyWatcher(default, agent="test", process="scheduler", every=0)
        watcher.request()
        assert watcher.tick() is None and _reloads(default) == []
    finally:
        default.close()


def test_a_policy_file_that_disappears_is_refused_and_the_old_one_kept(tmp_path):
    from preservation.runtime.policy_reload import PolicyWatcher

    policy = tmp_path / "policy.yaml"
    policy.write_text(_policy_text(1), encoding="utf-8")
    repo = make_repo(tmp_path / "home", policy=policy)
    try:
        watcher = PolicyWatcher(repo, agent="test", process="worker", every=0)
        policy.unlink()
        watcher.request()
        result = watcher.tick()
        assert result["reloaded"] is False and result["error"]["code"] == "E101"
        assert repo.policy.version == 1
        [ev] = _reloads(repo)
        assert ev.outcome == events.FAILURE
    finally:
        repo.close()
