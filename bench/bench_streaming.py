"""Verified streaming (issue 22 point 4): first byte, concurrent downloads against an unverified file server, and
what the chunk digests cost at ingest.

    python -m bench.bench_streaming [--file-mib 1024] [--files 8] [--downloads 8] [--repeat 3] [--ingest-scale 1]
                                    [--write-docs]

* **First byte**: ``curl``'s time to the first byte of a file of ``--file-mib`` through the access service
  (uvicorn on 127.0.0.1, an API key, every chunk checked against its digest before it is sent), beside the
  same file from a Starlette ``FileResponse`` server.  Target: < 100 ms.
* **Concurrent downloads**: ``--downloads`` at once (default one per file; one ``curl`` each, to /dev/null),
  through each server in turn, the same files (the reference serves one node's copies of them).  Target:
  the access service at ≥ 0.8 of the reference's throughput.
* **Ingest cost**: ingest of corpus L (three verified copies, each run in a child process of its own) with
  and without the chunk digest analyser, taking turns.  Target: at most 10 % slower.

Every measurement is repeated ``--repeat`` times, the two contenders taking turns; the ratios of each pair
are reported with their spread, and the load average before and after.  ``--write-docs`` puts the
section in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.corpora import OUT_DIR, ensure_corpus, human_size, iter_files, read_through
from bench.homes import COLLECTION, fresh_repo
from bench.measure import REPO_ROOT, run_child

DOCS = REPO_ROOT / "docs" / "benchmarks.md"
HEADING = "## Verified streaming"
ROOT = OUT_DIR / "streaming"
OPEN_COLLECTION = "open-bench"
FIRST_BYTE_TARGET = 0.100
THROUGHPUT_TARGET = 0.8
INGEST_TARGET = 1.10
MIB = 1024 * 1024


# --- servers (each run as `python -m bench.bench_streaming serve-…` in a process of its own) -------------------

def serve_ours(home: str, port: int) -> None:
    from preservation.access.web.auth import ServiceConfig
    from preservation.access.web.server import build_server
    from preservation.repository import Repository

    repo = Repository.open(Path(home))
    build_server(repo, ServiceConfig(secret="bench-" + "s" * 40, cookie_secure=False), "127.0.0.1", port,
                 log_level="warning").run()


def serve_reference(root: str, port: int) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import FileResponse
    from starlette.routing import Route

    base = Path(root)

    async def one(request):
        return FileResponse(base / request.path_params["name"])

    app = Starlette(routes=[Route("/files/{name}", one)])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One server process on a free port, stopped at the end of the block."""

    def __init__(self, *args: str) -> None:
        self.port = _free_port()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
        self.process = subprocess.Popen([sys.executable, "-m", "bench.bench_streaming", *args, str(self.port)], env=env)

    def __enter__(self) -> "Server":
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}")
            if subprocess.run(["curl", "-s", "-o", "/dev/null", f"http://127.0.0.1:{self.port}/"]).returncode == 0:
                return self
            time.sleep(0.2)
        raise RuntimeError("server did not start")

    def __exit__(self, *exc) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# --- clients ------------------------------------------------------------------------------------------------------

def _curl(url: str, headers: dict[str, str]) -> list[str]:
    argv = ["curl", "-s", "-S", "-o", "/dev/null", "--fail", "-w", "%{time_starttransfer} %{size_download}\n"]
    for k, v in headers.items():
        argv += ["-H", f"{k}: {v}"]
    return argv + [url]


def first_byte(url: str, headers: dict[str, str], size: int) -> float:
    """Seconds to the first byte of one download (the whole file is fetched and its size checked)."""
    out = subprocess.run(_curl(url, headers), capture_output=True, text=True, check=True).stdout.split()
    if int(out[1]) != size:
        raise RuntimeError(f"{url}: {out[1]} bytes, expected {size}")
    return float(out[0])


def concurrent(urls: list[str], headers: dict[str, str], size: int) -> float:
    """Seconds from starting every download at once to the last one's end."""
    start = time.perf_counter()
    procs = [subprocess.Popen(_curl(u, headers), stdout=subprocess.PIPE, text=True) for u in urls]
    outs = [p.communicate()[0].split() for p in procs]
    seconds = time.perf_counter() - start
    for p, out in zip(procs, outs):
        if p.returncode != 0 or int(out[1]) != size:
            raise RuntimeError(f"a download failed ({p.returncode}, {out})")
    return seconds


# --- set-up -------------------------------------------------------------------------------------------------------

def delivery(file_mib: int, files: int) -> Path:
    """``files`` files of random bytes, ``file_mib`` each (made once, kept for later runs)."""
    root = ROOT / f"delivery-{files}x{file_mib}"
    done = root / ".complete"
    if not done.exists():
        shutil.rmtree(root, ignore_errors=True)
        (root / "payload").mkdir(parents=True)
        for i in range(files):
            with open(root / "payload" / f"f{i}.bin", "wb") as f:
                for _ in range(file_mib):
                    f.write(os.urandom(MIB))
        done.write_text("", encoding="utf-8")
    return root / "payload"


def prepare(file_mib: int, files: int) -> tuple[Path, str, str, str]:
    """A home with the delivery ingested (three copies) into an open collection: (home, package id, key, copy dir)."""
    from preservation.access import accounts
    from preservation.collection import add_collection
    from preservation.ingest import ingest

    home = ROOT / "home"
    repo = fresh_repo(home)
    try:
        add_collection(repo, OPEN_COLLECTION, "Open bench data", publisher="Bench", access_mode="open")
        result = ingest(repo, delivery(file_mib, files), OPEN_COLLECTION, name="streaming")
        if result["state"] != "preserved":
            raise RuntimeError(f"ingest left the package {result['state']}")
        chunked = result.get("content", {}).get("chunks", {}).get("files")
        if chunked != files:
            raise RuntimeError(f"{chunked} files got chunk digests, expected {files}")
        accounts.add_library(repo, "bench", "Bench Library")
        accounts.add_user(repo, "bench", "reader", "bench reader password 1")
        key = accounts.create_token(repo, "reader", name="bench", scope="read")["token"]
    finally:
        repo.close()
    package = result["package_id"]
    copy = home / "nodes" / "uni-pku" / package / "data"
    return home, package, key, str(copy)


# --- ingest cost ------------------------------------------------------------------------------------------------

def ingest_one(delivery: str, home: str, chunks: bool) -> dict:
    """Child entry: ingest ``delivery`` into a fresh home (three copies), with the chunk analyser or none."""
    from preservation.chunks import ChunkAnalyser
    from preservation.ingest import ingest

    repo = fresh_repo(Path(home))
    read_through(list(iter_files(Path(delivery))))
    start = time.perf_counter()
    result = ingest(repo, delivery, COLLECTION, analysers=[ChunkAnalyser()] if chunks else [])
    seconds = time.perf_counter() - start
    repo.close()
    shutil.rmtree(home, ignore_errors=True)
    return {"seconds": seconds, "files": result["files"], "bytes": result["bytes"], "state": result["state"]}


def ingest_cost(scale: float, repeat: int) -> dict:
    corpus = ensure_corpus("L", scale)
    runs: dict[bool, list] = {False: [], True: []}
    for _ in range(repeat):
        for chunks in (False, True):
            runs[chunks].append(run_child("bench.bench_streaming:ingest_one", delivery=str(corpus.path),
                                          home=str(ROOT / "ingest-home"), chunks=chunks))
    ratios = [on.seconds / off.seconds for off, on in zip(runs[False], runs[True])]
    return {"corpus": corpus.label, "bytes": corpus.total_bytes,
            "without": [round(m.seconds, 2) for m in runs[False]], "with": [round(m.seconds, 2) for m in runs[True]],
            "cpu_without": [round(m.cpu, 2) for m in runs[False]], "cpu_with": [round(m.cpu, 2) for m in runs[True]],
            "ratios": [round(r, 3) for r in ratios],
            "best_ratio": round(min(m.seconds for m in runs[True]) / min(m.seconds for m in runs[False]), 3)}


# --- the run --------------------------------------------------------------------------------------------------------

def load() -> str:
    return ", ".join(f"{x:.1f}" for x in os.getloadavg())


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} (min {min(values):.3f}, max {max(values):.3f})"


def run(file_mib: int, files: int, repeat: int, ingest_scale: float | None, downloads: int | None = None) -> dict:
    """``downloads`` at once (default: one per file) go to the files in turn."""
    load_before = load()
    home, package, key, copy = prepare(file_mib, files)
    size = file_mib * MIB
    headers = {"Authorization": f"Bearer {key}"}
    downloads = downloads or files
    names = [f"f{i % files}.bin" for i in range(downloads)]
    out: dict = {"file_mib": file_mib, "files": files, "downloads": downloads, "repeat": repeat,
                 "load_before": load_before}
    read_through([str(Path(copy) / n) for n in sorted(set(names))])
    with Server("serve-ours", str(home)) as ours, Server("serve-reference", copy) as ref:
        ours_urls = [f"http://127.0.0.1:{ours.port}/api/v1/packages/{package}/files/data/{n}" for n in names]
        ref_urls = [f"http://127.0.0.1:{ref.port}/files/{n}" for n in names]
        # the first request a server process answers also pays for its lazy set-up (imports, the catalog's
        # connection): reported apart, then each server is warmed by one download of another file
        cold = first_byte(ours_urls[-1], headers, size)
        first_byte(ref_urls[-1], {}, size)
        fb_ours, fb_ref, t_ours, t_ref = [], [], [], []
        for _ in range(repeat):
            fb_ours.append(first_byte(ours_urls[0], headers, size))
            fb_ref.append(first_byte(ref_urls[0], {}, size))
        for _ in range(repeat):
            t_ref.append(concurrent(ref_urls, {}, size))
            t_ours.append(concurrent(ours_urls, headers, size))
            print(f"   {downloads} downloads: reference {t_ref[-1]:.2f} s, ours {t_ours[-1]:.2f} s", flush=True)
    ratios = [r / o for r, o in zip(t_ref, t_ours)]
    out.update(first_byte_cold=cold, first_byte_ours=fb_ours, first_byte_reference=fb_ref, seconds_ours=t_ours,
               seconds_reference=t_ref, ratios=ratios, mib_per_s_ours=[downloads * file_mib / t for t in t_ours],
               mib_per_s_reference=[downloads * file_mib / t for t in t_ref])
    shutil.rmtree(home, ignore_errors=True)
    if ingest_scale is not None:
        out["ingest"] = ingest_cost(ingest_scale, repeat)
    out["load_after"] = load()
    return out


def section(r: dict, command: str) -> str:
    fb = max(r["first_byte_ours"])
    lines = [
        HEADING,
        "",
        f"`{command}`: {r['files']} files of {r['file_mib']} MiB ingested (three copies on local filesystem nodes) "
        "into an open collection, then served by the access service (uvicorn, one process, every 1 MiB chunk "
        "checked against its BLAKE3 digest before it is sent) and by a Starlette `FileResponse` server over one "
        "node's copies of the same files (nothing checked), both on 127.0.0.1, downloaded with `curl` to "
        f"/dev/null, the two taking turns, {r['repeat']} runs each.  Load average (1, 5, 15 min) before "
        f"{r['load_before']}, after {r['load_after']}: other work shared the two cores throughout.",
        "",
        "| measure | access service | FileResponse | ratio (median, spread) | target |",
        "|---|---|---|---|---|",
        f"| first byte of a {r['file_mib']} MiB file | {', '.join(f'{x * 1000:.0f}' for x in r['first_byte_ours'])} ms "
        f"| {', '.join(f'{x * 1000:.0f}' for x in r['first_byte_reference'])} ms | | < 100 ms: "
        f"{'met' if fb < FIRST_BYTE_TARGET else '**missed**'} (slowest {fb * 1000:.0f} ms; a fresh server's very first "
        f"request: {r['first_byte_cold'] * 1000:.0f} ms) |",
        f"| {r['downloads']} concurrent downloads ({r['files']} distinct files) "
        f"| {', '.join(f'{x:.0f}' for x in r['mib_per_s_ours'])} MiB/s "
        f"| {', '.join(f'{x:.0f}' for x in r['mib_per_s_reference'])} MiB/s | {spread(r['ratios'])} "
        f"| ≥ {THROUGHPUT_TARGET}: {'met' if statistics.median(r['ratios']) >= THROUGHPUT_TARGET else '**missed**'} "
        "(median) |",
    ]
    if "ingest" in r:
        i = r["ingest"]
        lines.append(
            f"| ingest of {i['corpus']} ({human_size(i['bytes'])}), with / without chunk digests "
            f"| {', '.join(map(str, i['with']))} s (CPU {', '.join(map(str, i['cpu_with']))} s) "
            f"| without: {', '.join(map(str, i['without']))} s (CPU {', '.join(map(str, i['cpu_without']))} s) "
            f"| {spread(i['ratios'])}; fastest against fastest {i['best_ratio']:.3f}; CPU (median) "
            f"{statistics.median(i['cpu_with']) / statistics.median(i['cpu_without']):.3f} "
            f"| ≤ {INGEST_TARGET:.2f}: {'met' if i['best_ratio'] <= INGEST_TARGET else '**missed**'} (fastest) |")
    return "\n".join(lines) + "\n"


def write_docs(text: str, docs: Path = DOCS) -> None:
    """Put ``text`` in place of the section already in ``docs`` (up to the next heading), or at its end."""
    current = docs.read_text(encoding="utf-8") if docs.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(HEADING) + r"\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(current):
        updated = pattern.sub(lambda _: text + "\n", current).rstrip("\n") + "\n"
    else:
        updated = current.rstrip("\n") + "\n\n" + text
    docs.write_text(updated, encoding="utf-8")


def read_section() -> str | None:
    """The section the last run wrote to bench/out (for bench.run's report)."""
    path = OUT_DIR / "streaming.json"
    return json.loads(path.read_text(encoding="utf-8")).get("section") if path.exists() else None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (["serve-ours"], ["serve-reference"]):
        with contextlib.suppress(KeyboardInterrupt):  # how the runner stops it
            (serve_ours if argv[0] == "serve-ours" else serve_reference)(argv[1], int(argv[2]))
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.bench_streaming", description=__doc__.split("\n\n")[0])
    parser.add_argument("--file-mib", type=int, default=128, help="size of each file (default 128; the target: 1024)")
    parser.add_argument("--files", type=int, default=8, help="files, downloaded at once (default 8)")
    parser.add_argument("--downloads", type=int, default=None,
                        help="downloads at once, going to the files in turn (default: one per file)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement (default 3)")
    parser.add_argument("--ingest-scale", type=float, default=0.25,
                        help="scale of corpus L for the ingest cost (default 0.25; 1 = full size; 0 skips it)")
    parser.add_argument("--write-docs", action="store_true", help="put the section in docs/benchmarks.md")
    args = parser.parse_args(argv)
    if args.file_mib < 2 or args.files < 1 or args.repeat < 1 or not 0 <= args.ingest_scale <= 1:
        parser.error("--file-mib at least 2, --files and --repeat at least 1, --ingest-scale in [0, 1]")
    result = run(args.file_mib, args.files, args.repeat, args.ingest_scale or None, args.downloads)
    text = section(result, "python -m bench.bench_streaming " + " ".join(argv))
    print(text)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "streaming.json").write_text(json.dumps({**result, "section": text}), encoding="utf-8")
    if args.write_docs:
        write_docs(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
