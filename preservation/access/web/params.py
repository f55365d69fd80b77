"""Whole numbers in URLs: digits 0-9 only, and within the range the catalog can hold.

Python's ``int()`` (and so the router) also reads ``+5``, `` 5``, ``1_000`` and
``1.0``, and any number of digits; a number past a 64-bit column overflows the
database driver instead of being refused.  Every offset, page size and row id
of the service is declared with these types, so each is refused with a 4xx
(E112) before a handler runs.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query
from pydantic import BeforeValidator

from preservation.access.holdings import MAX_PAGE

MAX_OFFSET = 10**12  # far past any catalog, well inside a 64-bit OFFSET
MAX_ROW_ID = 2**63 - 1  # a BIGINT key
_MAX_DIGITS = 19


def digits_only(value: object) -> object:
    """Refuse a text that is not plain ASCII digits (the range is checked after parsing)."""
    if isinstance(value, str) and not (value.isascii() and value.isdigit() and len(value) <= _MAX_DIGITS):
        raise ValueError(f"must be a whole number written with at most {_MAX_DIGITS} digits 0-9")
    return value


WholeNumber = BeforeValidator(digits_only)
Offset = Annotated[int, WholeNumber, Query(ge=0, le=MAX_OFFSET, description="Rows to skip")]
RowId = Annotated[int, WholeNumber, Path(ge=1, le=MAX_ROW_ID)]

PageLimit = Annotated[int, WholeNumber, Query(ge=1, le=MAX_PAGE, description="Rows per page")]
