"""Job kinds, dedupe keys and priorities live in preservation.jobs.kinds and nowhere else."""

from __future__ import annotations

import ast
from pathlib import Path

from preservation.jobs import kinds

PACKAGE = Path(kinds.__file__).resolve().parents[1]
QUEUE_OWNERS = {PACKAGE / "jobs" / "kinds.py", PACKAGE / "jobs" / "queue.py"}


def _calls_outside_the_queue():
    for path in sorted(PACKAGE.rglob("*.py")):
        if path in QUEUE_OWNERS:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Call):
                yield path.relative_to(PACKAGE.parent), node


def test_no_product_module_enqueues_past_the_kinds_module():
    direct = [f"{path}:{call.lineno}" for path, call in _calls_outside_the_queue()
              if isinstance(call.func, (ast.Attribute, ast.Name))
              and (call.func.attr if isinstance(call.func, ast.Attribute) else call.func.id) == "enqueue"]
    assert direct == [], "enqueue through preservation.jobs.kinds.enqueue_for_replica, not queue.enqueue"


def test_no_product_module_spells_a_priority_or_dedupe_key_itself():
    spelled = [f"{path}:{call.lineno} {kw.arg}" for path, call in _calls_outside_the_queue()
               for kw in call.keywords if kw.arg in ("priority", "dedupe_key")]
    assert spelled == []


def test_damage_runs_before_routine_work():
    order = [kinds.AUDIT_AFTER_FAILED_CHALLENGE, kinds.REPAIR_DAMAGED, kinds.AUDIT_SUSPECT_AGAIN,
             kinds.REPLICATE_NEW_COPY, kinds.SCHEDULED_AUDIT, kinds.SCHEDULED_CHALLENGE,
             kinds.SCHEDULED_REIDENTIFICATION]
    assert [p.priority for p in order] == sorted(p.priority for p in order)
    assert len({p.priority for p in order}) == len(order)
    assert kinds.AUDIT_AFTER_BAD_READ.priority < kinds.AUDIT_SUSPECT_AGAIN.priority


def test_one_live_job_per_copy_and_kind(repo):
    with repo.catalog.session() as s:
        first = kinds.enqueue_for_replica(s, kinds.SCHEDULED_AUDIT, 7, package_id=None)
        urgent = kinds.enqueue_for_replica(s, kinds.AUDIT_AFTER_FAILED_CHALLENGE, 7, package_id=None)
        repair = kinds.enqueue_for_replica(s, kinds.REPAIR_DAMAGED, 7, package_id=None, max_attempts=2)
        assert urgent.id == first.id and first.dedupe_key == kinds.replica_key(kinds.AUDIT, 7) == "audit:7"
        assert (repair.kind, repair.priority, repair.max_attempts) == (kinds.REPAIR, 10, 2)
        assert kinds.replicas_with_live_job(s, kinds.AUDIT) == {7}
        assert kinds.replicas_with_live_job(s, kinds.CHALLENGE) == set()
