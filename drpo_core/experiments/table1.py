"""Table 1 (RQ2): every algorithm in the medium and extreme scenarios, reward and eCPM.

Equal tuning (issue 16): every method with a hyperparameter gets the same number of grid points
(three), chosen by mean reward on the simulator's validation users of the first seed and then
kept for every seed; reported numbers are on the test users. The grids are wide enough not to
depend on the reward's scale (rewards are activity-scaled, so a temperature on raw rewards is
not scale-free). BC and APG have no hyperparameter.

Besides the methods, every scenario reports the reference lines (random, logging mixture,
identity, least-squares linear map, oracle; BC is a row) and the paired differences DRPO - X
per seed with a 95 % t-interval.
"""

from __future__ import annotations

from typing import Any

from drpo_core.experiments.markdown import (
    paired_markdown,
    per_seed_markdown,
    references_markdown,
)
from drpo_core.experiments.study import (
    StudySize,
    make_scenario,
    mean_ci,
    paired_rows,
    reference_rows,
    references,
    train_and_score,
)

ALGORITHMS = ("bc", "crr", "bppo", "awr", "iql", "adaptive_bc", "drpo_exp", "drpo", "apg",
              "asymre", "filtered_bc")

#: Equal grids, three points each (docs/reproduction.md, "Equal tuning").
GRIDS: dict[str, list[dict[str, Any]]] = {
    "drpo": [{"controller": {"target_ratio": lam}} for lam in (0.3, 0.5, 0.7)],  # lambda
    "adaptive_bc": [{"controller": {"target_ratio": lam}} for lam in (0.3, 0.5, 0.7)],
    "drpo_exp": [{"temperature": beta} for beta in (0.05, 0.5, 5.0)],  # beta
    "asymre": [{"negative_weight": w} for w in (0.0, 0.1, 0.5)],  # w-
    "crr": [{"weighting": "binary"}, {"weighting": "exp", "temperature": 0.5},
            {"weighting": "exp", "temperature": 5.0}],
    "bppo": [{"clip": c} for c in (0.1, 0.2, 0.3)],
    # advantages divided by their batch std: beta is scale-free under heavy-tailed rewards
    "awr": [{"temperature": t, "normalize_advantage": True} for t in (0.3, 1.0, 3.0)],
    "iql": [{"inverse_temperature": b} for b in (1.0, 3.0, 10.0)],
    "filtered_bc": [{"kappa": k} for k in (0.05, 0.1, 0.4)],
}

#: Table 1 of the paper (reward), for the side-by-side report.
PAPER_REWARD = {
    "medium": {"bc": 0.338, "crr": 0.222, "bppo": 0.341, "awr": 0.333, "iql": 0.337,
               "adaptive_bc": 0.367, "drpo_exp": 0.372, "drpo": 0.374, "apg": 0.01},
    "extreme": {"bc": 0.268, "crr": 0.217, "bppo": 0.124, "awr": 0.254, "iql": 0.289,
                "adaptive_bc": 0.297, "drpo_exp": 0.318, "drpo": 0.308, "apg": 0.01},
}


def grid(algorithm: str, size: StudySize) -> list[dict[str, Any]]:
    points = GRIDS.get(algorithm, [{}])
    if algorithm == "bppo":  # BC for the first half, then clipped improvement
        points = [g | {"bc_steps": size.steps // 2,
                       "old_policy_interval": max(1, size.steps // 20)} for g in points]
    return points


def run(size: StudySize) -> dict[str, Any]:
    """The headline table: every algorithm, both scenarios, ``size.headline`` steps."""
    return compare(size.headline) | {"table1_grids": GRIDS}


def compare(size: StudySize, algorithms: tuple[str, ...] = ALGORITHMS,
            scenarios: tuple[str, ...] = ("medium", "extreme"),
            **world: Any) -> dict[str, Any]:
    """``world``: overrides of the simulator config (e.g. ``reward_noise``) for every cell."""
    rows, refs, paired = [], [], []
    for scenario_name in scenarios:
        per_seed: dict[str, list] = {a: [] for a in algorithms}
        lines = []
        chosen: dict[str, dict[str, Any]] = {}
        for seed in range(size.seeds):
            scenario = make_scenario(scenario_name, size, seed, **world)
            lines.append(references(scenario))
            for algorithm in algorithms:
                if algorithm not in chosen:  # grid search on the first seed's validation users
                    scores = [(train_and_score(scenario, algorithm, size, seed, g), g)
                              for g in grid(algorithm, size)]
                    best, params = max(scores, key=lambda s: s[0].validation_reward)
                    chosen[algorithm] = params
                    per_seed[algorithm].append(best)
                else:
                    per_seed[algorithm].append(
                        train_and_score(scenario, algorithm, size, seed, chosen[algorithm]))
        for algorithm, cells in per_seed.items():
            reward, reward_ci = mean_ci([c.mean_reward for c in cells])
            ecpm, ecpm_ci = mean_ci([c.ecpm for c in cells])
            rows.append({"scenario": scenario_name, "algorithm": algorithm,
                         "params": chosen[algorithm], "reward": reward, "reward_ci": reward_ci,
                         "ecpm": ecpm, "ecpm_ci": ecpm_ci, "seeds": len(cells),
                         "per_seed": [c.mean_reward for c in cells],
                         "score": mean_ci([c.score for c in cells])[0],
                         "paper_reward": PAPER_REWARD.get(scenario_name, {}).get(algorithm)})
        refs += reference_rows(lines, scenario=scenario_name)
        if "drpo" in per_seed:
            paired += paired_rows({a: [c.mean_reward for c in v] for a, v in per_seed.items()},
                                  scenario=scenario_name)
    return {"table1": rows, "table1_references": refs, "table1_paired": paired}


def markdown(result: dict[str, Any]) -> str:
    lines = ["| scenario | algorithm | reward (95% CI) | eCPM | paper reward | chosen |",
             "|---|---|---|---|---|---|"]
    for r in result["table1"]:
        paper = "" if r["paper_reward"] is None else f"{r['paper_reward']:.3f}"
        lines.append(f"| {r['scenario']} | {r['algorithm']} | {r['reward']:.3f} "
                     f"± {r['reward_ci']:.3f} | {r['ecpm']:.2f} | {paper} | "
                     f"{r['params'] or '-'} |")
    if "table1_references" in result:
        lines += ["", references_markdown(result["table1_references"])]
    if "table1_paired" in result:
        lines += ["", paired_markdown(result["table1_paired"], "scenario")]
    if any("per_seed" in r for r in result["table1"]):
        lines += ["", per_seed_markdown(result["table1"], ("scenario", "algorithm"))]
    return "\n".join(lines)
