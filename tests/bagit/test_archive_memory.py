"""Checking an archive costs memory per member only in a temporary file: 300,000 tar members, 200,000 zip
members, bounded peak."""

from __future__ import annotations

import bz2
import json
import subprocess
import sys
import tarfile
from pathlib import Path

from .rawzip import many_member_zip

MEMBERS = 300_000
BYTES_PER_MEMBER = 100
SLACK = 8 * 1024 * 1024
"""What the check holds whatever the member count: SQLite's page cache and sorter (2 MiB each at
most, then they spill to the temporary file), the bzip2 decompressor's block (about 3.5 MiB) and
the interpreter's own arenas."""


def many_member_tar_bz2(path: Path, members: int) -> Path:
    """``members`` empty files in directories of 1,000, headers patched from one template (fast to build)."""
    template = tarfile.TarInfo("vol-0000/article-0000000.xml")
    template.mtime = 1_700_000_000
    base = bytearray(template.tobuf(format=tarfile.USTAR_FORMAT))
    base[148:156] = b" " * 8  # the checksum is computed over spaces in its own field
    base_sum = sum(base) - sum(base[4:8]) - sum(base[17:24])
    compressor = bz2.BZ2Compressor(1)
    with open(path, "wb") as out:
        batch = bytearray()
        for i in range(members):
            volume, article = b"%04d" % (i // 1000), b"%07d" % i
            header = bytearray(base)
            header[4:8], header[17:24] = volume, article
            header[148:156] = b"%06o\x00 " % (base_sum + sum(volume) + sum(article))
            batch += header
            if len(batch) >= 4 * 1024 * 1024:
                out.write(compressor.compress(bytes(batch)))
                batch.clear()
        batch += bytes(2 * tarfile.BLOCKSIZE)
        out.write(compressor.compress(bytes(batch)))
        out.write(compressor.flush())
    return path


_CHECK = r"""
import json, sys
from preservation.bagit import open_delivery
import preservation.bagit.archives  # loaded before the baseline is read

def status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key + ":"))

with open_delivery(sys.argv[1]) as delivery:
    baseline = status("VmRSS")
    findings = delivery.check()
    peak = status("VmHWM")
print(json.dumps({"codes": findings.codes(), "files": delivery.totals.files, "growth": peak - baseline}))
"""


def test_checking_300000_members_needs_at_most_100_bytes_each(tmp_path: Path) -> None:
    path = many_member_tar_bz2(tmp_path / "many.tar.bz2", MEMBERS)
    out = subprocess.run([sys.executable, "-c", _CHECK, str(path)], check=True, capture_output=True, text=True,
                         timeout=300)
    report = json.loads(out.stdout)
    assert report["codes"] == [] and report["files"] == MEMBERS, report
    print(f"\n{MEMBERS} members checked: peak RSS grew {report['growth']} bytes "
          f"({report['growth'] / MEMBERS:.0f} per member)")
    assert report["growth"] < BYTES_PER_MEMBER * MEMBERS + SLACK


ZIP_MEMBERS = 200_000

_CHECK_AND_READ_ZIP = r"""
import json, sys
from preservation.bagit import open_delivery
import preservation.bagit.archives  # loaded before the baseline is read

def status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key + ":"))

with open_delivery(sys.argv[1]) as delivery:
    baseline = status("VmRSS")
    findings = delivery.check()
    read = 0
    for entry in delivery.entries():
        with entry.open() as member:
            member.read()
        read += 1
    peak = status("VmHWM")
print(json.dumps({"codes": findings.codes(), "files": delivery.totals.files, "read": read, "growth": peak - baseline}))
"""

_ZIPFILE = r"""
import json, sys, zipfile

def status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key + ":"))

baseline = status("VmRSS")
with zipfile.ZipFile(sys.argv[1]) as archive:
    members = len(archive.infolist())
    peak = status("VmHWM")
print(json.dumps({"members": members, "growth": peak - baseline}))
"""


def test_checking_and_reading_200000_zip_members_needs_at_most_100_bytes_each(tmp_path: Path) -> None:
    """The check and every member read, as the bag pass reads them (the bag writer's own records aside).

    zipfile.ZipFile, which the check used before, is measured on the same
    archive as the reference: it must fail the bound, or this test proves
    nothing.
    """
    path = many_member_zip(tmp_path / "many.zip", ZIP_MEMBERS)

    def run(script: str) -> dict:
        out = subprocess.run([sys.executable, "-c", script, str(path)], check=True, capture_output=True, text=True,
                             timeout=300)
        return json.loads(out.stdout)

    report = run(_CHECK_AND_READ_ZIP)
    assert report["codes"] == [] and report["files"] == report["read"] == ZIP_MEMBERS, report
    reference = run(_ZIPFILE)
    assert reference["members"] == ZIP_MEMBERS
    print(f"\n{ZIP_MEMBERS} zip members checked and read: peak RSS grew {report['growth']} bytes "
          f"({report['growth'] / ZIP_MEMBERS:.0f} per member); zipfile.ZipFile alone grew {reference['growth']} "
          f"({reference['growth'] / ZIP_MEMBERS:.0f} per member)")
    assert report["growth"] < BYTES_PER_MEMBER * ZIP_MEMBERS + SLACK
    assert reference["growth"] > BYTES_PER_MEMBER * ZIP_MEMBERS + SLACK
