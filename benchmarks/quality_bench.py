"""Throughput of DRPO per quality signal: what the critic of advantage / q costs (issue 11).

    .venv/bin/python benchmarks/quality_bench.py [--steps 600] [--threads 1] [--repeats 3]

Same data, network, batch and threads as benchmarks/train_bench.py (the medium scenario, MLP
2 x 128, batch 320, one thread). Rows are gradient steps per second of drpo through the
Trainer with ``quality`` = reward (plain DRPO), advantage and q, at gamma = 0 (the bandit logs
of the simulator carry no episode links), with the default critic and with a critic as deep as
the policy (``critic_hidden`` = the policy's widths). The loops take turns ``--repeats`` times;
the table's ratio is the median over the rounds of steps/s divided by plain DRPO's in the same
round. Goal (issue 11): the critic costs at most 2x, i.e. ratio >= 0.5. Steps per second of
this process's CPU time are printed beside the wall-clock ones: on a shared machine they are
the steadier measure of what a step costs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

from train_bench import (  # the same data and Trainer loop as the training bench
    HIDDEN,
    bench_data,
    describe,
    ours,
)

GOAL = 0.5


def steps_per_second(run: Callable[[int], None], steps: int) -> tuple[float, float]:
    """(steps per wall second, steps per CPU second of this process)"""
    wall, cpu = time.perf_counter(), time.process_time()
    run(steps)
    return steps / (time.perf_counter() - wall), steps / (time.process_time() - cpu)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    data = bench_data(args.rows, args.threads)
    print(describe("quality", data, args.threads, args.steps, args.warmup)
          + f", load {os.getloadavg()[0]:.2f}")
    rows = {"drpo reward (plain)": {},
            "drpo advantage": {"quality": "advantage"},
            "drpo q": {"quality": "q"},
            "drpo advantage, critic 2 x 128": {"quality": "advantage", "critic_hidden": HIDDEN},
            "drpo q, critic 2 x 128": {"quality": "q", "critic_hidden": HIDDEN}}
    loops = {name: ours(data, "drpo", objective=objective) for name, objective in rows.items()}
    for run in loops.values():
        run(args.warmup)
    rates: dict[str, list[tuple[float, float]]] = {name: [] for name in loops}
    for _ in range(args.repeats):
        for name, run in loops.items():
            rates[name].append(steps_per_second(run, args.steps))
    plain = rates["drpo reward (plain)"]
    print(f"{'loop':34s} {'steps/s':>9s} {'x plain':>8s} {'CPU steps/s':>12s} {'x plain':>8s}"
          f"  goal >= {GOAL}")
    for name, values in rates.items():
        cells = []
        for k in (0, 1):  # wall, then CPU time
            ratio = statistics.median(v[k] / p[k] for v, p in zip(values, plain, strict=True))
            cells.append(f"{statistics.median(v[k] for v in values):9.1f} {ratio:8.2f}")
        print(f"{name:34s} {cells[0]}    {cells[1]}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
