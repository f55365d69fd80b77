"""Versions of a package: what changed, what is stored again, and what a version references.

A version is a package row of its own, bound to its lineage by
``package_versions``; its ``files`` rows are what is stored under its own
prefix, and ``version_files`` references each unchanged payload file where
an earlier version stored it (docs/versions.md).  This package is the one
place that compares states (:mod:`.state`), plans and registers a new
version and writes its ``fetch.txt`` (:mod:`.new`), and looks versions up
(:mod:`.lookup`) and lists a version's files and changes a page at a time (:mod:`.paged`).
"""

from .lookup import (
    MODE_PCA,
    VersionInfo,
    changes,
    entitled_until,
    first_kept,
    lineage_versions,
    newest_kept,
    period_end,
    referenced_packages,
    referencing_versions,
    resolve_version,
    version_as_of,
    version_for_library,
    version_of,
)
from .paged import LISTED_KINDS, changes_page, state_files, state_rows, versions_listed
from .new import (
    REFERENCES,
    Previous,
    VersionPlan,
    fetch_line,
    plan_version,
    previous_version,
    rebind_version,
    record_version,
)
from .state import (
    BATCH,
    CHANGE_KINDS,
    FETCH_TXT,
    Change,
    Comparison,
    StateRow,
    compare,
    iter_state,
    iter_version_files,
    locate,
)

__all__ = [
    "BATCH", "CHANGE_KINDS", "FETCH_TXT", "MODE_PCA", "REFERENCES", "Change", "Comparison", "Previous", "StateRow",
    "VersionInfo", "VersionPlan", "changes", "compare", "entitled_until", "fetch_line", "iter_state",
    "iter_version_files", "lineage_versions", "locate", "plan_version", "previous_version", "rebind_version",
    "record_version", "referenced_packages", "referencing_versions", "resolve_version",
    "version_as_of", "version_for_library", "version_of", "first_kept", "newest_kept", "period_end", "LISTED_KINDS",
    "changes_page", "state_files", "state_rows", "versions_listed",
]
