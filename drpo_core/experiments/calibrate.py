"""Calibration report of the simulator defaults: writes ``docs/simulator.md`` whole.

    python -m drpo_core.experiments.calibrate --out docs            # ~4 min on 2 cores
    python -m drpo_core.experiments.calibrate --out docs --render   # the page from the JSON

At the reproduction study's dimensions (``study.FULL``: d, items, logged rows; 5000 steps) and
for each scenario: simulate one day, measure the reward distribution (skew, top-10 % mass share,
per logging component), plot it, and score the reference lines (random, logging mixture,
identity, least-squares linear map, BC, oracle) and a few reward-aware learners on test users.
The same fixed maps are scored in the pre-issue-16 world (``state_model = "interest"``) to show
what the new state changes. Writes ``simulator_calibration.json``, the PNGs and the page.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import stats

from drpo_core.data import table_to_training_data
from drpo_core.evaluation.online import eval_users, evaluate_policy
from drpo_core.experiments.references import fixed_map_scores, reference_lines
from drpo_core.experiments.study import FULL
from drpo_core.inference import numpy_policy
from drpo_core.plots import reward_distribution
from drpo_core.sim.config import SCENARIOS, SimConfig, scenario_config
from drpo_core.sim.generate import LogSimulator
from drpo_core.sim.logging_agent import COMPONENTS
from drpo_core.trainer import TrainConfig, Trainer

LEARNERS = ("drpo", "filtered_bc", "awr")
STEPS = 5000


def top_share(reward: np.ndarray, share: float = 0.10) -> float:
    """Share of the total reward held by the top ``share`` of rows."""
    k = max(1, int(len(reward) * share))
    return float(np.sort(reward)[-k:].sum() / reward.sum())


def train(algorithm: str, data: Any, steps: int, seed: int) -> torch.nn.Module:
    cfg = TrainConfig(algorithm=algorithm, steps=steps, seed=seed, log_every=250,
                      checkpoint_every=250 * max(1, steps // 250), device="cpu")
    return Trainer(cfg, data, progress=False).fit().policy.eval()


def scenario_report(scenario: str, out: Path, rows: int, steps: int, seed: int,
                    d: int, n_items: int) -> dict[str, Any]:
    started = time.perf_counter()
    sim = LogSimulator(scenario_config(scenario, seed=seed, d=d, n_items=n_items))
    table = sim.day_table(0, dt.date(2026, 1, 1), rows)
    reward = table.column("reward").to_numpy()
    component = np.asarray(table.column("logging_policy").to_pylist())
    groups = {c: reward[component == c] for c in COMPONENTS}
    reward_distribution(groups, out / f"reward_distribution_{scenario}.png", kappa=0.1,
                        title=f"logged reward by logging component - {scenario}")
    users = eval_users(sim.world, 2000, "test")
    data = table_to_training_data(table)
    learned = {a: evaluate_policy(sim.world, numpy_policy(train(a, data, steps, seed)), users)
               for a in ("bc", *LEARNERS)}
    lines = reference_lines(sim.world, data, users, bc=learned.pop("bc"))
    old = LogSimulator(scenario_config(scenario, seed=seed, d=d, n_items=n_items,
                                       state_model="interest"))
    old_users = eval_users(old.world, 2000, "test")
    old_data = table_to_training_data(old.day_table(0, dt.date(2026, 1, 1), rows))
    return {
        "component_share": {c: float((component == c).mean()) for c in COMPONENTS},
        "component_mean_reward": {c: float(groups[c].mean()) for c in COMPONENTS},
        "reward_quantiles": dict(zip(("p50", "p90", "p99"),
                                     np.quantile(reward, [0.5, 0.9, 0.99]).tolist(),
                                     strict=True)),
        "skew": float(stats.skew(reward)),
        "top_decile_reward_share": top_share(reward),
        "references": {k: v.as_dict() for k, v in lines.items()},
        "learned": {k: v.as_dict() for k, v in learned.items()},
        "interest_state_fixed_maps": fixed_map_scores(old.world, old_data, old_users),
        "seconds": time.perf_counter() - started,
    }


def calibrate(out: Path, rows: int, steps: int, seed: int) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"rows": rows, "steps": steps, "seed": seed, "d": FULL.d,
                              "n_items": FULL.n_items, "scenarios": {}}
    for scenario in SCENARIOS:
        report["scenarios"][scenario] = scenario_report(scenario, out, rows, steps, seed,
                                                        FULL.d, FULL.n_items)
    (out / "simulator_calibration.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def gap_check(entry: dict[str, Any]) -> tuple[str, float, str, float]:
    """(best learned method, its score, best reward-blind reference, its score)."""
    best = max(entry["learned"], key=lambda k: entry["learned"][k]["score"])
    blind = {k: v["score"] for k, v in entry["references"].items()
             if k in ("identity", "linear", "bc")}
    worst = max(blind, key=lambda k: blind[k])
    return best, entry["learned"][best]["score"], worst, blind[worst]


def tables(report: dict[str, Any]) -> str:
    sc = report["scenarios"]
    lines = [
        "| scenario | expert / popular / random mean reward | p50 / p90 / p99 | skew "
        "| top-10 % share |",
        "|---|---|---|---|---|",
    ]
    for name, e in sc.items():
        m, q = e["component_mean_reward"], e["reward_quantiles"]
        lines.append(f"| {name} | {m['expert']:.3f} / {m['popular']:.3f} / {m['random']:.3f} "
                     f"| {q['p50']:.3f} / {q['p90']:.3f} / {q['p99']:.3f} | {e['skew']:.1f} "
                     f"| {e['top_decile_reward_share']:.0%} |")
    names = [*next(iter(sc.values()))["references"], *LEARNERS]
    lines += ["", "Online score on 2000 test users (0 = random item, 100 = best item; mean "
              "reward in brackets):", "",
              "| scenario | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for name, e in sc.items():
        cells = {**e["references"], **e["learned"]}
        lines.append(f"| {name} | " + " | ".join(
            f"{cells[k]['score']:.1f} ({cells[k]['mean_reward']:.3f})" for k in names) + " |")
    lines += ["", "| scenario | best learned | best reward-blind (identity, linear, BC) "
              "| gap (score points) | same fixed maps, `state_model = \"interest\"` |",
              "|---|---|---|---|---|"]
    for name, e in sc.items():
        best, best_score, blind, blind_score = gap_check(e)
        old = ", ".join(f"{k} {v:.1f}" for k, v in e["interest_state_fixed_maps"].items())
        lines.append(f"| {name} | {best} {best_score:.1f} | {blind} {blind_score:.1f} "
                     f"| {best_score - blind_score:.1f} | {old} |")
    return "\n".join(lines)


def page(report: dict[str, Any]) -> str:
    seconds = sum(e["seconds"] for e in report["scenarios"].values())
    defaults = SimConfig()
    return PAGE.format(
        d=report["d"], n_items=report["n_items"], rows=report["rows"], steps=report["steps"],
        seed=report["seed"], minutes=seconds / 60, tables=tables(report),
        learners=", ".join(LEARNERS), activity_sigma=defaults.activity_sigma,
        popular_temperature=defaults.popular_temperature, history_len=defaults.history_len,
        history_popular_share=defaults.history_popular_share,
    )


#: The page's text; ``page`` fills in the measured tables and the defaults.
PAGE = (resources.files("drpo_core.experiments") / "simulator_page.md").read_text()


def main() -> None:
    parser = argparse.ArgumentParser(description="Calibration report of the simulator")
    parser.add_argument("--out", type=Path, default=Path("docs"))
    parser.add_argument("--rows", type=int, default=FULL.rows)
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--render", action="store_true",
                        help="only rewrite simulator.md from OUT/simulator_calibration.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    saved = args.out / "simulator_calibration.json"
    report = (json.loads(saved.read_text()) if args.render
              else calibrate(args.out, args.rows, args.steps, args.seed))
    (args.out / "simulator.md").write_text(page(report))
    print(tables(report))


if __name__ == "__main__":
    main()
