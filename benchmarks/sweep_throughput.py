"""Points per second of one sweep on 1 and 2 local worker processes and on a Dask LocalCluster
of 1 and 2 worker processes, each starting cold (empty database, no cached searches), and
whether all four gave identical records.

    nice -n 10 python benchmarks/sweep_throughput.py [SWEEP.toml] [--limit N]

Default: the first 12 points of docs/sweeps/sqnxt23-v1-v5.toml (1.0-SqNxt-23 at full size on
8x8, 16x16 and 24x24 arrays, four buffers each). The time is run_sweep's (worker start-up
included); a LocalCluster's own start-up is printed beside it.
"""
from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from pathlib import Path

from sqnxt_engine.cli.common import format_table
from sqnxt_engine.emu import sweep as SW

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "docs" / "sweeps" / "sqnxt23-v1-v5.toml"


def cold() -> None:
    """Forget this process's networks and searches (a forked pool would inherit them)."""
    SW._SEARCH_CACHE.clear()
    SW.build_network.cache_clear()


def records(db: Path) -> dict:
    with sqlite3.connect(db) as conn:
        return {k: json.loads(r) for k, r in conn.execute("SELECT key, record FROM points")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sweep", nargs="?", default=str(DEFAULT))
    ap.add_argument("--limit", type=int, default=12, help="the sweep's first N points")
    args = ap.parse_args()
    from distributed import Client, LocalCluster
    full = SW.load_sweep(args.sweep)
    sweep = SW.Sweep(full.name, full.points[:args.limit])
    rows, results = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        def measure(label: str, startup: float | None = None, **kw) -> None:
            cold()
            db = SW.ResultsDB(Path(tmp) / f"{len(rows)}.sqlite")
            run = SW.run_sweep(sweep, db, **kw)
            db.close()
            results[label] = records(db.path)
            rows.append({"executor": label, "points": run.computed, "seconds": round(run.seconds, 1),
                         "points_per_s": round(run.points_per_second, 3),
                         "cluster_startup_s": None if startup is None else round(startup, 1)})

        measure("local, 1 process", jobs=1)
        measure("local, 2 processes", jobs=2)
        for n in (1, 2):
            t0 = time.perf_counter()
            with LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                              dashboard_address=":0") as cluster, Client(cluster) as client:
                measure(f"Dask LocalCluster, {n} worker{'s' * (n > 1)}", time.perf_counter() - t0,
                        scheduler=client)
    base = rows[0]["points_per_s"]
    for r in rows:
        r["vs_1_process"] = round(r["points_per_s"] / base, 2)
    same = all(v == results["local, 1 process"] for v in results.values())
    shown = Path(args.sweep).resolve()
    print(f"sweep {shown.relative_to(ROOT) if shown.is_relative_to(ROOT) else shown}, "
          f"first {len(sweep.points)} points")
    print(format_table(rows))
    print(f"records identical across the four executors: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
