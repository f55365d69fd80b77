"""The words the catalog stores (states, event types and outcomes, process roles) and the time it stores.

Kept apart from the table definitions so that a quick read-only command (``preserve status``, ``preserve node
list``: :mod:`preservation.catalog.reader`) uses them without importing SQLAlchemy.  ``catalog.models``,
``catalog.monitoring_models``, ``jobs.queue`` and ``events`` import them from here and keep offering them
under their old names.
"""

from __future__ import annotations

from datetime import datetime, timezone

# Replica and package states (see docs/concepts.md).
REPLICA_PENDING = "pending"
REPLICA_COPYING = "copying"
REPLICA_VERIFIED = "verified"
REPLICA_SUSPECT = "suspect"
REPLICA_CORRUPT = "corrupt"
REPLICA_MISSING = "missing"
REPLICA_REPAIRING = "repairing"
REPLICA_STATES = (
    REPLICA_PENDING,
    REPLICA_COPYING,
    REPLICA_VERIFIED,
    REPLICA_SUSPECT,
    REPLICA_CORRUPT,
    REPLICA_MISSING,
    REPLICA_REPAIRING,
)

PACKAGE_REPLICATING = "replicating"
PACKAGE_PRESERVED = "preserved"
PACKAGE_DEGRADED = "degraded"  # some required copies are not verified; at least one is
PACKAGE_DAMAGED = "damaged"  # no verified copy is left
PACKAGE_DEACCESSIONED = "deaccessioned"
PACKAGE_STATES = (PACKAGE_REPLICATING, PACKAGE_PRESERVED, PACKAGE_DEGRADED, PACKAGE_DAMAGED, PACKAGE_DEACCESSIONED)

NODE_ACTIVE = "active"
NODE_DRAINING = "draining"
NODE_OFFLINE = "offline"
NODE_STATUSES = (NODE_ACTIVE, NODE_DRAINING, NODE_OFFLINE)
ORG_TYPES = ("university", "cas", "institute")

# Job states (preservation.jobs.queue).
QUEUED = "queued"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"  # waiting for a retry
DEAD = "dead"
CANCELLED = "cancelled"
# a dead job closed: by an operator who has seen it, or by the system once its copy verified again
ACKNOWLEDGED = "acknowledged"
SUPERSEDED = "superseded"
JOB_STATES = (QUEUED, RUNNING, SUCCEEDED, FAILED, DEAD, CANCELLED, ACKNOWLEDGED, SUPERSEDED)
LIVE_STATES = (QUEUED, RUNNING, FAILED)

# PREMIS 3 event types (id.loc.gov/vocabulary/preservation/eventType) used here (preservation.events).
INGESTION = "ingestion"
MESSAGE_DIGEST_CALCULATION = "message digest calculation"
VALIDATION = "validation"
REPLICATION = "replication"
FIXITY_CHECK = "fixity check"
# "repair" and "access" are this repository's own words, not the vocabulary's: the
# PREMIS export writes them as they are, without a valueURI (see premis.EVENT_TYPE_CODES).
REPAIR = "repair"
ACCESS = "access"
DEACCESSION = "deaccession"
INFORMATION_PACKAGE_CREATION = "information package creation"
METADATA_MODIFICATION = "metadata modification"
POLICY_ASSIGNMENT = "policy assignment"
DELETION = "deletion"
DISSEMINATION = "dissemination"
# the coordinator's checkpoint signing key replaced after it was lost (docs/evidence.md): not a PREMIS term
KEY_INTRODUCTION = "key introduction"

SUCCESS = "success"
FAILURE = "failure"
WARNING = "warning"

# Who writes heartbeats (catalog.monitoring_models).
ROLE_WORKER = "worker"
ROLE_SCHEDULER = "scheduler"
ROLES = (ROLE_WORKER, ROLE_SCHEDULER)


def utcnow() -> datetime:
    """Naive UTC now, microsecond precision: the one time format the catalog stores."""
    return datetime.now(timezone.utc).replace(tzinfo=None)
