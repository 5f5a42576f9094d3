"""Training throughput, side by side in one run on the same data, network, batch and threads.

    make bench            # installs the bench extra (d3rlpy, polars) and runs the benchmarks
    .venv/bin/python benchmarks/train_bench.py [--steps 1500] [--threads 1] [--compile]

Rows (gradient steps per second, higher is better):
  floor        a bare PyTorch loop: same MLP (2 x 128), Gaussian NLL, Adam, index sampling
  ours bc / drpo / iql   drpo_core.trainer.Trainer
  d3rlpy BC / IQL        d3rlpy 2.x (stochastic BC policy, IQL) through ``fit``
  ours bc compiled       with ``torch.compile`` of the policy (only with --compile)
Goals (issue: drpo_core): bc and drpo >= 0.9 x floor; iql >= 2 x d3rlpy IQL.
Threads default to 1: 2 threads swing up to 6x on these 2-core machines.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import time
from collections.abc import Callable

import numpy as np
import torch

from drpo_core.data import TrainingData, table_to_training_data
from drpo_core.policy import GaussianPolicy
from drpo_core.sim import LogSimulator, scenario_config
from drpo_core.trainer import TrainConfig, Trainer

BATCH = 320
HIDDEN = (128, 128)


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


def ours(data: TrainingData, algorithm: str, compile_policy: bool = False
                ) -> Callable[[int], None]:
    """Time the loop only: one Trainer, steps added per call (construction excluded)."""
    holder: dict[str, Trainer] = {}

    def run(steps: int) -> None:
        if "t" not in holder:
            cfg = TrainConfig(algorithm=algorithm, steps=steps, batch_size=BATCH, log_every=50,
                              checkpoint_every=50 * max(1, steps // 50), device="cpu",
                              policy={"hidden": HIDDEN}, compile=compile_policy)
            holder["t"] = Trainer(cfg, data, progress=False)
            holder["t"].fit()
            return
        t = holder["t"]
        t.config = t.config.model_copy(update={"steps": t.step + steps})
        t.fit()

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sim = LogSimulator(scenario_config("medium"))
    data = table_to_training_data(sim.day_table(0, dt.date(2026, 1, 1), args.rows))
    print(f"training benchmark: {data.n_rows:,} rows, d_state={data.d_state}, "
          f"d_action={data.d_action}, MLP {HIDDEN}, batch {BATCH}, threads {args.threads}, "
          f"{args.steps} timed steps after {args.warmup} warm-up")
    rows: dict[str, float] = {"floor (bare PyTorch)": timed(bare_loop(data), args.steps,
                                                              args.warmup)}
    for algorithm in ("bc", "drpo", "iql"):
        rows[f"ours {algorithm}"] = timed(ours(data, algorithm), args.steps, args.warmup)
    for algorithm in ("bc", "iql"):
        runner = d3rlpy_runner(data, algorithm)
        if runner is not None:
            rows[f"d3rlpy {algorithm.upper()}"] = timed(runner, args.steps, args.warmup)
    if args.compile:
        rows["ours bc compiled"] = timed(ours(data, "bc", True), args.steps,
                                         max(args.warmup, 200))
    floor = rows["floor (bare PyTorch)"]
    print(f"{'loop':<24}{'steps/s':>10}{'x floor':>10}")
    for name, rate in rows.items():
        print(f"{name:<24}{rate:>10.0f}{rate / floor:>10.2f}")
    if "d3rlpy IQL" in rows:
        print(f"ours iql / d3rlpy IQL = {rows['ours iql'] / rows['d3rlpy IQL']:.2f} (goal >= 2)")
    if "d3rlpy BC" in rows:
        print(f"ours bc / d3rlpy BC = {rows['ours bc'] / rows['d3rlpy BC']:.2f}")
    print("goals: ours bc, ours drpo >= 0.90 x floor")


if __name__ == "__main__":
    main()
