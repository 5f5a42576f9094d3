"""App. K: fixed kept ratios 5 % / 40 % / 100 % x reward noise x policy noise.

"Policy noise" is read as the expert's softmax temperature (digest §5, an assumption). An extra
column, not in the paper's table, runs full DRPO (the variance-guided ratio) on the same data:
the paper motivates the adaptive ratio by exactly this table (no fixed ratio wins everywhere).
"""

from __future__ import annotations

from typing import Any

from drpo_core.experiments.markdown import references_markdown
from drpo_core.experiments.study import (
    StudySize,
    make_scenario,
    mean_ci,
    reference_rows,
    references,
    train_and_score,
)

RATIOS = (0.05, 0.4, 1.0)
ADAPTIVE = "adaptive"
REWARD_NOISE = (0.0, 0.5, 1.0)
POLICY_NOISE = (0.1, 0.5)
PAPER = {  # (policy noise, reward noise) -> eCPM at 5 %, 40 %, 100 %
    (0.1, 0.0): (1.69, 1.69, 1.35), (0.1, 0.5): (1.29, 1.29, 1.20),
    (0.1, 1.0): (1.06, 1.06, 1.13), (0.5, 0.0): (1.63, 1.63, 1.59),
    (0.5, 0.5): (1.13, 1.13, 1.04), (0.5, 1.0): (0.87, 0.87, 0.93)}


NOTE = "reward, not eCPM; BC trained on the same logs"


def run(size: StudySize) -> dict[str, Any]:
    values: dict[tuple[float, float, float], list[float]] = {}
    lines: dict[str, list[dict[str, float]]] = {}
    for seed in range(size.seeds):
        for policy_noise in POLICY_NOISE:
            for reward_noise in REWARD_NOISE:
                scenario = make_scenario("medium", size, seed, reward_noise=reward_noise,
                                         expert_temperature=policy_noise)
                lines.setdefault(condition(policy_noise, reward_noise), []).append(
                    references(scenario, size, seed))
                for ratio in (*RATIOS, ADAPTIVE):
                    objective = {} if ratio == ADAPTIVE else {
                        "controller": {"initial_keep_share": ratio, "adaptive": False}}
                    cell = train_and_score(scenario, "drpo", size, seed, objective)
                    values.setdefault((policy_noise, reward_noise, ratio), []).append(
                        cell.ecpm)
    rows = []
    for (policy_noise, reward_noise, ratio), v in values.items():
        ecpm, ci = mean_ci(v)
        rows.append({"policy_noise": policy_noise, "reward_noise": reward_noise,
                     "keep_share": ratio, "ecpm": ecpm, "ecpm_ci": ci, "per_seed": v,
                     "paper_ecpm": None if ratio == ADAPTIVE
                     else PAPER[(policy_noise, reward_noise)][RATIOS.index(ratio)]})
    refs = [row for name, per_seed in lines.items()
            for row in reference_rows(per_seed, condition=name)]
    return {"fixed_ratios": rows, "fixed_ratios_references": refs}


def condition(policy_noise: float, reward_noise: float) -> str:
    return f"policy noise {policy_noise:g}, reward noise {reward_noise:g}"


def markdown(result: dict[str, Any]) -> str:
    lines = ["| policy noise | reward noise | top 5 % | top 40 % | 100 % | adaptive (DRPO) |",
             "|---|---|---|---|---|---|"]
    by = {(r["policy_noise"], r["reward_noise"], r["keep_share"]): r
          for r in result["fixed_ratios"]}
    for pn in POLICY_NOISE:
        for rn in REWARD_NOISE:
            cells = [by[(pn, rn, k)] for k in RATIOS]
            adaptive = by[(pn, rn, ADAPTIVE)]
            lines.append(f"| {pn} | {rn} | " + " | ".join(
                f"{c['ecpm']:.2f} ({c['paper_ecpm']:.2f})" for c in cells)
                + f" | {adaptive['ecpm']:.2f} ± {adaptive['ecpm_ci']:.2f} |")
    text = "\n".join(lines) + "\n\nPaper values (App. K) in brackets."
    if "fixed_ratios_references" in result:
        text += "\n\n" + references_markdown(result["fixed_ratios_references"],
                                              "condition", note=NOTE)
    return text
