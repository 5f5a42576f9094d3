"""Calibration report of the simulator defaults (docs/simulator.md is made by this module).

    python -m drpo_core.sim.calibrate --out docs            # ~2 min on 2 cores

For each scenario: simulate one day, plot the logged reward per logging component with the
top-kappa cut, train BC and DRPO on it (App. J settings) and score them online on test users.
Prints a markdown table and writes ``simulator_calibration.json`` plus the PNGs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path

import numpy as np
import torch

from drpo_core.data import table_to_training_data
from drpo_core.evaluation.online import eval_users, evaluate_policy
from drpo_core.plots import reward_distribution
from drpo_core.sim.config import SCENARIOS, scenario_config
from drpo_core.sim.generate import LogSimulator
from drpo_core.sim.logging_agent import COMPONENTS
from drpo_core.trainer import TrainConfig, Trainer

PAPER_BC_REWARD = {"medium": 0.338, "extreme": 0.268}  # Table 1
PAPER_DRPO_REWARD = {"medium": 0.374, "extreme": 0.308}  # Table 1


def calibrate(out: Path, rows: int, steps: int, seed: int) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    report: dict = {"rows": rows, "steps": steps, "seed": seed, "scenarios": {}}
    for scenario in SCENARIOS:
        started = time.perf_counter()
        sim = LogSimulator(scenario_config(scenario, seed=seed))
        table = sim.day_table(0, dt.date(2026, 1, 1), rows)
        reward = table.column("reward").to_numpy()
        component = np.asarray(table.column("logging_policy").to_pylist())
        groups = {c: reward[component == c] for c in COMPONENTS}
        reward_distribution(groups, out / f"reward_distribution_{scenario}.png", kappa=0.1,
                            title=f"logged reward by logging component - {scenario}")
        users = eval_users(sim.world, 2000, "test")
        data = table_to_training_data(table)
        entry: dict = {
            "component_share": {c: float((component == c).mean()) for c in COMPONENTS},
            "component_mean_reward": {c: float(groups[c].mean()) for c in COMPONENTS},
            "reward_quantiles": dict(zip(("p50", "p90", "p99"),
                                         np.quantile(reward, [0.5, 0.9, 0.99]).tolist(),
                                         strict=True)),
            "top_decile_reward_share": float(np.sort(reward)[-len(reward) // 10:].sum()
                                             / reward.sum()),
            "oracle_reward": float(users.oracle_reward.mean()),
            "random_reward": float(users.random_reward.mean()),
        }
        for algorithm in ("bc", "drpo"):
            cfg = TrainConfig(algorithm=algorithm, steps=steps, seed=seed, log_every=250,
                              checkpoint_every=250 * max(1, steps // 250))
            result = Trainer(cfg, data, progress=False).fit()
            policy = result.policy.eval()

            def act(states: np.ndarray, policy: torch.nn.Module = policy) -> np.ndarray:
                with torch.no_grad():
                    return policy(torch.from_numpy(states)).numpy()

            entry[algorithm] = evaluate_policy(sim.world, act, users).as_dict()
        entry["seconds"] = time.perf_counter() - started
        report["scenarios"][scenario] = entry
    (out / "simulator_calibration.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def markdown(report: dict) -> str:
    lines = [
        "| scenario | expert / popular / random mean reward | p50 / p90 / p99 | top-10% share "
        "| oracle | random | BC (paper) | DRPO (paper) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, e in report["scenarios"].items():
        m, q = e["component_mean_reward"], e["reward_quantiles"]
        lines.append(
            f"| {name} | {m['expert']:.3f} / {m['popular']:.3f} / {m['random']:.3f} "
            f"| {q['p50']:.3f} / {q['p90']:.3f} / {q['p99']:.3f} "
            f"| {e['top_decile_reward_share']:.0%} | {e['oracle_reward']:.3f} "
            f"| {e['random_reward']:.3f} "
            f"| {e['bc']['mean_reward']:.3f} ({PAPER_BC_REWARD[name]}) "
            f"| {e['drpo']['mean_reward']:.3f} ({PAPER_DRPO_REWARD[name]}) |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description="Calibration report of the simulator")
    parser.add_argument("--out", type=Path, default=Path("docs"))
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(markdown(calibrate(args.out, args.rows, args.steps, args.seed)))


if __name__ == "__main__":
    main()
