"""Where DRPO is worth choosing (issue 16 §5): DRPO's paired gain over the best non-DRPO
baseline across logging and user conditions.

Cells: expert share {10, 5, 3, 1} % (popular and random keep medium's 60 : 30 ratio) x
popularity {topic-tilted, user-blind} x user activity {heavy-tailed, uniform}. To fit the
budget this table uses ``size.condition_seeds`` seeds (3 in the full study), the
non-headline number of steps, and each method's hyperparameter chosen ONCE, on the default
condition (medium: 10 % expert, tilted popularity, heavy-tailed activity), by validation
reward on seed 0, from the same equal grids as Table 1. In each cell the best baseline is the
one with the highest mean validation reward over the cell's seeds; the gain is DRPO - that
baseline's score on the test users, paired per seed, with a 95 % t-interval. Reference lines
(logging mixture, linear map, BC) are scores too (0 = random item, 100 = best item).
"""

from __future__ import annotations

from typing import Any

from drpo_core.evaluation.online import score_actions
from drpo_core.experiments.markdown import per_seed_markdown
from drpo_core.experiments.references import apply_linear_map, fit_linear_map, logging_evaluation
from drpo_core.experiments.study import (
    StudySize,
    make_scenario,
    mean_ci,
    paired_difference,
    train_and_score,
)
from drpo_core.experiments.table1 import grid

EXPERT_SHARES = (0.10, 0.05, 0.03, 0.01)
POPULARITY = {"tilted": 0.3, "blind": None}  # popular_temperature
ACTIVITY = {"heavy": 1.1, "uniform": 0.0}  # activity_sigma
DEFAULT = (0.10, "tilted", "heavy")


def world(expert: float, popularity: str, activity: str) -> dict[str, Any]:
    return {"expert_share": expert, "popular_temperature": POPULARITY[popularity],
            "activity_sigma": ACTIVITY[activity]}


def choose(size: StudySize) -> dict[str, dict[str, Any]]:
    """Each method's grid point, chosen once on the default condition (seed 0, validation)."""
    scenario = make_scenario("medium", size, 0, **world(*DEFAULT))
    chosen = {}
    for algorithm in ("drpo", *size.condition_baselines):
        scores = [(train_and_score(scenario, algorithm, size, 0, g).validation_reward, i)
                  for i, g in enumerate(grid(algorithm, size))]
        chosen[algorithm] = grid(algorithm, size)[max(scores)[1]]
    return chosen


def cell(size: StudySize, chosen: dict[str, dict[str, Any]], expert: float, popularity: str,
         activity: str) -> dict[str, Any]:
    baselines = size.condition_baselines
    test: dict[str, list[float]] = {a: [] for a in ("drpo", *baselines)}
    validation: dict[str, list[float]] = {a: [] for a in test}
    refs: dict[str, list[float]] = {"logging": [], "linear": []}
    for seed in range(size.condition_seeds):
        scenario = make_scenario("medium", size, seed, **world(expert, popularity, activity))
        w = fit_linear_map(scenario.data.state.numpy(), scenario.data.action.numpy())
        refs["linear"].append(score_actions(scenario.world, scenario.test, apply_linear_map(
            w, scenario.test.states)).score)
        refs["logging"].append(logging_evaluation(scenario.world, scenario.test).score)
        for algorithm in test:
            result = train_and_score(scenario, algorithm, size, seed, chosen[algorithm])
            test[algorithm].append(result.score)
            validation[algorithm].append(result.validation_reward)
    best = max(baselines, key=lambda a: sum(validation[a]))
    return {"expert_share": expert, "popularity": popularity, "activity": activity,
            "best_baseline": best, "gain": paired_difference(test["drpo"], test[best]),
            "drpo_score": mean_ci(test["drpo"])[0], "best_score": mean_ci(test[best])[0],
            "bc_score": mean_ci(test["bc"])[0] if "bc" in test else None,
            "references": {k: mean_ci(v)[0] for k, v in refs.items()},
            "per_seed": test}


def run(size: StudySize) -> dict[str, Any]:
    chosen = choose(size)
    cells = [cell(size, chosen, e, p, a) for e in EXPERT_SHARES for p in POPULARITY
             for a in ACTIVITY]
    return {"conditions": cells, "conditions_params": chosen}


def markdown(result: dict[str, Any]) -> str:
    lines = ["Scores on test users (0 = random item, 100 = best item); gain = DRPO - best "
             "non-DRPO baseline (chosen per cell on validation users), paired per seed, "
             "95 % t-interval.", "",
             "| expert | popularity | activity | logging | linear map | BC | best baseline "
             "| DRPO | gain [95 % interval] |", "|---|---|---|---|---|---|---|---|---|"]
    for c in result["conditions"]:
        g = c["gain"]
        lines.append(f"| {c['expert_share']:.0%} | {c['popularity']} | {c['activity']} | "
                     f"{c['references']['logging']:.1f} | {c['references']['linear']:.1f} | "
                     f"{fmt(c['bc_score'])} | {c['best_baseline']} {c['best_score']:.1f} | "
                     f"{c['drpo_score']:.1f} | {g['mean']:+.1f} [{g['low']:+.1f}, "
                     f"{g['high']:+.1f}] |")
    params = result.get("conditions_params", {})
    if params:
        lines += ["", "Grid points chosen once on the default condition: "
                  + "; ".join(f"{a} {p or '-'}" for a, p in params.items()) + "."]
    seeds = [{"condition": f"{c['expert_share']:.0%} {c['popularity']} {c['activity']}",
              "method": a, "per_seed": v} for c in result["conditions"]
             for a, v in c["per_seed"].items()]
    lines += ["", per_seed_markdown(seeds, ("condition", "method")).replace(
        "Per-seed test reward", "Per-seed test score")]
    return "\n".join(lines)


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
