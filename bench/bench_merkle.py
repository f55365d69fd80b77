"""The event log's Merkle tree and signed checkpoints (issue 20): what they add to an append, what a proof costs.

    python -m bench.bench_merkle [--events 1000000] [--batch 1000] [--proof-size 10000000]

1. Appends: ``--events`` events through :func:`preservation.events.record_event` on a fresh SQLite
   catalog, ``--batch`` events per transaction, twice, in two child processes of their own running at
   the same time (so that both see the same load on a shared machine; each measures its own CPU time):
   the chain alone (the tree's ``append_leaf`` replaced by nothing: the log as it was before issue 20)
   and the chain with the tree plus a signed checkpoint every ``--checkpoint-every`` events.  CPU time
   (user + system) of the append loop and its wall clock; target (issue 20): under 20 % more.
2. Proofs: a catalog of ``--proof-size`` events is built directly (events rows and every stored
   subtree written with bulk inserts, real hashes, untimed), then a fresh process times inclusion
   proofs of random events and consistency proofs between random sizes, each fetched from the stored
   hashes and checked; target: under 10 ms each.

Not a unit test: nothing here asserts a time; the exit status is 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing as mp
import os
import random
import resource
import shutil
import sqlite3
import statistics
import sys
import time
from pathlib import Path

from bench.corpora import OUT_DIR

WORK = OUT_DIR / "merkle"


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _home(name: str) -> Path:
    from preservation.home import init_home

    home = WORK / name
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    (home / "preserve.yaml").write_text("", encoding="utf-8")
    init_home(home)
    return home


def _append(variant: str, events: int, batch: int, every: int, out) -> None:
    from preservation import checkpoints, events as events_module
    from preservation.events import FIXITY_CHECK, SUCCESS, record_event
    from preservation.repository import Repository

    home = _home(variant)
    if variant == "chain":
        events_module.append_leaf = lambda *a, **k: None  # the log before issue 20
    repo = Repository.open(home)
    signed = 0
    cpu, wall = _cpu(), time.perf_counter()
    done = 0
    while done < events:
        with repo.catalog.session() as s:
            for _ in range(min(batch, events - done)):
                done += 1
                record_event(s, FIXITY_CHECK, SUCCESS, package_id="p-1", node_name="uni-pku", replica_id=done,
                             detail={"paths_checked": 12, "bytes": 1048576})
                if variant == "tree" and done % every == 0:
                    checkpoints.make_checkpoint(s, repo.settings)
                    signed += 1
        if done % 100_000 == 0:
            print(f"{variant}: {done:,} events, {_cpu() - cpu:.0f} s CPU, {time.perf_counter() - wall:.0f} s",
                  file=sys.stderr, flush=True)
    cpu, wall = _cpu() - cpu, time.perf_counter() - wall
    if variant == "tree":
        with repo.catalog.session() as s:
            ok = checkpoints.check_checkpoints(s, repo.settings)["ok"]
    else:
        ok = True
    repo.close()
    out.put({"variant": variant, "events": events, "cpu_s": round(cpu, 2), "wall_s": round(wall, 2),
             "checkpoints": signed, "consistent": ok})


def _children(fn, argument_lists):
    """Run ``fn(*args, queue)`` for each argument list, all at once, each in a process of its own; the results
    in the order of the argument lists."""
    ctx = mp.get_context("spawn")
    queues = [ctx.Queue() for _ in argument_lists]
    procs = [ctx.Process(target=fn, args=(*args, q)) for args, q in zip(argument_lists, queues)]
    for p in procs:
        p.start()
    results = [q.get() for q in queues]
    for p in procs:
        p.join()
    return results


def _child(fn, *args):
    return _children(fn, [args])[0]


def _build(size: int) -> Path:
    """A catalog of ``size`` events and its stored tree, written with bulk inserts (real hashes)."""
    home = _home(f"proofs-{size}")
    db = home / "catalog.sqlite"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    frontier: dict[int, bytes] = {}
    ev_rows, node_rows = [], []
    prev = "0" * 64
    sha = hashlib.sha256
    for seq in range(1, size + 1):
        h = sha(f"{prev}\n{seq}".encode()).hexdigest()  # stands for the event's chain hash
        ev_rows.append((seq, f"00000000-0000-4000-8000-{seq:012d}", "fixity check", "2026-12-06 00:00:00.000000",
                        "success", "preserve", "{}", prev, h))
        prev = h
        cur = sha(b"\x00" + bytes.fromhex(h)).digest()
        i, level = seq - 1, 0
        made = []
        while i & 1:
            cur = sha(b"\x01" + frontier[level] + cur).digest()
            level += 1
            i >>= 1
            made.append((level, i, cur))
        frontier[0] = sha(b"\x00" + bytes.fromhex(h)).digest()
        for lv, ix, nh in made:
            frontier[lv] = nh
            node_rows.append((lv, ix, nh))
        if len(ev_rows) >= 100_000:
            conn.executemany("INSERT INTO events (seq, event_id, event_type, occurred_at, outcome, agent, detail, "
                             "prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?)", ev_rows)
            conn.executemany('INSERT INTO merkle_nodes (level, "index", hash) VALUES (?,?,?)', node_rows)
            ev_rows, node_rows = [], []
    conn.executemany("INSERT INTO events (seq, event_id, event_type, occurred_at, outcome, agent, detail, "
                     "prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?)", ev_rows)
    conn.executemany('INSERT INTO merkle_nodes (level, "index", hash) VALUES (?,?,?)', node_rows)
    conn.execute("UPDATE event_chain_head SET seq = ?, hash = ? WHERE id = 1", (size, prev))
    conn.commit()
    conn.close()
    return home


def _proofs(home: str, size: int, count: int, out) -> None:
    from preservation import merkle
    from preservation.catalog.evidence_models import compute
    from preservation.repository import Repository

    repo = Repository.open(Path(home))
    rnd = random.Random(20)
    inclusion, consistency = [], []
    cpu_inclusion, cpu_consistency = [], []
    with repo.catalog.session() as s:
        root = compute(s, lambda lk: merkle.root_hash(size, lk))
        for seq in range(1, 6):  # warm-up: the statements compiled, the connection open (the first proof of a process)
            compute(s, lambda lk: merkle.inclusion_proof(seq, size, lk))
        leaves = dict(s.execute(__import__("sqlalchemy").text(
            "SELECT seq, hash FROM events WHERE seq IN (%s)" % ",".join(str(rnd.randrange(1, size + 1))
                                                                       for _ in range(count)))).all())
        for seq, h in leaves.items():
            c, t = time.process_time(), time.perf_counter()
            proof = compute(s, lambda lk: merkle.inclusion_proof(seq - 1, size, lk))
            inclusion.append(time.perf_counter() - t)
            cpu_inclusion.append(time.process_time() - c)
            assert merkle.verify_inclusion(seq - 1, size, merkle.leaf_hash(bytes.fromhex(h)), proof, root)
        for _ in range(count):
            m = rnd.randrange(1, size)
            c, t = time.process_time(), time.perf_counter()
            proof = compute(s, lambda lk: merkle.consistency_proof(m, size, lk))
            old = compute(s, lambda lk: merkle.root_hash(m, lk))
            consistency.append(time.perf_counter() - t)
            cpu_consistency.append(time.process_time() - c)
            assert merkle.verify_consistency(m, size, old, root, proof)
    repo.close()
    def ms(xs: list[float]) -> dict:
        xs = sorted(xs)
        return {"median_ms": round(statistics.median(xs) * 1000, 2),
                "p95_ms": round(xs[int(0.95 * (len(xs) - 1))] * 1000, 2), "max_ms": round(xs[-1] * 1000, 2)}

    out.put({"size": size, "proofs": count, "inclusion": ms(inclusion),
             "consistency_with_old_root": ms(consistency),
             # the process's own CPU time per proof: what the proof costs, whatever else the machine runs
             "cpu": {"inclusion": ms(cpu_inclusion), "consistency_with_old_root": ms(cpu_consistency)}})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--checkpoint-every", type=int, default=10_000)
    ap.add_argument("--proof-size", type=int, default=10_000_000)
    ap.add_argument("--proofs", type=int, default=200)
    ap.add_argument("--skip-appends", action="store_true")
    ap.add_argument("--reuse", action="store_true", help="Keep a proof catalog of that size built by an earlier run.")
    args = ap.parse_args(argv)
    WORK.mkdir(parents=True, exist_ok=True)
    report: dict = {"cpus": os.cpu_count(), "load_before": os.getloadavg()[0]}
    ok = True
    if not args.skip_appends:
        runs = _children(_append, [(v, args.events, args.batch, args.checkpoint_every) for v in ("chain", "tree")])
        chain, tree = runs
        report["appends"] = runs
        report["extra_cpu"] = round(tree["cpu_s"] / chain["cpu_s"] - 1, 3)
        report["extra_wall"] = round(tree["wall_s"] / chain["wall_s"] - 1, 3)
        ok &= report["extra_cpu"] < 0.20 and tree["consistent"]
    t = time.perf_counter()
    home = WORK / f"proofs-{args.proof_size}"
    if not (args.reuse and (home / "catalog.sqlite").exists()):
        home = _build(args.proof_size)
        report["build_s"] = round(time.perf_counter() - t, 1)
    report["proofs"] = _child(_proofs, str(home), args.proof_size, args.proofs)
    ok &= report["proofs"]["inclusion"]["p95_ms"] < 10 and report["proofs"]["consistency_with_old_root"]["p95_ms"] < 10
    report["load_after"] = os.getloadavg()[0]
    report["targets_met"] = bool(ok)
    print(json.dumps(report, indent=1))
    (WORK / "results.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
