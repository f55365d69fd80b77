"""Compression bombs: decompressed bytes are counted as they are produced and stopped at the limits.

The 4 GiB bombs are concatenated compressed streams (see
:func:`tests.faults.inputs.archives.tar_bomb`): each is built from one
compressed 64 MiB run of zeros, not by compressing 4 GiB.
"""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import os
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import pytest

from preservation.bagit import DeliveryLimits, create_bag, open_delivery
from preservation.errors import DeliveryRejected
from preservation.ingest import delivery_limits
from preservation.policy import DeliveryPolicy, load_policy
from preservation.settings import DEFAULT_POLICY

from ..faults.inputs.archives import BOMB_RUN, tar_bomb
from .builders import INFO, tar_of, zip_of

GIB = 1024**3
MIB = 1024**2
COMPRESSORS = {"tar.gz": gzip.compress, "tar.bz2": bz2.compress, "tar.xz": lzma.compress}


@pytest.fixture(scope="session")
def bombs(tmp_path_factory) -> dict[str, Path]:
    """One 4 GiB tar bomb per compression, built once per session."""
    base = tmp_path_factory.mktemp("bombs")
    started = time.perf_counter()
    built = {suffix: tar_bomb(base / f"bomb.{suffix}", 4 * GIB, compress) for suffix, compress in COMPRESSORS.items()}
    print(f"\n4 GiB bombs built in {time.perf_counter() - started:.1f} s: "
          + ", ".join(f"{p.name} {p.stat().st_size} bytes" for p in built.values()))
    return built


_REFUSE = r"""
import json, sys
from preservation.bagit import create_bag, open_delivery
from preservation.errors import DeliveryRejected

source, dest = sys.argv[1], sys.argv[2]
with open_delivery(source) as delivery:
    findings = delivery.check()
    try:
        create_bag(delivery, dest, {"External-Identifier": "bomb"}, fsync=False)
        refused = []
    except DeliveryRejected as e:
        refused = [f.to_dict() for f in e.findings]
with open("/proc/self/status") as status:
    peak = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))
print(json.dumps({"findings": findings.to_list(), "refused": refused, "peak_rss": peak}))
"""


@pytest.mark.parametrize("suffix", list(COMPRESSORS))
def test_a_4_gib_tar_bomb_is_refused_early_in_little_memory(bombs, tmp_path: Path, suffix: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _REFUSE, str(bombs[suffix]), str(tmp_path / "bag")],
        check=True, capture_output=True, text=True, timeout=120,
    )
    report = json.loads(out.stdout)
    codes = [f["code"] for f in report["findings"]]
    assert codes == ["DLV013"], report
    produced = report["findings"][0]["params"]["produced"]
    # one read past the ratio limit at most; deflate cannot pass ~1030:1, so a 4 GiB gzip bomb is 4 MB
    # and the default ratio of 64 stops it near 270 MB
    assert produced <= 64 * bombs[suffix].stat().st_size + MIB
    assert produced < 300 * MIB, f"{produced} bytes decompressed before the refusal"
    print(f"\n{suffix} bomb: refused after {produced} bytes, peak RSS {report['peak_rss']} bytes")
    assert report["peak_rss"] < 150 * 10**6, f"peak RSS {report['peak_rss']} bytes"
    assert [f["code"] for f in report["refused"]] == ["DLV013"]
    assert os.listdir(tmp_path) == [], "nothing is left where the bag would have been"


def test_a_bomb_swapped_in_after_the_check_is_stopped_while_it_is_bagged(tmp_path: Path) -> None:
    path = tar_of(tmp_path / "d.tar.bz2", [("ok.txt", b"fine")], mode="w:bz2")
    (tmp_path / "out").mkdir()
    with open_delivery(path) as delivery:
        assert delivery.check().ok
        tar_bomb(tmp_path / "bomb.tar.bz2", 4 * BOMB_RUN, bz2.compress)
        os.replace(tmp_path / "bomb.tar.bz2", path)
        with pytest.raises(DeliveryRejected) as refused:
            create_bag(delivery, tmp_path / "out" / "bag", INFO, fsync=False)
    assert [f.code for f in refused.value.findings] == ["DLV013"]
    assert os.listdir(tmp_path / "out") == []


def zip_of_members_under_a_mib(path: Path, members: int) -> Path:
    """The zip that passed a per-member ratio check: every member one byte short of 1 MiB of zeros."""
    block = bytes(MIB - 1)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(members):
            zf.writestr(f"part-{i:04d}.bin", block)
    return path


def test_a_zip_of_members_just_under_a_mib_is_refused_for_the_whole_archive(tmp_path: Path) -> None:
    path = zip_of_members_under_a_mib(tmp_path / "d.zip", 64)
    with open_delivery(path) as delivery:
        findings = delivery.check()
    assert findings.codes() == ["DLV013"], findings.to_list()
    assert findings.errors[0].params["produced"] == 64 * (MIB - 1)


def test_a_zip_bomb_that_passes_a_lenient_check_is_stopped_while_it_is_bagged(tmp_path: Path) -> None:
    """The bag pass counts what zipfile actually produces, against the limits of the delivery."""
    path = zip_of_members_under_a_mib(tmp_path / "d.zip", 8)
    (tmp_path / "out").mkdir()
    with open_delivery(path, limits=DeliveryLimits(max_compression_ratio=10_000)) as delivery:
        assert delivery.check().ok
        delivery.limits = DeliveryLimits(max_compression_ratio=100)
        with pytest.raises(DeliveryRejected) as refused:
            create_bag(delivery, tmp_path / "out" / "bag", INFO, fsync=False)
    assert [f.code for f in refused.value.findings] == ["DLV013"]
    assert os.listdir(tmp_path / "out") == []


def test_the_expanded_bytes_cap_stops_an_archive_that_is_not_a_bomb(tmp_path: Path) -> None:
    data = os.urandom(3 * MIB)
    path = tar_of(tmp_path / "d.tgz", [("random.bin", data)], mode="w:gz")
    with open_delivery(path, limits=DeliveryLimits(max_total_bytes=2 * MIB)) as delivery:
        findings = delivery.check()
    assert "DLV014" in findings.codes(), findings.to_list()


@pytest.mark.parametrize("mode", ["w:gz", "w:bz2", "w:xz", "w"])
def test_ordinary_archives_still_bag(tmp_path: Path, mode: str) -> None:
    files = [("text.txt", b"plain text, a little repetitive " * 4000), ("random.bin", os.urandom(200_000))]
    path = tar_of(tmp_path / "d.tar", files, mode=mode)
    with open_delivery(path) as delivery:
        assert delivery.check().ok
        result = create_bag(delivery, tmp_path / "bag", INFO, fsync=False)
    assert result.payload_files == 2


def test_the_policy_sets_the_archive_limits(tmp_path: Path) -> None:
    default = load_policy(DEFAULT_POLICY)
    assert delivery_limits(default) == DeliveryLimits(max_compression_ratio=64, max_total_bytes=4 * 1024**4)
    strict = default.model_copy(update={"delivery": DeliveryPolicy(max_expansion_ratio=4)})
    # about 7:1 under gzip: each random block comes four times
    text = b"".join(os.urandom(2000).hex().encode() * 4 for _ in range(200))
    path = tar_of(tmp_path / "d.tgz", [("text.txt", text)], mode="w:gz")
    with open_delivery(path, limits=delivery_limits(strict)) as delivery:
        assert delivery.check().codes() == ["DLV013"]
    with open_delivery(path, limits=delivery_limits(default)) as delivery:
        assert delivery.check().ok


def test_a_tar_of_many_empty_files_is_not_a_bomb(tmp_path: Path) -> None:
    """Headers and padding compress past 100:1; they are the archive's framing, not its content."""
    path = tar_of(tmp_path / "d.tar.bz2", [(f"vol/article-{i:05d}.xml", b"") for i in range(4000)], mode="w:bz2")
    assert os.path.getsize(path) * 100 < 4000 * 512
    with open_delivery(path) as delivery:
        assert delivery.check().ok


def _tar_with(path: Path, info: tarfile.TarInfo, data: bytes, compress=gzip.compress) -> Path:
    info.size = len(data)
    body = info.tobuf(format=tarfile.PAX_FORMAT) + data + bytes(-len(data) % tarfile.BLOCKSIZE)
    path.write_bytes(compress(body + bytes(2 * tarfile.BLOCKSIZE)))
    return path


def test_an_extended_header_too_big_to_hold_is_refused_before_it_is_read(tmp_path: Path) -> None:
    """tarfile reads a pax header whole: 2 MiB of hex (no bomb by ratio) is refused, not read."""
    info = tarfile.TarInfo("a.txt")
    info.pax_headers = {"comment": os.urandom(MIB).hex()}
    path = _tar_with(tmp_path / "d.tgz", info, b"hi")
    (tmp_path / "out").mkdir()
    with open_delivery(path) as delivery:
        assert "DLV018" in delivery.check().codes()
        with pytest.raises(DeliveryRejected):
            create_bag(delivery, tmp_path / "out" / "bag", INFO, fsync=False)
    assert os.listdir(tmp_path / "out") == []
    renamed = tmp_path / "delivery.bin"
    os.replace(path, renamed)
    assert open_delivery(renamed).kind == "tar", "recognised as a tar, so its check says why it is refused"


def test_sparse_members_are_refused_in_every_format(tmp_path: Path) -> None:
    """A sparse map is read into a list of numbers however long it is: sparse members are not supported."""
    gnu = tarfile.TarInfo("old-gnu.bin")
    gnu.type = tarfile.GNUTYPE_SPARSE
    pax = tarfile.TarInfo("pax-1.0.bin")
    pax.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0", "GNU.sparse.name": "pax-1.0.bin",
                       "GNU.sparse.realsize": "1000000"}
    pax_01 = tarfile.TarInfo("pax-0.1.bin")
    pax_01.pax_headers = {"GNU.sparse.map": "0,2", "GNU.sparse.size": "1000000"}
    for info, data in ((gnu, b""), (pax, b"1\n0\n2\nhi"), (pax_01, b"hi")):
        path = _tar_with(tmp_path / f"{info.name}.tgz", info, data)
        with open_delivery(path) as delivery:
            assert "DLV018" in delivery.check().codes(), info.name


@pytest.mark.parametrize("kind", ["tgz", "zip"])
def test_an_archive_over_the_cap_is_reported_once(tmp_path: Path, kind: str) -> None:
    files = [("a.bin", os.urandom(3 * MIB)), ("b.bin", os.urandom(MIB))]
    path = (zip_of(tmp_path / "d.zip", files, zipfile.ZIP_STORED) if kind == "zip"
            else tar_of(tmp_path / "d.tgz", files, mode="w:gz"))
    with open_delivery(path, limits=DeliveryLimits(max_total_bytes=2 * MIB)) as delivery:
        assert delivery.check().codes() == ["DLV014"]
