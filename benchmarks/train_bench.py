"""Training throughput, side by side in one run on the same data, network, batch and threads.

    make bench            # installs the bench extra (d3rlpy, polars) and runs the benchmarks
    .venv/bin/python benchmarks/train_bench.py [--steps 1500] [--threads 1] [--repeats 3]
                                               [--compile] [--profile] [--log-every 100]

Rows (gradient steps per second, higher is better):
  floor        a bare PyTorch loop: same MLP (2 x 128), Gaussian NLL, Adam, index sampling
  floor drpo   the same loop with Algorithm 1 written bare: per-batch top-K by reward
               (torch.topk, K = ceil(N P)), the controller on Python floats, the normalised
               advantage, the weighted loss over the kept rows only
  ours bc / drpo / iql   drpo_core.trainer.Trainer with its defaults (metrics, the collapse
                         monitor and the loss trace read every 100 steps; --log-every N)
  d3rlpy BC / IQL        d3rlpy 2.x (stochastic BC policy, IQL) through ``fit``
  ours bc compiled       with ``torch.compile`` of the policy (only with --compile)
Goals (issue: drpo_core): bc and drpo >= 0.9 x floor; iql >= 2 x d3rlpy IQL; (issue 15)
ours drpo >= 0.9 x floor drpo, the bare loop of the same algorithm.
Threads default to 1: 2 threads swing up to 6x on these 2-core machines. The loops take turns
``--repeats`` times (rounds); each round's ratio to that round's floor is printed, and the
table's ratio is the median of the rounds' ratios. The load average before and after says
whether other work shared the machine.
``--profile`` times the parts of both DRPO loops' steps inside running loops (batch, selection,
network forward and loss, clearing gradients, backward, Adam).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import math
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from drpo_core.data import TrainingData, table_to_training_data
from drpo_core.policy import GaussianPolicy
from drpo_core.sim import LogSimulator, scenario_config
from drpo_core.trainer import TrainConfig, Trainer

BATCH = 320
HIDDEN = (128, 128)
#: rows Algorithm 1 kept per step, by DRPO loop (the two loops must do the same work)
KEPT: dict[str, list[float]] = {}


def bench_data(rows: int, threads: int) -> TrainingData:
    """The benches' data: ``rows`` of the medium scenario's first day, on ``threads`` threads."""
    torch.set_num_threads(threads)
    sim = LogSimulator(scenario_config("medium"))
    return table_to_training_data(sim.day_table(0, dt.date(2026, 1, 1), rows))


def describe(name: str, data: TrainingData, threads: int, steps: int, warmup: int) -> str:
    """The header line of a bench: its data, network, batch, threads and steps."""
    return (f"{name} benchmark: {data.n_rows:,} rows, d_state={data.d_state}, "
            f"d_action={data.d_action}, MLP {HIDDEN}, batch {BATCH}, threads {threads}, "
            f"{steps} timed steps after {warmup} warm-up")


def timed(run: Callable[[int], None], steps: int, warmup: int) -> float:
    run(warmup)
    start = time.perf_counter()
    run(steps)
    return steps / (time.perf_counter() - start)


def bare_loop(data: TrainingData) -> Callable[[int], None]:
    torch.manual_seed(0)
    policy = GaussianPolicy(data.d_state, data.d_action)
    opt = torch.optim.Adam(policy.parameters(), lr=3e-4)
    g = torch.Generator().manual_seed(0)

    def run(steps: int) -> None:
        for _ in range(steps):
            idx = torch.randint(data.n_rows, (BATCH,), generator=g)
            loss = -policy.log_prob(data.state[idx], data.action[idx]).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    return run


def bare_drpo_loop(data: TrainingData) -> Callable[[int], None]:
    """Algorithm 1 in plain PyTorch (App. G defaults), the floor DRPO's step is held to."""
    torch.manual_seed(0)
    policy = GaussianPolicy(data.d_state, data.d_action)
    opt = torch.optim.Adam(policy.parameters(), lr=3e-4)
    g = torch.Generator().manual_seed(0)
    state = {"p": 0.5}

    def run(steps: int) -> None:
        for _ in range(steps):
            idx = torch.randint(data.n_rows, (BATCH,), generator=g)
            r = data.reward[idx]
            k = max(1, math.ceil(BATCH * state["p"] - 1e-9))
            KEPT.setdefault("floor drpo", []).append(k)
            top_r, top = torch.topk(r, k)
            adv = top_r - top_r[-1]
            adv = adv / (adv.std(correction=0) + 1e-8)
            rows = idx[top]
            loss = -(adv * policy.log_prob(data.state[rows], data.action[rows])).sum() / k
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            homogeneous = float(top_r.std(correction=0)) < 0.5 * float(r.std(correction=0))
            state["p"] = min(1.0, state["p"] * 1.02) if homogeneous else max(0.05,
                                                                            state["p"] * 0.98)

    return run


def ours(data: TrainingData, algorithm: str, compile_policy: bool = False,
         objective: dict[str, Any] | None = None, log_every: int = 100
         ) -> Callable[[int], None]:
    """Time the loop only: one Trainer, steps added per call (construction excluded)."""
    holder: dict[str, Trainer] = {}

    def run(steps: int) -> None:
        if "t" not in holder:
            cfg = TrainConfig(algorithm=algorithm, steps=steps, batch_size=BATCH, device="cpu",
                              policy={"hidden": HIDDEN}, compile=compile_policy,
                              objective=objective or {}, log_every=log_every,
                              checkpoint_every=10 * log_every)  # no output_dir: none written
            holder["t"] = Trainer(cfg, data, progress=False)
            holder["t"].fit()
            return
        t = holder["t"]
        t.config = t.config.model_copy(update={"steps": t.step + steps})
        t.fit()
        if algorithm == "drpo":  # the kept mass K = N P, averaged over each log window
            KEPT["ours drpo"] = [h["filter/kept"] for h in t.history if "filter/kept" in h]

    return run


def d3rlpy_runner(data: TrainingData, algorithm: str) -> Callable[[int], None] | None:
    try:
        import d3rlpy
    except ImportError:
        return None
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    n = data.n_rows
    dataset = d3rlpy.dataset.MDPDataset(
        observations=data.state.numpy(), actions=data.action.numpy(),
        rewards=data.reward.numpy().reshape(-1, 1), terminals=np.ones(n, dtype=np.float32),
    )
    encoder = d3rlpy.models.VectorEncoderFactory(hidden_units=list(HIDDEN))
    if algorithm == "bc":
        algo = d3rlpy.algos.BCConfig(batch_size=BATCH, learning_rate=3e-4,
                                     policy_type="stochastic",
                                     encoder_factory=encoder).create(device="cpu:0")
    else:
        algo = d3rlpy.algos.IQLConfig(batch_size=BATCH, actor_encoder_factory=encoder,
                                      critic_encoder_factory=encoder,
                                      value_encoder_factory=encoder).create(device="cpu:0")

    def run(steps: int) -> None:
        algo.fit(dataset, n_steps=steps, n_steps_per_epoch=steps, show_progress=False,
                 logger_adapter=d3rlpy.logging.NoopAdapterFactory(), save_interval=10**9)

    return run


#: the parts of a DRPO step that ``--profile`` times
PARTS = ("batch", "selection", "network forward + loss", "clear grads", "backward", "Adam")


def tally(spent: dict[str, float], marks: list[float], warm: bool) -> None:
    """Add the time between consecutive ``marks`` to each part (after the warm-up only)."""
    if warm:
        for name, start, end in zip(PARTS, marks[:-1], marks[1:], strict=True):
            spent[name] += end - start


def profile_drpo(data: TrainingData, steps: int) -> None:
    """Both DRPO loops' steps cut into parts, each part timed inside a running training loop
    (us per step, ``steps`` steps after 200 warm-up), floor and ours in turns.

    In the loop a small operation costs several times what it costs alone (the backward pass
    and Adam evict the interpreter's and numpy's working set every step), so the parts are
    timed where they run, not apart. Ours repeats ``_FilteredObjective._host_loss`` step by step.
    """
    from drpo_core.filtering import batch_std_host, top_kappa_host
    from drpo_core.objectives.base import host_rows_loss

    clock = time.perf_counter

    def floor_parts() -> dict[str, float]:
        torch.manual_seed(0)
        policy = GaussianPolicy(data.d_state, data.d_action)
        opt = torch.optim.Adam(policy.parameters(), lr=3e-4)
        g = torch.Generator().manual_seed(0)
        p, spent = 0.5, dict.fromkeys(PARTS, 0.0)
        for i in range(steps + 200):
            marks = [clock()]
            idx = torch.randint(data.n_rows, (BATCH,), generator=g)
            r = data.reward[idx]
            marks.append(clock())
            k = max(1, math.ceil(BATCH * p - 1e-9))
            top_r, top = torch.topk(r, k)
            adv = top_r - top_r[-1]
            adv = adv / (adv.std(correction=0) + 1e-8)
            homogeneous = float(top_r.std(correction=0)) < 0.5 * float(r.std(correction=0))
            p = min(1.0, p * 1.02) if homogeneous else max(0.05, p * 0.98)
            marks.append(clock())
            rows = idx[top]
            loss = -(adv * policy.log_prob(data.state[rows], data.action[rows])).sum() / k
            marks.append(clock())
            opt.zero_grad(set_to_none=True)
            marks.append(clock())
            loss.backward()
            marks.append(clock())
            opt.step()
            marks.append(clock())
            tally(spent, marks, warm=i >= 200)
        return spent

    def ours_parts() -> dict[str, float]:
        cfg = TrainConfig(algorithm="drpo", steps=steps + 200, batch_size=BATCH, device="cpu",
                          policy={"hidden": HIDDEN})
        t = Trainer(cfg, data, progress=False)
        objective, controller = t.objective, t.objective.controller
        params = [q for group in t.optimizer.param_groups for q in group["params"]]
        spent = dict.fromkeys(PARTS, 0.0)
        for i in range(steps + 200):
            marks = [clock()]
            batch = t._batch()
            marks.append(clock())
            r = objective.quality_signal(batch)[0].numpy()  # steps 3-5, as _host_loss does
            keep_share = controller.keep_share_host()
            sigma_batch = batch_std_host(r)
            kept = top_kappa_host(r, keep_share, finite=math.isfinite(sigma_batch))
            sigma_top = kept.std()
            controller.update_host(sigma_top, sigma_batch)
            w = objective.weights_host(kept, sigma_top)
            marks.append(clock())
            loss = host_rows_loss(objective.policy, batch, kept.rows, w, float(kept.count))
            marks.append(clock())
            for q in params:
                q.grad = None
            marks.append(clock())
            loss.backward()
            marks.append(clock())
            t.optimizer.step()
            marks.append(clock())
            tally(spent, marks, warm=i >= 200)
        return spent

    floor, ours_ = floor_parts(), ours_parts()
    floor2, ours2 = floor_parts(), ours_parts()
    print(f"DRPO's step in parts, us per step inside the loop ({steps} steps, batch {BATCH}; "
          "the mean of two turns each):")
    print(f"  {'part':<26}{'floor drpo':>12}{'ours drpo':>12}")
    total_f = total_o = 0.0
    for name in floor:
        f = (floor[name] + floor2[name]) / 2 / steps * 1e6
        o = (ours_[name] + ours2[name]) / 2 / steps * 1e6
        total_f, total_o = total_f + f, total_o + o
        print(f"  {name:<26}{f:>12.1f}{o:>12.1f}")
    print(f"  {'sum of the parts':<26}{total_f:>12.1f}{total_o:>12.1f}   "
          f"(ours / floor in steps/s: {total_f / total_o:.2f}; the Trainer's bookkeeping, the "
          "loss trace and the metrics, is not in these parts)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--log-every", type=int, default=100,
                        help="the Trainer's log interval (its default: 100 steps)")
    args = parser.parse_args()
    data = bench_data(args.rows, args.threads)
    print(describe("training", data, args.threads, args.steps, args.warmup))
    if args.profile:
        profile_drpo(data, args.steps)
        return
    # each ratio's two loops run back to back, so that both see the machine in the same state
    loops: dict[str, Callable[[], Callable[[int], None] | None]] = {
        "floor (bare PyTorch)": lambda: bare_loop(data),
        "ours bc": lambda: ours(data, "bc", log_every=args.log_every),
        "floor drpo (bare)": lambda: bare_drpo_loop(data),
        "ours drpo": lambda: ours(data, "drpo", log_every=args.log_every),
        "ours iql": lambda: ours(data, "iql", log_every=args.log_every)}
    for algorithm in ("bc", "iql"):
        loops[f"d3rlpy {algorithm.upper()}"] = lambda a=algorithm: d3rlpy_runner(data, a)
    if args.compile:
        loops["ours bc compiled"] = lambda: ours(data, "bc", True, log_every=args.log_every)
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    rounds: dict[str, list[float]] = {}
    for _ in range(args.repeats):
        for name, make in loops.items():
            run = make()
            if run is not None:
                warmup = max(args.warmup, 200) if name.endswith("compiled") else args.warmup
                rounds.setdefault(name, []).append(timed(run, args.steps, warmup))
    print(f"load average after: {os.getloadavg()[0]:.2f} (2 cores; above ~1 means other "
          "work shared the machine)")
    floors = rounds["floor (bare PyTorch)"]
    rows = {name: statistics.median(rates) for name, rates in rounds.items()}
    print(f"{'loop':<24}{'steps/s':>10}{'x floor':>10}   rounds (x floor)")
    for name, rates in rounds.items():
        ratios = [r / f for r, f in zip(rates, floors, strict=True)]
        print(f"{name:<24}{rows[name]:>10.0f}{statistics.median(ratios):>10.2f}   "
              + ", ".join(f"{x:.2f}" for x in ratios))
    drpo_ratios = [o / f for o, f in zip(rounds["ours drpo"], rounds["floor drpo (bare)"],
                                         strict=True)]
    print(f"ours drpo / floor drpo (bare Algorithm 1) = {statistics.median(drpo_ratios):.2f} "
          f"(rounds: {', '.join(f'{x:.2f}' for x in drpo_ratios)}; goal >= 0.9)")
    if "d3rlpy IQL" in rows:
        print(f"ours iql / d3rlpy IQL = {rows['ours iql'] / rows['d3rlpy IQL']:.2f} (goal >= 2)")
    if "d3rlpy BC" in rows:
        print(f"ours bc / d3rlpy BC = {rows['ours bc'] / rows['d3rlpy BC']:.2f}")
    if KEPT:
        print("mean rows kept per step: " + ", ".join(
            f"{name} {statistics.mean(rows):.2f}" for name, rows in KEPT.items()))
    print("goals: ours bc, ours drpo >= 0.90 x floor; ours drpo >= 0.90 x floor drpo")


if __name__ == "__main__":
    main()
