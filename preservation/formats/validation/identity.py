"""Which validator said what a file is worth: the checks' revision and the libraries they parse with.

A validation is a fact about a file's bytes only for the validator that made
it: a new check, or a new pikepdf, lxml or Pillow (each carries the C library
it parses with: qpdf, libxml2, libjpeg …), may say otherwise of the same
bytes.  :func:`validator_identity` names the validator of this install; a
validation recorded under another name is made again, never carried over
(``docs/versions.md``, section 4).
"""

from __future__ import annotations

from functools import cache
from importlib import metadata

CHECKS_REVISION = "1"
"""Raise this whenever a check (``preservation/formats/checks``) changes what it reports of some file."""
LIBRARIES = ("pikepdf", "lxml", "Pillow")
"""The distributions the checks parse with (each bundles its C library, so its version names that library's)."""


@cache
def validator_identity() -> str:
    """This install's validator, e.g. ``checks 1; pikepdf 10.18.0; lxml 6.2.0; Pillow 13.0.0``."""
    parts = [f"checks {CHECKS_REVISION}"]
    for library in LIBRARIES:
        try:
            parts.append(f"{library} {metadata.version(library)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{library} absent")
    return "; ".join(parts)
