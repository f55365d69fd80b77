"""Open a delivery: a directory, an existing bag, or a tar / zip archive.

>>> delivery = open_delivery("/incoming/springer-2024")
>>> findings = delivery.check()          # everything inspected, nothing written
>>> for entry in delivery.entries(): ... # regular files, streamed in a fixed order

``strict`` (the default, used by ingest) refuses what cannot be preserved
faithfully everywhere: control characters in names, hard links, names that
collide after normalisation or case folding, over-long names.  Without it
those are warnings (for local bags and tests); links, devices, unsafe paths,
undecodable names and zip bombs are refused either way.
"""

from __future__ import annotations

import os

from preservation import codes
from preservation.errors import DeliveryRejected, NotFound
from preservation.findings import FindingList

from .delivery_base import (
    DEFAULT_MAX_DEPTH,
    MAX_COMPRESSION_RATIO,
    MAX_MEMBERS,
    MAX_TOTAL_BYTES,
    RATIO_MIN_SIZE,
    Delivery,
    DeliveryEntry,
    DeliveryLimits,
    DeliveryTotals,
)
from .directory import BagDelivery, DirectoryDelivery
from .tagfiles import BAGIT_TXT

TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
ZIP_SUFFIXES = (".zip",)


def open_delivery(path: str | os.PathLike[str], *, strict: bool = True, limits: DeliveryLimits | None = None) -> Delivery:
    """The delivery at ``path``: kind "bag", "directory", "tar" or "zip".

    Raises NotFound when nothing is there and DeliveryRejected (code DLV026)
    when it is neither a directory nor a tar or zip archive.
    """
    source = os.fspath(path)
    if not os.path.lexists(source):
        raise NotFound(f"delivery {source} does not exist")
    if os.path.isdir(source):
        if os.path.isfile(os.path.join(source, BAGIT_TXT)):
            return BagDelivery(source, strict=strict, limits=limits)
        return DirectoryDelivery(source, strict=strict, limits=limits)
    kind = archive_kind(source) if os.path.isfile(source) else None
    if kind is not None:
        # loaded only here: tarfile, zipfile, lzma and bz2 would cost every directory bag and validation their memory
        from .archives import TarDelivery, ZipDelivery

        return (ZipDelivery if kind == "zip" else TarDelivery)(source, strict=strict, limits=limits)
    findings = FindingList()
    codes.note(
        findings,
        codes.NOT_A_DELIVERY,
        "a delivery is a directory, a bag, or a .tar, .tar.gz, .tgz or .zip archive",
        source,
    )
    raise DeliveryRejected("not a directory or a supported archive", findings=list(findings), source=source)


def archive_kind(path: str) -> str | None:
    """The archive format of ``path`` ("zip", "tar" or None): by suffix, else by content."""
    lower = path.lower()
    if lower.endswith(ZIP_SUFFIXES):
        return "zip"
    if lower.endswith(TAR_SUFFIXES):
        return "tar"
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return None
    if head == b"PK\x03\x04":
        return "zip"
    from .archives import is_tar  # see open_delivery

    try:
        return "tar" if is_tar(path) else None
    except OSError:
        return None


__all__ = [
    "DEFAULT_MAX_DEPTH",
    "MAX_COMPRESSION_RATIO",
    "MAX_MEMBERS",
    "MAX_TOTAL_BYTES",
    "RATIO_MIN_SIZE",
    "BagDelivery",
    "Delivery",
    "DeliveryEntry",
    "DeliveryLimits",
    "DeliveryTotals",
    "DirectoryDelivery",
    "archive_kind",
    "open_delivery",
]
