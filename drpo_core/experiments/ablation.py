"""Table 2 (RQ3b): which part of DRPO matters.

Rows, as we define the paper's undefined "Soft-Base" (digest §10.5): the soft base is AsymRe's
asymmetric weighting; "plain advantage" is r - mean(r_top) on the kept rows (negatives stay).
The fixed ratio is the controller's equilibrium P (issue 16): DRPO trains first on the seed's
data, the mean of its kept share P over the second half of training is that seed's fixed
ratio, so "fixed vs adaptive" compares the same average share with and without feedback. Every
row is compared with full DRPO by the paired difference over seeds.
"""

from __future__ import annotations

from typing import Any

from drpo_core.experiments.markdown import paired_markdown, references_markdown
from drpo_core.experiments.study import (
    StudySize,
    make_scenario,
    mean_ci,
    paired_rows,
    reference_rows,
    references,
    train_and_score,
)

FULL_DRPO = "soft base + adaptive filter (DRPO)"
#: (variant, algorithm, objective without the fixed share, paper True eCPM, fixed ratio?)
ROWS: list[tuple[str, str, dict[str, Any], float, bool]] = [
    ("hard filter (fixed), plain advantage", "drpo", {"baseline": "mean_top"}, 0.12, True),
    ("soft base, no filter", "asymre", {}, 1.15, False),
    ("soft base + hard filter (fixed ratio)", "drpo", {}, 1.31, True),
    (FULL_DRPO, "drpo", {}, 1.42, False),
]


def fixed(objective: dict[str, Any], keep_share: float) -> dict[str, Any]:
    return objective | {"controller": {"initial_keep_share": keep_share, "adaptive": False}}


def run(size: StudySize) -> dict[str, Any]:
    size = size.headline
    values: dict[str, list[float]] = {name: [] for name, *_ in ROWS}
    ecpm: dict[str, list[float]] = {name: [] for name, *_ in ROWS}
    shares: list[float] = []
    lines = []
    for seed in range(size.seeds):
        scenario = make_scenario("medium", size, seed)
        lines.append(references(scenario, size, seed))
        drpo = train_and_score(scenario, "drpo", size, seed)
        assert drpo.equilibrium_keep_share is not None
        share = drpo.equilibrium_keep_share
        shares.append(share)
        for name, algorithm, objective, _, is_fixed in ROWS:
            cell = drpo if name == FULL_DRPO else train_and_score(
                scenario, algorithm, size, seed, fixed(objective, share) if is_fixed
                else objective)
            values[name].append(cell.mean_reward)
            ecpm[name].append(cell.ecpm)
    rows = []
    for name, _, objective, paper, is_fixed in ROWS:
        mean, ci = mean_ci(ecpm[name])
        rows.append({"variant": name, "objective": objective, "fixed_ratio": is_fixed,
                     "ecpm": mean, "ecpm_ci": ci, "paper_true_ecpm": paper,
                     "per_seed": values[name]})
    named = {name: values[name] for name, *_ in ROWS}
    paired = [r | {"variant": "medium"} for r in paired_rows(named, FULL_DRPO)]
    return {"ablation": rows, "ablation_equilibrium_keep_share": shares,
            "ablation_references": reference_rows(lines, variant="medium"),
            "ablation_paired": paired}


def markdown(result: dict[str, Any]) -> str:
    lines = ["| variant | eCPM (95% CI) | paper True eCPM |", "|---|---|---|"]
    for r in result["ablation"]:
        lines.append(f"| {r['variant']} | {r['ecpm']:.2f} ± {r['ecpm_ci']:.2f} | "
                     f"{r['paper_true_ecpm']:.2f} |")
    if "ablation_equilibrium_keep_share" in result:
        shares = result["ablation_equilibrium_keep_share"]
        lines += ["", "Fixed ratio = DRPO's equilibrium P per seed: "
                  + ", ".join(f"{s:.3f}" for s in shares) + "."]
    if "ablation_references" in result:
        lines += ["", references_markdown(result["ablation_references"], "variant",
                                          note="BC trained on the same logs")]
    if "ablation_paired" in result:
        lines += ["", paired_markdown(result["ablation_paired"], "variant").replace(
            "DRPO - X (test reward", "full DRPO - X (test reward")]
    return "\n".join(lines)
