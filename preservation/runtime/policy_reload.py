"""Policy reload without a restart, for the worker and the scheduler.

A process reloads its policy file when it receives SIGHUP (:meth:`PolicyWatcher.request`, safe to call
from a signal handler: it only sets a flag) and when, at one of its ticks, the file's modification time,
size or inode changed and its bytes (SHA-256) differ from those of the policy in force.

A new policy is validated as at start-up (:func:`preservation.policy.load_policy`).  A good one is put in
force at once (:meth:`Repository.use_policy`) and recorded as a ``policy assignment`` event naming the
process and the old and new policy digests.  A bad one is refused: the old policy stays in force, the
refusal is logged at ERROR with the policy error's code and recorded as a failed ``policy assignment``
event, once per bad content (the next ticks do not repeat it; fixing the file or SIGHUP try again).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from preservation import events
from preservation.errors import PolicyError, PreservationError
from preservation.policy import load_policy
from preservation.repository import Repository

log = logging.getLogger("preserve.policy")

SIGNAL = "SIGHUP"
FILE_CHANGE = "file change"


class PolicyWatcher:
    def __init__(self, repo: Repository, *, agent: str, process: str, every: float = 5.0) -> None:
        self.repo = repo
        self.agent = agent
        self.process = process
        self.every = every
        source = repo.settings.policy_source
        self.path: Path | None = source if isinstance(source, Path) else None  # None: the packaged default
        self._stamp = self._stat()
        self._digest = repo.policy.source_digest
        self._refused: str | None = None
        self._requested = threading.Event()
        self._next_look = time.monotonic() + every
        self._lock = threading.Lock()

    def request(self) -> None:
        """Reload at the next tick (what SIGHUP does)."""
        self._requested.set()

    def _stat(self) -> tuple[int, int, int] | None:
        if self.path is None:
            return None
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size, st.st_ino

    def tick(self) -> dict[str, Any] | None:
        """Reload if asked to, or if the file changed (looked at every ``every`` seconds); what happened, or None."""
        forced = self._requested.is_set()
        now = time.monotonic()
        if not forced and now < self._next_look:
            return None
        self._next_look = now + self.every
        with self._lock:
            self._requested.clear()
            return self._check(SIGNAL if forced else FILE_CHANGE, forced)

    def _check(self, trigger: str, forced: bool) -> dict[str, Any] | None:
        if self.path is None:
            if forced:
                log.info("%s: SIGHUP: the policy in force is the packaged default; no policy file to reload",
                         self.process)
            return None
        stamp = self._stat()
        if not forced and stamp == self._stamp:
            return None
        self._stamp = stamp
        try:
            raw = self.path.read_bytes()
        except OSError as e:
            return self._refuse(trigger, None, PolicyError(f"cannot read it ({e.strerror})", source=str(self.path)))
        digest = hashlib.sha256(raw).hexdigest()
        if digest == self._digest:
            if forced:
                log.info("%s: SIGHUP: policy file %s unchanged (sha256 %s); nothing to reload", self.process,
                         self.path, digest[:12])
            return None
        if digest == self._refused and not forced:
            return None  # refused already, and recorded: wait for it to change
        try:
            new = load_policy(self.path)
        except PolicyError as e:
            return self._refuse(trigger, digest, e)
        old = self.repo.use_policy(new)
        self._digest = new.source_digest
        self._refused = None
        detail = {"action": "policy reload", "trigger": trigger, "process": self.process, "file": str(self.path),
                  "old_policy": old.label, "new_policy": new.label,
                  "old_digest": old.source_digest, "new_digest": new.source_digest}
        log.info("%s: policy reloaded (%s): %s (sha256 %s) replaces %s (sha256 %s)", self.process, trigger,
                 new.label, new.source_digest[:12], old.label, old.source_digest[:12])
        self._record(events.SUCCESS, new.label, detail)
        return {"reloaded": True, **detail}

    def _refuse(self, trigger: str, digest: str | None, error: PreservationError) -> dict[str, Any]:
        self._refused = digest
        kept = self.repo.policy
        detail = {"action": "policy reload", "trigger": trigger, "process": self.process, "file": str(self.path),
                  "old_digest": kept.source_digest, "new_digest": digest, "kept_policy": kept.label,
                  "reason": f"{error.code} {error.message}"[:1000], "error": error.to_dict()}
        log.error("%s: policy reload refused (%s), %s stays in force: %s %s", self.process, trigger, kept.label,
                  error.code, error.message, extra={"code": error.code})
        self._record(events.FAILURE, kept.label, detail)
        return {"reloaded": False, **detail}

    def _record(self, outcome: str, label: str, detail: dict[str, Any]) -> None:
        try:
            with self.repo.catalog.session() as s:
                events.record_event(s, events.POLICY_ASSIGNMENT, outcome, agent=self.agent, policy=label,
                                    detail=detail)
        except (SQLAlchemyError, PreservationError) as e:
            log.error("%s: the policy reload could not be recorded in the event log: %s", self.process, e)
