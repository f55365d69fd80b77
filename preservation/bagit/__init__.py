"""Strict BagIt (RFC 8493): deliveries, the bag writer, the validator and BagIt profiles.

Public API::

    open_delivery(path, *, strict=True, limits=None) -> Delivery
    create_bag(delivery, dest_dir, bag_info, *, algorithms=("sha256", "sha512"), workers=2, progress=None,
               observe=None) -> BagResult
    validate_bag(path, *, workers=2, profile=None, completeness_only=False) -> ValidationReport
    validate_profile(report_or_bag, profile) -> FindingList
    read_bag_metadata(path) / read_bag_metadata_from_adapter(adapter, prefix) / parse_bag_metadata(reader, names)

Finding codes are listed in :mod:`preservation.codes` and docs/bagit-findings.md.
"""

from preservation.codes import CODES
from .delivery import Delivery, DeliveryEntry, DeliveryLimits, open_delivery
from .pipeline import Observer
from .profile import BagItProfile, default_profile, load_profile
from .records import FileRecord, RecordTable
from .tagfiles import BagInfo, BagMetadata, parse_bag_metadata, read_bag_metadata, read_bag_metadata_from_adapter
from .validator import ValidationReport, validate_bag, validate_profile
from .writer import BagResult, create_bag

__all__ = [
    "CODES",
    "BagInfo",
    "BagItProfile",
    "BagMetadata",
    "BagResult",
    "Delivery",
    "DeliveryEntry",
    "DeliveryLimits",
    "FileRecord",
    "Observer",
    "RecordTable",
    "ValidationReport",
    "create_bag",
    "default_profile",
    "load_profile",
    "open_delivery",
    "parse_bag_metadata",
    "read_bag_metadata",
    "read_bag_metadata_from_adapter",
    "validate_bag",
    "validate_profile",
]
