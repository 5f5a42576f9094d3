"""Table 1 (RQ2): every algorithm in the medium and extreme scenarios, reward and eCPM.

Each baseline's key hyperparameter is chosen from the paper's grid (App. I) by mean reward on
the simulator's validation users; the reported numbers are on the test users.
"""

from __future__ import annotations

from typing import Any

from drpo_core.experiments.study import StudySize, make_scenario, mean_ci, train_and_score

ALGORITHMS = ("bc", "crr", "bppo", "awr", "iql", "adaptive_bc", "drpo_exp", "drpo", "apg",
              "asymre", "filtered_bc")

#: App. I grids (the key hyperparameter of each baseline).
GRIDS: dict[str, list[dict[str, Any]]] = {
    "crr": [{"temperature": t} for t in (0.5, 1.0, 5.0)],
    "bppo": [{"clip": c} for c in (0.1, 0.2, 0.3)],
    "awr": [{"temperature": t} for t in (0.05, 0.1, 1.0)],
    "iql": [{"expectile": e} for e in (0.5, 0.7, 0.9)],
    "filtered_bc": [{"fraction": f} for f in (0.05, 0.1, 0.4)],
}

#: Table 1 of the paper (reward), for the side-by-side report.
PAPER_REWARD = {
    "medium": {"bc": 0.338, "crr": 0.222, "bppo": 0.341, "awr": 0.333, "iql": 0.337,
               "adaptive_bc": 0.367, "drpo_exp": 0.372, "drpo": 0.374, "apg": 0.01},
    "extreme": {"bc": 0.268, "crr": 0.217, "bppo": 0.124, "awr": 0.254, "iql": 0.289,
                "adaptive_bc": 0.297, "drpo_exp": 0.318, "drpo": 0.308, "apg": 0.01},
}


def run(size: StudySize, algorithms: tuple[str, ...] = ALGORITHMS,
        scenarios: tuple[str, ...] = ("medium", "extreme"),
        **world: Any) -> dict[str, Any]:
    """``world``: overrides of the simulator config (e.g. ``reward_noise``) for every cell."""
    rows = []
    for scenario_name in scenarios:
        per_seed = {a: [] for a in algorithms}
        chosen: dict[str, dict[str, Any]] = {}
        for seed in range(size.seeds):
            scenario = make_scenario(scenario_name, size, seed, **world)
            for algorithm in algorithms:
                grid = GRIDS.get(algorithm, [{}])
                if algorithm == "bppo":  # BC for the first half, then clipped improvement
                    grid = [g | {"bc_steps": size.steps // 2,
                                 "old_policy_interval": max(1, size.steps // 20)} for g in grid]
                if algorithm not in chosen:  # grid search on the first seed's validation users
                    scores = [(train_and_score(scenario, algorithm, size, seed, g), g)
                              for g in grid]
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
                         "paper_reward": PAPER_REWARD.get(scenario_name, {}).get(algorithm)})
    return {"table1": rows}


def markdown(result: dict[str, Any]) -> str:
    lines = ["| scenario | algorithm | reward (95% CI) | eCPM | paper reward | chosen |",
             "|---|---|---|---|---|---|"]
    for r in result["table1"]:
        paper = "" if r["paper_reward"] is None else f"{r['paper_reward']:.3f}"
        lines.append(f"| {r['scenario']} | {r['algorithm']} | {r['reward']:.3f} "
                     f"± {r['reward_ci']:.3f} | {r['ecpm']:.2f} | {paper} | "
                     f"{r['params'] or '-'} |")
    return "\n".join(lines)
