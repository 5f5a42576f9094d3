"""One nightly run on ~1M rows: wall time per stage, and the orchestration overhead.

    .venv/bin/python benchmarks/pipeline_bench.py [--rows-per-day 143000] [--d 16]

Two identical homes get the same simulated logs with the 7 window days already ingested (and
the MLflow store migrated, the GX project created, the libraries imported). In
one, the nightly's jobs are called directly (flows/jobs/) and timed per stage; in the
other, the ``nightly_retrain`` Prefect flow runs the same steps. Prefect's temporary API is
started by a trivial flow first, so its start-up (about 5 s, once per process) is reported
apart. Goal (orchestration issue): flow / direct - 1 <= 10 %.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import tempfile
import time
from pathlib import Path

from flows.params import RunParameters

START = dt.date(2026, 1, 1)
NIGHT = START + dt.timedelta(days=7)


def prepare(home: Path, logs_src: Path) -> None:
    """Same starting state for both runs: window ingested, MLflow store migrated, a validation
    of the previous day run (so the GX project exists and its import is paid)."""
    from flows import registry
    from flows.jobs import data

    shutil.copytree(logs_src, home / "logs" / "live")
    os.environ["DRPO_HOME"] = str(home)
    for k in range(7):
        data.ingest(str(home / "logs" / "live"), START + dt.timedelta(days=k))
    data.validate(START + dt.timedelta(days=6))
    registry.configure()


def direct(home: Path, params: RunParameters) -> dict[str, float]:
    from flows.jobs import data, evaluate, promote, register, train, window

    os.environ["DRPO_HOME"] = str(home)
    logs = str(home / "logs" / "live")
    times: dict[str, float] = {}

    def timed(name, fn):
        t0 = time.perf_counter()
        out = fn()
        times[name] = time.perf_counter() - t0
        return out

    timed("ingest", lambda: data.ingest(logs, NIGHT))
    validation = timed("validate", lambda: data.require_valid(data.validate(NIGHT)))
    win = timed("filter + export", lambda: window.prepare_window(NIGHT, params))
    trained = timed("train", lambda: train.train(NIGHT, win, params.train_config(),
                                                 progress=False))
    evaluation = timed("evaluate", lambda: evaluate.evaluate(
        NIGHT, trained.run_dir, params, promote.champion_policy()))
    version = timed("register", lambda: register.register(NIGHT, trained, win, evaluation,
                                                          validation))
    timed("gate", lambda: promote.gate(version.version, evaluation, trained.health,
                                       params.gate_config()))
    times["rows in window"] = float(win.report.rows_in)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows-per-day", type=int, default=143_000)
    parser.add_argument("--d", type=int, default=16)
    parser.add_argument("--train-steps", type=int, default=3000)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="drpo-pipeline-bench-"))
    os.environ["DRPO_HOME"] = str(root / "setup")
    from flows.settings import embedded_environment

    embedded_environment()
    os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
    import torch

    from drpo_core.sim import LogSimulator, scenario_config

    torch.set_num_threads(1)
    logs = root / "logs"
    LogSimulator(scenario_config("medium", d=args.d)).write(logs, START, 8, args.rows_per_day,
                                                            progress=True)
    homes = {"direct": root / "direct", "flow": root / "flow", "direct-after": root / "after"}
    for home in homes.values():
        home.mkdir()
        prepare(home, logs)

    from prefect import flow

    from flows.pipeline import nightly_retrain

    @flow
    def warm_up() -> int:
        return 1

    t0 = time.perf_counter()
    warm_up()
    api_start = time.perf_counter() - t0

    # direct, flow, direct again: the flow is compared with the mean of the runs around it,
    # so neither side gets all the warm caches of running last
    params = RunParameters(train_steps=args.train_steps)
    stages = direct(homes["direct"], params)
    os.environ["DRPO_HOME"] = str(homes["flow"])
    t0 = time.perf_counter()
    nightly_retrain(logical_date=NIGHT, params=params.model_copy(
        update={"logs": str(homes["flow"] / "logs" / "live")}))
    flow_s = time.perf_counter() - t0
    after = direct(homes["direct-after"], params)
    totals = [sum(v for k, v in run.items() if k != "rows in window") for run in (stages, after)]
    direct_s = sum(totals) / 2
    print(f"pipeline benchmark: one nightly on {int(stages['rows in window']):,} window rows "
          f"(7 days), d={args.d}, {args.train_steps} steps, torch threads 1")
    print(f"{'stage (direct calls)':<22}{'before':>9}{'after':>9}")
    for name, secs in stages.items():
        if name != "rows in window":
            print(f"{name:<22}{secs:>9.2f}{after[name]:>9.2f}")
    print(f"{'total direct':<22}{totals[0]:>9.2f}{totals[1]:>9.2f}")
    print(f"{'nightly_retrain flow':<22}{flow_s:>9.2f}")
    print(f"orchestration overhead: flow / mean(direct) - 1 = {flow_s / direct_s - 1:+.1%} "
          f"(goal <= +10%); Prefect's "
          f"temporary API start-up, once per process: {api_start:.1f} s")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
