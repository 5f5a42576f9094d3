"""A 4-date backfill with ``retrain each``: sequential, then on a 2-worker local Dask cluster.

    .venv/bin/python benchmarks/backfill_bench.py [--rows-per-day 20000] [--train-steps 1000]

Two homes get the same simulated logs and a migrated MLflow store; both backfills run on one
temporary Prefect API, the one ``drpo backfill`` starts (``flows.embedded.cli_api``). The
``backfill`` flow then runs in each, once with ``backfill_workers=1`` (every date trained in
the flow's process) and once with 2 (the trainings on a local cluster that the flow starts and
stops: its start-up is inside the time). Prints both wall times, their ratio (sequential /
distributed), and whether the two registered the same versions with the same metrics.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from flows.params import RunParameters

START = dt.date(2026, 1, 1)
DAYS = 4  # 3 of them have a window before them: 3 trainings


def prepare(home: Path, logs_src: Path) -> None:
    from flows import registry

    shutil.copytree(logs_src, home / "logs" / "live")
    os.environ["DRPO_HOME"] = str(home)
    registry.configure()


def backfill(home: Path, params: RunParameters) -> tuple[float, dict[str, Any]]:
    from flows import registry
    from flows.pipeline import backfill as flow

    os.environ["DRPO_HOME"] = str(home)
    t0 = time.perf_counter()
    flow(start=START, end=START + dt.timedelta(days=DAYS - 1), retrain="each",
         params=params.model_copy(update={"logs": str(home / "logs" / "live")}))
    seconds = time.perf_counter() - t0
    client = registry.configure()
    versions = {int(v.version): client.get_run(v.run_id).data.metrics
                for v in client.search_model_versions(f"name = '{registry.MODEL_NAME}'")}
    return seconds, versions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows-per-day", type=int, default=20_000)
    parser.add_argument("--d", type=int, default=16)
    parser.add_argument("--train-steps", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="torch threads of the flow's process (each of the W workers "
                             "gets threads // W)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="drpo-backfill-bench-"))
    os.environ["DRPO_HOME"] = str(root / "setup")
    from flows.embedded import cli_api
    from flows.settings import embedded_environment

    embedded_environment()
    os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
    os.environ.pop("DRPO_DASK_ADDRESS", None)
    import torch

    from drpo_core.sim import LogSimulator, scenario_config

    torch.set_num_threads(args.threads)
    logs = root / "logs"
    LogSimulator(scenario_config("medium", d=args.d)).write(logs, START, DAYS, args.rows_per_day,
                                                            progress=False)
    homes = {"sequential": root / "sequential", "distributed": root / "distributed"}
    for home in homes.values():
        home.mkdir()
        prepare(home, logs)

    params = RunParameters(train_steps=args.train_steps, window_days=2)
    with cli_api(say=lambda _: None):
        seq_s, seq = backfill(homes["sequential"], params)
        dist_s, dist = backfill(homes["distributed"],
                                params.model_copy(update={"backfill_workers": args.workers}))
    print(f"backfill benchmark: {DAYS} dates, retrain each ({len(seq)} trainings), "
          f"{args.rows_per_day:,} rows/day, d={args.d}, {args.train_steps} steps, "
          f"{os.cpu_count()} CPUs, torch threads {args.threads} (flow) / "
          f"{max(1, args.threads // args.workers)} (each worker)")
    print(f"sequential backfill            {seq_s:8.1f} s")
    print(f"distributed, {args.workers} Dask workers     {dist_s:8.1f} s "
          "(cluster start-up included)")
    print(f"wall-time ratio sequential / distributed: {seq_s / dist_s:.2f}")
    print(f"same versions and metrics: {seq == dist}")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
