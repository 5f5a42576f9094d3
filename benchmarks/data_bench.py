"""Data layer throughput on simulated logs, side by side in one run.

    make bench            # or: .venv/bin/python benchmarks/data_bench.py [--rows 10000000]

Prints (goals from the data-layer issue):
  ingest (ours, all checks + quarantine, per day)  vs  bare CREATE TABLE AS read_parquet (>= 0.7)
  filter: exact per-day quantile threshold + kept rows  vs  pandas (>= 5x), polars (>= 1.5x),
          and a bare count(*) scan of the same rows
  export: filtered window -> torch tensors, rows/s
  peak RSS of the whole path (goal < 3 GiB)
The logs (d = 16 by default: 10M rows x 128-d vectors would be 8 GB) are simulated once and
kept under $DRPO_HOME/bench/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import shutil
import tempfile
import time
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=20)
    parser.add_argument("--d", type=int, default=16)
    parser.add_argument("--kappa", type=float, default=0.1)
    args = parser.parse_args()
    logs = simulate(args.rows, args.days, args.d)
    paths = sorted(str(p) for p in logs.rglob("*.parquet"))
    days = [START + dt.timedelta(days=k) for k in range(args.days)]
    end = days[-1]
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(dir=logs.parent) as tmp:
        bare = duckdb.connect(str(Path(tmp) / "bare.duckdb"))
        results["bare CTAS"], _ = timed(lambda: (
            bare.execute("CREATE TABLE raw AS SELECT * FROM read_parquet($p)", {"p": paths}),
            bare.execute("CHECKPOINT")))
        results["bare count(*)"], _ = timed(lambda: bare.execute(
            "SELECT count(*) FROM raw WHERE reward >= 0.5").fetchall())
        bare.close()
        with open_warehouse(Path(tmp) / "wh.duckdb") as wh:
            results["ingest (ours)"], _ = timed(
                lambda: ([ingest_partition(wh, logs, day) for day in days],
                         wh.con.execute("CHECKPOINT")))
            results["filter (ours, SQL)"], report = timed(
                lambda: cvar_filter(wh, days[0], end, args.kappa, "event_date"))
            results["export (ours)"], data = timed(lambda: export_window(wh, days[0], end))
    results["filter (pandas)"], n_pandas = timed(lambda: pandas_filter(paths, args.kappa))
    polars_s, n_polars = timed(lambda: polars_filter(paths, args.kappa))
    if n_polars is not None:
        results["filter (polars)"] = polars_s
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
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
    print(f"peak RSS {peak_gib:.2f} GiB (goal < 3 GiB); weights sum/rows = "
          f"{float(np.asarray(data.weight).sum()) / rows:.4f}")


if __name__ == "__main__":
    main()
