"""What the quality signals and session data cost the data layer (issue 11).

    .venv/bin/python benchmarks/session_bench.py                       # 1M rows, d = 16
    .venv/bin/python benchmarks/session_bench.py --rows 200000 --d 8   # a quick look

Synthetic contract rows, generated in DuckDB straight into ``interactions`` (one day; users with
their own reward scale; sessions of 1 to 2 x ``--mean-length`` steps with gaps in the step
numbers). Then, each timed (median of ``--repeat``): ``build_sessions`` (the return-to-go and
links, sql/window_sessions.sql), ``cvar_filter`` at kappa 0.3 by each SQL quality signal,
``export_window`` of the kept rows without and with ``DataNeeds(return_gamma, transitions)``,
and ``draw_training_sample`` (steps x batch rows) without and with it. The ratio column is the
time over the same step for quality reward / no session data.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

DAY = dt.date(2026, 1, 1)


def generate(wh: Any, rows: int, d: int, mean_length: int) -> None:
    """``rows`` contract rows in sessions (values bound as parameters; the array size is a
    validated int, which DuckDB cannot bind)."""
    wh.con.execute(f"""
        INSERT INTO interactions
        SELECT 'ev' || i, CAST($day AS TIMESTAMPTZ), CAST($day AS DATE), 'u' || (i // 997 % 5000),
               'ep' || (i // $len), CAST(3 * (i % $len) + (hash(i) % 3) AS INTEGER),
               list_transform(range({int(d)}), lambda x: CAST(random() AS FLOAT)),
               list_transform(range({int(d)}), lambda x: CAST(random() AS FLOAT)),
               'item', random() * (1 + i // 997 % 5000 % 7), -1.0, 'random', 'bench'
        FROM range($rows) r(i)""", {"day": DAY, "rows": rows, "len": 2 * mean_length})


def timed(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--d", type=int, default=16)
    parser.add_argument("--mean-length", type=int, default=5)
    parser.add_argument("--gamma", type=float, default=0.9)
    parser.add_argument("--repeat", type=int, default=3)
    a = parser.parse_args()

    from drpo_core.objectives.base import DataNeeds
    from drpo_core.warehouse import open_warehouse
    from drpo_core.warehouse.cvar_filter import cvar_filter
    from drpo_core.warehouse.export import export_window
    from drpo_core.warehouse.sample import draw_training_sample
    from drpo_core.warehouse.sessions import build_sessions

    needs = DataNeeds(return_gamma=a.gamma, transitions=True)
    with tempfile.TemporaryDirectory() as tmp, open_warehouse(Path(tmp) / "wh.duckdb") as wh:
        wh.ensure_schema(a.d, a.d)
        generate(wh, a.rows, a.d, a.mean_length)
        runs: dict[str, Callable[[], Any]] = {
            "build_sessions": lambda: build_sessions(wh, DAY, DAY, a.gamma),
            "filter quality=reward": lambda: cvar_filter(wh, DAY, DAY, 0.3),
            f"filter quality=return gamma={a.gamma}": lambda: cvar_filter(
                wh, DAY, DAY, 0.3, quality="return", gamma=a.gamma),
            "filter quality=advantage gamma=0": lambda: cvar_filter(
                wh, DAY, DAY, 0.3, quality="advantage"),
            f"filter quality=advantage gamma={a.gamma}": lambda: cvar_filter(
                wh, DAY, DAY, 0.3, quality="advantage", gamma=a.gamma),
        }
        results = {name: timed(fn, a.repeat) for name, fn in runs.items()}
        cvar_filter(wh, DAY, DAY, 0.3)
        results["export (kept rows)"] = timed(lambda: export_window(wh, DAY, DAY), a.repeat)
        results["export with DataNeeds"] = timed(
            lambda: export_window(wh, DAY, DAY, needs=needs), a.repeat)
        draw: dict[str, Any] = {"steps": 200, "batch_size": 320, "seed": 0}
        results["draw 200 x 320"] = timed(
            lambda: draw_training_sample(wh, DAY, DAY, **draw), a.repeat)
        results["draw with DataNeeds"] = timed(
            lambda: draw_training_sample(wh, DAY, DAY, needs=needs, **draw), a.repeat)
    base = {"filter": results["filter quality=reward"], "export": results["export (kept rows)"],
            "draw": results["draw 200 x 320"]}
    print(f"{a.rows:,} rows, d = {a.d}, sessions of mean length {a.mean_length}, "
          f"median of {a.repeat}")
    print(f"{'step':<42} {'seconds':>8} {'ratio':>6}")
    for name, secs in results.items():
        ref = next((v for k, v in base.items() if name.startswith(k)), None)
        ratio = f"{secs / ref:.2f}" if ref else ""
        print(f"{name:<42} {secs:8.3f} {ratio:>6}")


if __name__ == "__main__":
    main()
