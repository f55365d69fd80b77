"""Format validation of payload files, in separate processes with time and memory limits.

:func:`kind_for` (:mod:`.kinds`) says which check a file gets from what
identification said; a :class:`Validator` (:mod:`.pool`) streams files
through long-lived validating processes under limits and gives a
:class:`Validation` (:mod:`.results`) for each.  Outcomes are ``valid``,
``invalid``, ``limit`` and ``error`` (``docs/validation.md``); findings are
``FMV`` codes, warnings by default.

Public API::

    kind_for(puid, mime, name) -> str | None
    Validator(time_limit_s, memory_limit_bytes, workers=2, *, check_modules=(), files_per_process=1000)
        .validate_many(iterable of (key, path, kind)) -> iterator of (key, Validation)
        .validate(path, kind) -> Validation;  .start();  .stats();  .peak_rss_bytes;  .process_ids;  .close()
    Validation(kind, outcome, encrypted, drm, details, findings); .codes; .finding_list(path); .to_dict()
"""

from .kinds import KINDS, kind_for
from .pool import DEFAULT_MEMORY_LIMIT, DEFAULT_TIME_LIMIT_S, Validator
from .results import ERROR, INVALID, LIMIT, OUTCOMES, VALID, Validation

__all__ = [
    "DEFAULT_MEMORY_LIMIT",
    "DEFAULT_TIME_LIMIT_S",
    "ERROR",
    "INVALID",
    "KINDS",
    "LIMIT",
    "OUTCOMES",
    "VALID",
    "Validation",
    "Validator",
    "kind_for",
]
