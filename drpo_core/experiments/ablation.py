"""Table 2 (RQ3b): which part of DRPO matters.

Rows, as we define the paper's undefined "Soft-Base" (digest §10.5): the soft base is AsymRe's
asymmetric weighting; "plain advantage" is r - mean(r_top) on the kept rows (negatives stay).
The fixed ratio is 0.5 (the paper does not give it).
"""

from __future__ import annotations

from typing import Any

from drpo_core.experiments.study import StudySize, make_scenario, mean_ci, train_and_score

FIXED = {"initial_keep_share": 0.5, "adaptive": False}
ROWS: list[tuple[str, str, dict[str, Any], float]] = [
    ("hard filter (fixed), plain advantage", "drpo",
     {"controller": FIXED, "baseline": "mean_top"}, 0.12),
    ("soft base, no filter", "asymre", {}, 1.15),
    ("soft base + hard filter (fixed ratio)", "drpo", {"controller": FIXED}, 1.31),
    ("soft base + adaptive filter (DRPO)", "drpo", {}, 1.42),
]


def run(size: StudySize) -> dict[str, Any]:
    values: dict[str, list[float]] = {name: [] for name, *_ in ROWS}
    for seed in range(size.seeds):
        scenario = make_scenario("medium", size, seed)
        for name, algorithm, objective, _ in ROWS:
            values[name].append(train_and_score(scenario, algorithm, size, seed,
                                                objective).ecpm)
    rows = []
    for name, _, objective, paper in ROWS:
        ecpm, ci = mean_ci(values[name])
        rows.append({"variant": name, "objective": objective, "ecpm": ecpm, "ecpm_ci": ci,
                     "paper_true_ecpm": paper})
    return {"ablation": rows}


def markdown(result: dict[str, Any]) -> str:
    lines = ["| variant | eCPM (95% CI) | paper True eCPM |", "|---|---|---|"]
    for r in result["ablation"]:
        lines.append(f"| {r['variant']} | {r['ecpm']:.2f} ± {r['ecpm_ci']:.2f} | "
                     f"{r['paper_true_ecpm']:.2f} |")
    return "\n".join(lines)
