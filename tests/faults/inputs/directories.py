"""Plain directory deliveries that must be refused."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .common import write_files


def _with_ok(case: Path, files: dict[str | bytes, bytes] | None = None) -> Path:
    return write_files(case / "delivery", {"ok/readme.txt": b"fine\n", **(files or {})})


def dir_symlink_inside(case: Path, sentinel: Path) -> Path:
    d = _with_ok(case)
    os.symlink("ok/readme.txt", d / "alias.txt")
    return d


def dir_symlink_to_sentinel_dir(case: Path, sentinel: Path) -> Path:
    d = _with_ok(case)
    os.symlink(sentinel, d / "escape")
    return d


def dir_dangling_symlink(case: Path, sentinel: Path) -> Path:
    d = _with_ok(case)
    os.symlink("../../nowhere/EVIL", d / "ok" / "dangling")
    return d


def dir_fifo(case: Path, sentinel: Path) -> Path:
    d = _with_ok(case)
    os.mkfifo(d / "ok" / "pipe")
    return d


def dir_socket(case: Path, sentinel: Path) -> Path:
    d = _with_ok(case)
    os.mknod(d / "ok" / "socket", 0o600 | stat.S_IFSOCK)
    return d


def dir_hard_link(case: Path, sentinel: Path) -> Path:
    d = _with_ok(case)
    os.link(d / "ok" / "readme.txt", d / "twin.txt")
    return d


def dir_nfc_nfd_directories(case: Path, sentinel: Path) -> Path:
    return _with_ok(case, {"caf\u00e9/a.txt": b"nfc", "cafe\u0301/b.txt": b"nfd"})


def dir_case_only_duplicates(case: Path, sentinel: Path) -> Path:
    return _with_ok(case, {"Report.PDF": b"upper", "report.pdf": b"lower"})


def dir_case_only_directories(case: Path, sentinel: Path) -> Path:
    return _with_ok(case, {"Vol1/a.txt": b"a", "vol1/b.txt": b"b"})


def dir_carriage_return_in_name(case: Path, sentinel: Path) -> Path:
    return _with_ok(case, {"bad\rname.txt": b"cr"})


def dir_line_feed_in_directory_name(case: Path, sentinel: Path) -> Path:
    return _with_ok(case, {"vol\n2/article.txt": b"lf"})


def dir_tab_in_name(case: Path, sentinel: Path) -> Path:
    return _with_ok(case, {"tab\there.txt": b"tab"})


def dir_invalid_utf8_file_name(case: Path, sentinel: Path) -> Path:
    return _with_ok(case, {b"latin1-\xe9t\xe9.txt": b"not utf-8"})


def dir_invalid_utf8_directory_name(case: Path, sentinel: Path) -> Path:
    return _with_ok(case, {b"\xff\xfe-dir/file.txt": b"x"})


def dir_backslash_in_name(case: Path, sentinel: Path) -> Path:
    return _with_ok(case, {"windows\\path.txt": b"x"})


def dir_path_too_long(case: Path, sentinel: Path) -> Path:
    return _with_ok(case, {"/".join(["x" * 200] * 5) + "/deep.txt": b"x"})


def dir_too_deep(case: Path, sentinel: Path) -> Path:
    return _with_ok(case, {"/".join(["d"] * 101) + "/bottom.txt": b"x"})


def dir_empty(case: Path, sentinel: Path) -> Path:
    (case / "delivery").mkdir(parents=True)
    return case / "delivery"


def dir_only_empty_directories(case: Path, sentinel: Path) -> Path:
    (case / "delivery" / "a" / "b").mkdir(parents=True)
    (case / "delivery" / "c").mkdir()
    return case / "delivery"


def not_a_delivery(case: Path, sentinel: Path) -> Path:
    case.mkdir(parents=True)
    (case / "delivery.bin").write_bytes(b"\x00\x01 neither a directory nor an archive " * 20)
    return case / "delivery.bin"
