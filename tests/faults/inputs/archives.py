"""Tar and zip deliveries that must be refused; zip headers are patched where zipfile cannot write the case."""

from __future__ import annotations

import bz2
import gzip
import io
import os
import stat
import tarfile
import warnings
import zipfile
from functools import cache
from pathlib import Path
from typing import Callable

from .common import escaping_names


def _tar(case: Path, members: list[tarfile.TarInfo | tuple[str, bytes]], name: str = "delivery.tar") -> Path:
    case.mkdir(parents=True, exist_ok=True)
    path = case / name
    with tarfile.open(path, "w:gz" if name.endswith(".tgz") else "w", format=tarfile.PAX_FORMAT) as tf:
        for member in [("ok/readme.txt", b"fine\n"), *members]:
            if isinstance(member, tarfile.TarInfo):
                tf.addfile(member)
                continue
            member_name, data = member
            info = tarfile.TarInfo(member_name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def _special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        info.devmajor, info.devminor = 1, 3
    return info


def tar_traversal_towards_sentinel(case: Path, sentinel: Path) -> Path:
    return _tar(case, [(name, b"pwned") for name in escaping_names(sentinel, "tar")])


def tar_traversal_inside_a_path(case: Path, sentinel: Path) -> Path:
    return _tar(case, [(f"vol/a/../../../../../../{sentinel.name}/EVIL-mid", b"pwned")])


def tar_absolute_into_sentinel(case: Path, sentinel: Path) -> Path:
    return _tar(case, [(f"{sentinel}/EVIL-absolute", b"pwned")])


def tar_symlink_then_write_through_it(case: Path, sentinel: Path) -> Path:
    return _tar(case, [_special("escape", tarfile.SYMTYPE, str(sentinel)), ("escape/EVIL-through-link", b"pwned")])


def tar_symlink_inside(case: Path, sentinel: Path) -> Path:
    return _tar(case, [_special("alias.txt", tarfile.SYMTYPE, "ok/readme.txt")])


def tar_hard_link_member(case: Path, sentinel: Path) -> Path:
    return _tar(case, [_special("twin.txt", tarfile.LNKTYPE, "ok/readme.txt")])


def tar_hard_link_outside(case: Path, sentinel: Path) -> Path:
    return _tar(case, [_special("passwd", tarfile.LNKTYPE, "/etc/passwd")])


def tar_character_device(case: Path, sentinel: Path) -> Path:
    return _tar(case, [_special("dev/null", tarfile.CHRTYPE)])


def tar_fifo_member(case: Path, sentinel: Path) -> Path:
    return _tar(case, [_special("pipe", tarfile.FIFOTYPE)])


def tar_duplicate_member(case: Path, sentinel: Path) -> Path:
    return _tar(case, [("vol/a.txt", b"first"), ("vol/a.txt", b"second")])


def tar_file_and_directory(case: Path, sentinel: Path) -> Path:
    return _tar(case, [("vol", b"a file"), ("vol/a.txt", b"and a directory")])


def tar_invalid_utf8_name(case: Path, sentinel: Path) -> Path:
    return _tar(case, [("caf\udce9.txt", b"latin-1 name")])


def tar_carriage_return_in_name(case: Path, sentinel: Path) -> Path:
    return _tar(case, [("bad\rname.txt", b"cr")])


def tar_case_only_duplicates(case: Path, sentinel: Path) -> Path:
    return _tar(case, [("vol/Index.XML", b"upper"), ("vol/index.xml", b"lower")])


def tar_only_directories(case: Path, sentinel: Path) -> Path:
    case.mkdir(parents=True)
    path = case / "delivery.tar"
    with tarfile.open(path, "w") as tf:
        tf.addfile(_special("empty", tarfile.DIRTYPE))
    return path


def tgz_truncated(case: Path, sentinel: Path) -> Path:
    path = _tar(case, [(f"vol/{i}.bin", os.urandom(20_000)) for i in range(5)], name="delivery.tgz")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


# --- zip archives ------------------------------------------------------------------------------


def _zip(case: Path, members: list[zipfile.ZipInfo | tuple[str | zipfile.ZipInfo, bytes]], *,
         compression: int = zipfile.ZIP_DEFLATED) -> Path:
    case.mkdir(parents=True, exist_ok=True)
    path = case / "delivery.zip"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate names some cases want
        with zipfile.ZipFile(path, "w", compression) as zf:
            zf.writestr("ok/readme.txt", b"fine\n")
            for name, data in members:
                zf.writestr(name, data)
    return path


def _unix_member(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = mode << 16
    return info


def _patch_zip(path: Path, member: str, *, local: Callable[[bytearray, int], None],
               central: Callable[[bytearray, int], None]) -> None:
    """Change the raw headers of ``member``: ``local(data, offset)`` and ``central(data, offset)``."""
    with zipfile.ZipFile(path) as zf:
        local_offset = zf.getinfo(member).header_offset
        at = zf.start_dir
    data = bytearray(path.read_bytes())
    name = member.encode()
    while data[at + 46: at + 46 + len(name)] != name:  # walk the central directory to the member's entry
        name_len, extra_len, comment_len = (int.from_bytes(data[at + i: at + i + 2], "little") for i in (28, 30, 32))
        at += 46 + name_len + extra_len + comment_len
    local(data, local_offset)
    central(data, at)
    path.write_bytes(bytes(data))


def zip_absolute_into_sentinel(case: Path, sentinel: Path) -> Path:
    return _zip(case, [(f"{sentinel}/EVIL-zip-absolute", b"pwned")])


def zip_backslash_traversal(case: Path, sentinel: Path) -> Path:
    return _zip(case, [(f"..\\..\\..\\..\\{sentinel.name}\\EVIL-backslash", b"pwned")])


def zip_traversal_towards_sentinel(case: Path, sentinel: Path) -> Path:
    return _zip(case, [(name, b"pwned") for name in escaping_names(sentinel, "zip")])


def zip_bomb(case: Path, sentinel: Path) -> Path:
    return _zip(case, [("bomb.bin", bytes(8 * 1024 * 1024))])


def zip_members_just_under_a_mib(case: Path, sentinel: Path) -> Path:
    """No member reaches the 1 MiB a per-member ratio check starts at: 64 MiB of zeros in a 70 KB zip."""
    return _zip(case, [(f"part-{i:02d}.bin", bytes(1024 * 1024 - 1)) for i in range(64)])


BOMB_RUN = 64 * 1024 * 1024


@cache
def _compressed_zeros(compress: Callable[[bytes], bytes]) -> bytes:
    return compress(bytes(BOMB_RUN))


def tar_bomb(path: Path, expanded: int, compress: Callable[[bytes], bytes]) -> Path:
    """A tar holding one member of ``expanded`` zero bytes, as concatenated compressed streams.

    gzip, bzip2 and xz readers read on from one stream into the next, so a
    bomb of any size is one compressed run of zeros repeated, not a
    compression of all of it.
    """
    assert expanded % BOMB_RUN == 0
    header = tarfile.TarInfo("zeros.bin")
    header.size = expanded
    path.parent.mkdir(parents=True, exist_ok=True)
    run = _compressed_zeros(compress)
    with open(path, "wb") as out:
        out.write(compress(header.tobuf(format=tarfile.GNU_FORMAT)))
        for _ in range(expanded // BOMB_RUN):
            out.write(run)
        out.write(compress(bytes(2 * tarfile.BLOCKSIZE)))
    return path


def tar_bz2_bomb(case: Path, sentinel: Path) -> Path:
    """256 MiB of zeros in a few hundred bytes: one was preserved on three nodes before the ratio check."""
    return tar_bomb(case / "delivery.tar.bz2", 4 * BOMB_RUN, bz2.compress)


def tgz_bomb(case: Path, sentinel: Path) -> Path:
    return tar_bomb(case / "delivery.tgz", 4 * BOMB_RUN, gzip.compress)


def zip_encrypted_member(case: Path, sentinel: Path) -> Path:
    path = _zip(case, [("secret.pdf", b"%PDF-1.7 encrypted, supposedly\n")])

    def set_flag(offset: int) -> Callable[[bytearray, int], None]:
        def patch(data: bytearray, at: int) -> None:
            data[at + offset] |= 0x01

        return patch

    _patch_zip(path, "secret.pdf", local=set_flag(6), central=set_flag(8))
    return path


def zip_unsupported_compression(case: Path, sentinel: Path) -> Path:
    path = _zip(case, [("packed.bin", b"compressed with an exotic method " * 50)])

    def method(offset: int) -> Callable[[bytearray, int], None]:
        def patch(data: bytearray, at: int) -> None:
            data[at + offset: at + offset + 2] = (98).to_bytes(2, "little")  # PPMd

        return patch

    _patch_zip(path, "packed.bin", local=method(8), central=method(10))
    return path


def zip_symlink_member(case: Path, sentinel: Path) -> Path:
    return _zip(case, [(_unix_member("escape", stat.S_IFLNK | 0o777), str(sentinel).encode())])


def zip_device_member(case: Path, sentinel: Path) -> Path:
    return _zip(case, [(_unix_member("dev-null", stat.S_IFCHR | 0o666), b"")])


def zip_duplicate_member(case: Path, sentinel: Path) -> Path:
    return _zip(case, [("vol/a.txt", b"first"), ("vol/a.txt", b"second")])


def zip_local_header_disagrees(case: Path, sentinel: Path) -> Path:
    path = _zip(case, [("vol/abc.txt", b"the central directory says abc")])

    def rename(data: bytearray, at: int) -> None:
        name_at = at + 30
        data[name_at: name_at + 11] = b"vol/xyz.txt"

    _patch_zip(path, "vol/abc.txt", local=rename, central=lambda data, at: None)
    return path


def zip_truncated(case: Path, sentinel: Path) -> Path:
    path = _zip(case, [(f"vol/{i}.bin", os.urandom(10_000)) for i in range(4)], compression=zipfile.ZIP_STORED)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def zip_invalid_utf8_name(case: Path, sentinel: Path) -> Path:
    path = _zip(case, [("vol/nameXX.txt", b"a name that is not UTF-8")])

    def latin1(data: bytearray, at: int, name_at: int) -> None:
        index = data.index(b"nameXX", at + name_at)
        data[index + 4: index + 6] = b"\xe9\xff"

    _patch_zip(path, "vol/nameXX.txt", local=lambda d, at: latin1(d, at, 30), central=lambda d, at: latin1(d, at, 46))
    return path


def zip_nfc_nfd_duplicates(case: Path, sentinel: Path) -> Path:
    return _zip(case, [("caf\u00e9.txt", b"nfc"), ("cafe\u0301.txt", b"nfd")])
