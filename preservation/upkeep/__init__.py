"""What the scheduler does each tick, one module per task.

* :mod:`.audits` plans this window's full audits within each node's read budget;
* :mod:`.missing_copies` places new copies where the copies on active nodes no
  longer satisfy the policy (a node lost or draining, a policy raised);
* :mod:`.stalled` gives jobs back to copies that wait for work nobody will do;
* :mod:`.sweeping` expires dead workers' leases and removes interrupted writes
  and stale staging directories;
* :mod:`.challenges` queues proof-of-possession challenges between audits.

Every task only enqueues jobs (deduplicated by purpose) or tidies up; the
work itself is done by workers.  Each task is safe to run at any time, any
number of times, by whichever scheduler is active.
"""
