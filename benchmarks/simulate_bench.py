"""Simulator throughput: generate and write 1M logged rows; peak memory.

Goal (issue: foundation): at least 1M rows per minute on 2 cores, i.e. >= 16,667 rows/s.

    .venv/bin/python benchmarks/simulate_bench.py [--rows 1000000] [--days 10] [--d 128]

Prints, side by side in one run: generation only (in memory) and generation + Parquet write,
each as rows/s and as a ratio to the goal, plus the process's peak RSS.
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import tempfile
import time
from pathlib import Path

from drpo_core.sim import LogSimulator, scenario_config

GOAL_ROWS_PER_S = 1_000_000 / 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--d", type=int, default=128)
    parser.add_argument("--scenario", default="medium")
    args = parser.parse_args()
    per_day = args.rows // args.days
    sim = LogSimulator(scenario_config(args.scenario, d=args.d))
    start = dt.date(2026, 1, 1)

    t0 = time.perf_counter()
    for k in range(args.days):
        for _ in sim._day_batches(k, start + dt.timedelta(days=k), per_day, 250_000):
            pass
    generate_s = time.perf_counter() - t0

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        sim.write(Path(tmp) / "logs", start, args.days, per_day, progress=False)
        write_s = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in (Path(tmp) / "logs").rglob("*.parquet"))
    rows = per_day * args.days
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"simulator benchmark: {rows:,} rows ({args.days} days x {per_day:,}), "
          f"d={args.d}, scenario {args.scenario}")
    print(f"{'stage':<24}{'seconds':>10}{'rows/s':>12}{'x goal':>9}")
    for name, secs in (("generate (memory)", generate_s), ("generate + write", write_s)):
        rate = rows / secs
        print(f"{name:<24}{secs:>10.2f}{rate:>12,.0f}{rate / GOAL_ROWS_PER_S:>9.2f}")
    print(f"parquet size: {size / 2**20:,.0f} MiB   peak RSS: {peak_mb:,.0f} MiB   "
          f"goal: {GOAL_ROWS_PER_S:,.0f} rows/s (1M rows/min)")


if __name__ == "__main__":
    main()
