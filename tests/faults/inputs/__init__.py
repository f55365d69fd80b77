"""A corpus of malformed deliveries and bags, and a few awkward but legal ones.

Builders take ``(case_dir, sentinel)`` and return the path to ingest.
``sentinel`` is a directory next to the repository home: paths that try to
escape (``../``, absolute, links) aim at it, so a write that got out would
land there and be seen.  :data:`BAD` maps each case, by name, to the error
class ingest must raise and the finding codes it must carry; :data:`GOOD`
lists deliveries with awkward but legal names that must round-trip byte for
byte.
"""

from __future__ import annotations

import io
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from preservation import codes as c
from preservation.errors import BagInvalid, DeliveryRejected

from . import archives, bags, directories
from .common import Builder, write_files


@dataclass(frozen=True)
class Bad:
    build: Builder
    error: type[Exception]
    codes: set[str]
    """Finding codes the error must carry (it may carry more)."""


R, V = DeliveryRejected, BagInvalid
broken = bags.broken

BAD: dict[str, Bad] = {
    "dir_symlink_inside": Bad(directories.dir_symlink_inside, R, {c.SYMLINK_INSIDE}),
    "dir_symlink_to_sentinel_dir": Bad(directories.dir_symlink_to_sentinel_dir, R, {c.SYMLINK_OUTSIDE}),
    "dir_dangling_symlink": Bad(directories.dir_dangling_symlink, R, {c.SYMLINK_OUTSIDE}),
    "dir_fifo": Bad(directories.dir_fifo, R, {c.SPECIAL_FILE}),
    "dir_socket": Bad(directories.dir_socket, R, {c.SPECIAL_FILE}),
    "dir_hard_link": Bad(directories.dir_hard_link, R, {c.HARD_LINK}),
    "dir_nfc_nfd_directories": Bad(directories.dir_nfc_nfd_directories, R, {c.DELIVERY_COLLIDE_NFC}),
    "dir_case_only_duplicates": Bad(directories.dir_case_only_duplicates, R, {c.DELIVERY_COLLIDE_CASE}),
    "dir_case_only_directories": Bad(directories.dir_case_only_directories, R, {c.DELIVERY_COLLIDE_CASE}),
    "dir_carriage_return_in_name": Bad(directories.dir_carriage_return_in_name, R, {c.CONTROL_CHARACTER}),
    "dir_line_feed_in_directory_name": Bad(directories.dir_line_feed_in_directory_name, R, {c.CONTROL_CHARACTER}),
    "dir_tab_in_name": Bad(directories.dir_tab_in_name, R, {c.CONTROL_CHARACTER}),
    "dir_invalid_utf8_file_name": Bad(directories.dir_invalid_utf8_file_name, R, {c.DELIVERY_NAME_NOT_UTF8}),
    "dir_invalid_utf8_directory_name": Bad(directories.dir_invalid_utf8_directory_name, R, {c.DELIVERY_NAME_NOT_UTF8}),
    "dir_backslash_in_name": Bad(directories.dir_backslash_in_name, R, {c.NAME_NOT_PORTABLE}),
    "dir_path_too_long": Bad(directories.dir_path_too_long, R, {c.NAME_NOT_PORTABLE}),
    "dir_too_deep": Bad(directories.dir_too_deep, R, {c.TOO_DEEP}),
    "dir_empty": Bad(directories.dir_empty, R, {c.NO_FILES}),
    "dir_only_empty_directories": Bad(directories.dir_only_empty_directories, R, {c.NO_FILES}),
    "not_a_delivery": Bad(directories.not_a_delivery, R, {c.NOT_A_DELIVERY}),
    "bag_bom_in_bagit_txt": Bad(broken(bags.bom), V, {c.BAGIT_TXT_BOM}),
    "bag_version_2_0": Bad(broken(bags.version_2), V, {c.VERSION_UNSUPPORTED}),
    "bag_version_garbage": Bad(broken(bags.version_garbage), V, {c.VERSION_UNSUPPORTED}),
    "bag_version_missing": Bad(broken(bags.version_missing), V, {c.VERSION_MISSING}),
    "bag_encoding_missing": Bad(broken(bags.encoding_missing), V, {c.ENCODING_MISSING}),
    "bag_encoding_unknown": Bad(broken(bags.encoding_unknown), V, {c.ENCODING_UNKNOWN}),
    "bag_undecodable_bag_info": Bad(broken(bags.undecodable_bag_info), V, {c.TAG_FILE_UNDECODABLE}),
    "bag_info_line_malformed": Bad(broken(bags.bag_info_malformed), V, {c.BAG_INFO_MALFORMED}),
    "bag_oxum_malformed": Bad(broken(bags.oxum_malformed), V, {c.OXUM_MALFORMED}),
    "bag_oxum_count_wrong": Bad(broken(bags.oxum_count_wrong), V, {c.OXUM_MISMATCH}),
    "bag_no_data_directory": Bad(broken(bags.no_data_directory), V, {c.PAYLOAD_DIR_MISSING, c.PAYLOAD_MISSING}),
    "bag_no_payload_manifest": Bad(broken(bags.no_payload_manifest), V, {c.NO_PAYLOAD_MANIFEST}),
    "bag_duplicate_manifest_line": Bad(broken(bags.duplicate_manifest_line), V, {c.MANIFEST_DUPLICATE}),
    "bag_manifest_absolute_path": Bad(broken(bags.manifest_absolute_path), V, {c.MANIFEST_PATH_UNSAFE}),
    "bag_manifest_backslash_traversal": Bad(broken(bags.manifest_backslash_traversal), V, {c.MANIFEST_PATH_UNSAFE}),
    "bag_tag_manifest_traversal": Bad(broken(bags.tag_manifest_traversal, keep_tags=True), V, {c.MANIFEST_PATH_UNSAFE}),
    "bag_manifest_line_malformed": Bad(broken(bags.manifest_line_malformed), V, {c.MANIFEST_LINE_MALFORMED}),
    "bag_payload_missing": Bad(broken(bags.payload_missing), V, {c.PAYLOAD_MISSING}),
    "bag_payload_changed": Bad(broken(bags.payload_changed), V, {c.PAYLOAD_CHANGED}),
    "bag_payload_unexpected": Bad(broken(bags.payload_unexpected), V, {c.PAYLOAD_UNEXPECTED}),
    "bag_payload_not_in_every_manifest": Bad(broken(bags.not_in_every_manifest), V, {c.PAYLOAD_NOT_IN_EVERY_MANIFEST}),
    "bag_manifest_names_a_directory": Bad(broken(bags.manifest_names_directory), V, {c.PAYLOAD_IS_DIRECTORY}),
    "bag_tag_file_missing": Bad(broken(bags.tag_file_missing, keep_tags=True), V, {c.TAG_FILE_MISSING}),
    "bag_tag_file_changed": Bad(broken(bags.tag_file_changed, keep_tags=True), V, {c.TAG_FILE_CHANGED}),
    "bag_with_fetch_txt": Bad(broken(bags.fetch_txt), R, {c.BAG_HAS_FETCH}),
    "bag_symlink_in_payload": Bad(broken(bags.symlink_in_payload), R, {c.SYMLINK_OUTSIDE}),
    "bag_fifo_in_payload": Bad(broken(bags.fifo_in_payload), R, {c.SPECIAL_FILE}),
    "tar_traversal_towards_sentinel": Bad(archives.tar_traversal_towards_sentinel, R, {c.PATH_TRAVERSAL}),
    "tar_traversal_inside_a_path": Bad(archives.tar_traversal_inside_a_path, R, {c.PATH_TRAVERSAL}),
    "tar_absolute_into_sentinel": Bad(archives.tar_absolute_into_sentinel, R, {c.ABSOLUTE_PATH}),
    "tar_symlink_then_write_through_it": Bad(archives.tar_symlink_then_write_through_it, R, {c.SYMLINK_OUTSIDE}),
    "tar_symlink_inside": Bad(archives.tar_symlink_inside, R, {c.SYMLINK_INSIDE}),
    "tar_hard_link_member": Bad(archives.tar_hard_link_member, R, {c.HARD_LINK}),
    "tar_hard_link_outside": Bad(archives.tar_hard_link_outside, R, {c.HARD_LINK}),
    "tar_character_device": Bad(archives.tar_character_device, R, {c.SPECIAL_FILE}),
    "tar_fifo_member": Bad(archives.tar_fifo_member, R, {c.SPECIAL_FILE}),
    "tar_duplicate_member": Bad(archives.tar_duplicate_member, R, {c.DUPLICATE_MEMBER}),
    "tar_file_and_directory": Bad(archives.tar_file_and_directory, R, {c.FILE_AND_DIRECTORY}),
    "tar_invalid_utf8_name": Bad(archives.tar_invalid_utf8_name, R, {c.DELIVERY_NAME_NOT_UTF8}),
    "tar_carriage_return_in_name": Bad(archives.tar_carriage_return_in_name, R, {c.CONTROL_CHARACTER}),
    "tar_case_only_duplicates": Bad(archives.tar_case_only_duplicates, R, {c.DELIVERY_COLLIDE_CASE}),
    "tar_only_directories": Bad(archives.tar_only_directories, R, {c.NO_FILES}),
    "tgz_truncated": Bad(archives.tgz_truncated, R, {c.ARCHIVE_UNREADABLE}),
    "zip_absolute_into_sentinel": Bad(archives.zip_absolute_into_sentinel, R, {c.ABSOLUTE_PATH}),
    "zip_backslash_traversal": Bad(archives.zip_backslash_traversal, R, {c.PATH_TRAVERSAL}),
    "zip_traversal_towards_sentinel": Bad(archives.zip_traversal_towards_sentinel, R, {c.PATH_TRAVERSAL}),
    "zip_bomb": Bad(archives.zip_bomb, R, {c.COMPRESSION_RATIO}),
    "zip_members_just_under_a_mib": Bad(archives.zip_members_just_under_a_mib, R, {c.COMPRESSION_RATIO}),
    "tar_bz2_bomb": Bad(archives.tar_bz2_bomb, R, {c.COMPRESSION_RATIO}),
    "tgz_bomb": Bad(archives.tgz_bomb, R, {c.COMPRESSION_RATIO}),
    "zip_encrypted_member": Bad(archives.zip_encrypted_member, R, {c.ENCRYPTED_MEMBER}),
    "zip_unsupported_compression": Bad(archives.zip_unsupported_compression, R, {c.UNSUPPORTED_MEMBER}),
    "zip_symlink_member": Bad(archives.zip_symlink_member, R, {c.SYMLINK_OUTSIDE}),
    "zip_device_member": Bad(archives.zip_device_member, R, {c.SPECIAL_FILE}),
    "zip_duplicate_member": Bad(archives.zip_duplicate_member, R, {c.DUPLICATE_MEMBER}),
    "zip_local_header_disagrees": Bad(archives.zip_local_header_disagrees, R, {c.ARCHIVE_LAYOUT}),
    "zip_truncated": Bad(archives.zip_truncated, R, {c.ARCHIVE_UNREADABLE}),
    "zip_invalid_utf8_name": Bad(archives.zip_invalid_utf8_name, R, {c.DELIVERY_NAME_NOT_UTF8}),
    "zip_nfc_nfd_duplicates": Bad(archives.zip_nfc_nfd_duplicates, R, {c.DELIVERY_COLLIDE_NFC}),
}


# --- good deliveries with awkward names ---------------------------------------------------------

PERCENT_NAMES = {
    "100%.txt": b"a literal percent sign\n",
    "a%25b.txt": b"looks like an escape of %, is not\n",
    "line%0Abreak.txt": b"looks like an escaped LF, is not\n",
    "%%%.bin": b"\x00\x01\x02",
    "dir%/f%20.txt": b"percent in a directory name too\n",
}


def good_percent_directory(case: Path) -> tuple[Path, dict[str, bytes]]:
    return write_files(case / "delivery", PERCENT_NAMES), PERCENT_NAMES


def good_percent_tar(case: Path) -> tuple[Path, dict[str, bytes]]:
    case.mkdir(parents=True)
    path = case / "delivery.tar"
    with tarfile.open(path, "w") as tf:
        for name, data in PERCENT_NAMES.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path, PERCENT_NAMES


def good_percent_zip(case: Path) -> tuple[Path, dict[str, bytes]]:
    case.mkdir(parents=True)
    path = case / "delivery.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in PERCENT_NAMES.items():
            zf.writestr(name, data)
    return path, PERCENT_NAMES


def good_percent_bag(case: Path) -> tuple[Path, dict[str, bytes]]:
    return bags.make_bag(case, PERCENT_NAMES), PERCENT_NAMES


def good_lone_nfd_and_nfc_names(case: Path) -> tuple[Path, dict[str, bytes]]:
    files = {"cafe\u0301/r\u00e9sum\u00e9.txt": b"NFD directory, NFC file\n", "na\u0308ive.txt": b"NFD alone\n"}
    return write_files(case / "delivery", files), files


GOOD = {f.__name__: f for f in (good_percent_directory, good_percent_tar, good_percent_zip, good_percent_bag,
                                  good_lone_nfd_and_nfc_names)}
