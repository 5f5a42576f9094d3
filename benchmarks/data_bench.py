"""Data layer throughput on simulated logs, side by side in one run.

    make bench            # or: .venv/bin/python benchmarks/data_bench.py [--rows 10000000]

Prints (goals from the data-layer issue):
  ingest (ours, all checks + quarantine, per day)  vs  bare CREATE TABLE AS read_parquet (>= 0.7)
  filter: exact per-day quantile threshold + kept rows  vs  pandas (>= 5x), polars (>= 1.5x),
          and a bare count(*) scan of the same rows (medians of --repeat runs)
  export: filtered window -> torch tensors, rows/s
  peak RSS of our whole path: ingest + filter + export (goal < 3 GiB); the comparisons run in
  subprocesses so that they do not count
The logs (d = 16 by default: 10M rows x 128-d vectors would be 8 GB) are simulated once and
kept under $DRPO_HOME/bench/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing as mp
import os
import resource
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import duckdb
import numpy as np

from drpo_core.sim import LogSimulator, scenario_config
from drpo_core.warehouse import open_warehouse
from drpo_core.warehouse.cvar_filter import cvar_filter
from drpo_core.warehouse.export import export_window
from drpo_core.warehouse.ingest import ingest_partition

START = dt.date(2026, 1, 1)


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def simulate(rows: int, days: int, d: int) -> Path:
    home = Path(os.environ.get("DRPO_HOME", ".drpo")) / "bench" / f"logs-{rows}-{days}-{d}"
    if not (home / "_simulation.json").exists():
        shutil.rmtree(home, ignore_errors=True)
        cfg = scenario_config("medium", d=d)
        LogSimulator(cfg).write(home, START, days, rows // days, progress=True)
    return home


def pandas_filter(paths: list[str], kappa: float) -> int:
    import pandas as pd

    df = pd.concat([pd.read_parquet(p, columns=["event_id", "event_date", "reward"])
                    for p in paths])
    thr = df.groupby("event_date")["reward"].quantile(1 - kappa, interpolation="lower")
    return int((df["reward"] >= df["event_date"].map(thr)).sum())


def polars_filter(paths: list[str], kappa: float) -> int | None:
    try:
        import polars as pl
    except ImportError:
        return None
    lf = pl.scan_parquet(paths).select("event_id", "event_date", "reward")
    thr = lf.group_by("event_date").agg(
        pl.col("reward").quantile(1 - kappa, interpolation="lower").alias("nu"))
    kept = lf.join(thr, on="event_date").filter(pl.col("reward") >= pl.col("nu"))
    return int(kept.select(pl.len()).collect().item())


def bare_ctas(paths: list[str]) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        con = duckdb.connect(str(Path(tmp) / "bare.duckdb"))
        ctas, _ = timed(lambda: (
            con.execute("CREATE TABLE raw AS SELECT * FROM read_parquet($p)", {"p": paths}),
            con.execute("CHECKPOINT")))
        scan, _ = timed(lambda: con.execute(
            "SELECT count(*) FROM raw WHERE reward >= 0.5").fetchall())
        con.close()
    return ctas, scan


def in_subprocess(fn, *args):
    """Run a comparison in a fresh process (its memory does not count towards ours)."""
    with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def timed_filter(name: str, paths: list[str], kappa: float, repeat: int
                 ) -> tuple[float, int | None]:
    """Median seconds over ``repeat`` runs (these machines swing by +-30 % run to run)."""
    fn = pandas_filter if name == "pandas" else polars_filter
    runs = [timed(lambda: fn(paths, kappa)) for _ in range(repeat)]
    return float(np.median([r[0] for r in runs])), runs[0][1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=20)
    parser.add_argument("--d", type=int, default=16)
    parser.add_argument("--kappa", type=float, default=0.1)
    parser.add_argument("--repeat", type=int, default=5, help="filter runs (median reported)")
    args = parser.parse_args()
    logs = simulate(args.rows, args.days, args.d)
    paths = sorted(str(p) for p in logs.rglob("*.parquet"))
    days = [START + dt.timedelta(days=k) for k in range(args.days)]
    end = days[-1]
    results: dict[str, float] = {}
    results["bare CTAS"], results["bare count(*)"] = in_subprocess(bare_ctas, paths)
    with tempfile.TemporaryDirectory(dir=logs.parent) as tmp, \
            open_warehouse(Path(tmp) / "wh.duckdb") as wh:
        results["ingest (ours)"], _ = timed(
            lambda: ([ingest_partition(wh, logs, day) for day in days],
                     wh.con.execute("CHECKPOINT")))
        runs = [timed(lambda: cvar_filter(wh, days[0], end, args.kappa, "event_date"))
                for _ in range(args.repeat)]
        results["filter (ours, SQL)"] = float(np.median([r[0] for r in runs]))
        report = runs[-1][1]
        results["export (ours)"], data = timed(lambda: export_window(wh, days[0], end))
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    results["filter (pandas)"], n_pandas = in_subprocess(timed_filter, "pandas", paths,
                                                         args.kappa, args.repeat)
    polars_s, n_polars = in_subprocess(timed_filter, "polars", paths, args.kappa, args.repeat)
    if n_polars is not None:
        results["filter (polars)"] = polars_s
    rows = args.rows // args.days * args.days
    print(f"data benchmark: {rows:,} rows over {args.days} days, d={args.d}, "
          f"kappa={args.kappa}, {len(paths)} Parquet files")
    print(f"{'step':<22}{'seconds':>9}{'rows/s':>14}")
    for name, secs in results.items():
        n = data.n_rows if name.startswith("export") else rows
        print(f"{name:<22}{secs:>9.2f}{n / secs:>14,.0f}")
    print(f"kept rows: ours {report.rows_kept:,}, pandas {n_pandas:,}"
          + (f", polars {n_polars:,}" if n_polars is not None else ""))
    print(f"ingest / bare CTAS throughput = {results['bare CTAS'] / results['ingest (ours)']:.2f}"
          " (goal >= 0.7)")
    print(f"filter speed-up vs pandas = "
          f"{results['filter (pandas)'] / results['filter (ours, SQL)']:.1f}x (goal >= 5)")
    if "filter (polars)" in results:
        print(f"filter speed-up vs polars = "
              f"{results['filter (polars)'] / results['filter (ours, SQL)']:.1f}x (goal >= 1.5)")
    print(f"filter vs bare count(*) scan = "
          f"{results['filter (ours, SQL)'] / results['bare count(*)']:.1f}x the scan's time")
    print(f"peak RSS of ingest + filter + export {peak_gib:.2f} GiB (goal < 3 GiB); "
          "weights sum/rows = "
          f"{float(np.asarray(data.weight).sum()) / rows:.4f}")


if __name__ == "__main__":
    main()
