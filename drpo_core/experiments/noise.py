"""Fig. 3 (RQ3a): random low-quality rows injected into the training data at 0-80 %.

The injected rows come from the same world logged by a purely random policy (same seed, so
the same items and users); the training set size stays fixed.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import torch

from drpo_core.data import TrainingData, table_to_training_data
from drpo_core.experiments.markdown import references_markdown
from drpo_core.experiments.study import (
    StudySize,
    make_scenario,
    mean_ci,
    reference_rows,
    references,
    train_and_score,
    world_config,
)
from drpo_core.plots import plt
from drpo_core.sim import LoggingMixture, LogSimulator

ALGORITHMS = ("drpo", "drpo_exp", "iql", "awr", "crr", "asymre")
RATIOS = (0.0, 0.2, 0.4, 0.6, 0.8)
PAPER_ECPM = {  # Fig. 3 read from the vector figure (digest §7)
    "drpo_exp": (1.50, 1.44, 1.45, 1.42, 1.35), "drpo": (1.46, 1.47, 1.45, 1.41, 1.33),
    "iql": (1.48, 1.40, 1.35, 1.28, 1.15), "awr": (1.29, 1.16, 1.09, 1.03, 1.06),
    "crr": (1.12, 1.12, 1.12, 1.01, 0.76), "asymre": (0.05, 0.00, 0.00, 0.00, 0.00)}


def mix(base: TrainingData, noise: TrainingData, ratio: float, seed: int) -> TrainingData:
    n = base.n_rows
    k = round(ratio * n)
    g = torch.Generator().manual_seed(seed)
    keep = torch.randperm(n, generator=g)[: n - k]
    take = torch.randperm(noise.n_rows, generator=g)[:k]
    parts = [(base, keep), (noise, take)]
    return TrainingData(*(torch.cat([getattr(d, f)[i] for d, i in parts])
                          for f in ("state", "action", "reward", "behavior_logprob")))


def random_rows(size: StudySize, seed: int) -> TrainingData:
    """Rows of the seed's world logged by the purely random policy (the injected noise)."""
    config = world_config("medium", size, seed,
                          mixture=LoggingMixture(expert=0.0, popular=0.0, random=1.0))
    random_logs = LogSimulator(config.model_copy(update={"scenario": "random"}))
    return table_to_training_data(random_logs.day_table(1, dt.date(2026, 1, 2), size.rows))


NOTE = "reward, not eCPM; BC trained on the same logs"


def run(size: StudySize) -> dict[str, Any]:
    cells: dict[tuple[str, float], list[float]] = {}
    lines = []
    for seed in range(size.seeds):
        scenario = make_scenario("medium", size, seed)
        lines.append(references(scenario, size, seed))
        noise = random_rows(size, seed)
        for ratio in RATIOS:
            data = mix(scenario.data, noise, ratio, seed)
            for algorithm in ALGORITHMS:
                cell = train_and_score(scenario, algorithm, size, seed, data=data)
                cells.setdefault((algorithm, ratio), []).append(cell.ecpm)
    rows = []
    for (algorithm, ratio), values in cells.items():
        ecpm, ci = mean_ci(values)
        rows.append({"algorithm": algorithm, "noise_ratio": ratio, "ecpm": ecpm, "ecpm_ci": ci,
                     "per_seed": values,
                     "paper_ecpm": PAPER_ECPM[algorithm][RATIOS.index(ratio)]})
    return {"noise": rows,
            "noise_references": reference_rows(lines, world="medium, 0 % injected rows")}


def markdown(result: dict[str, Any]) -> str:
    head = "| algorithm | " + " | ".join(f"{int(r * 100)} % noise" for r in RATIOS) + \
        " | eCPM(80 %) / eCPM(0 %) |"
    lines = [head, "|---" * (len(RATIOS) + 2) + "|"]
    by = {(r["algorithm"], r["noise_ratio"]): r for r in result["noise"]}
    for algorithm in ALGORITHMS:
        cells = [by[(algorithm, ratio)] for ratio in RATIOS]
        text = " | ".join(f"{c['ecpm']:.2f} ± {c['ecpm_ci']:.2f} ({c['paper_ecpm']:.2f})"
                          for c in cells)
        ratio = cells[-1]["ecpm"] / cells[0]["ecpm"] if cells[0]["ecpm"] else float("nan")
        lines.append(f"| {algorithm} | {text} | {ratio:.2f} |")
    text = "\n".join(lines) + "\n\nPaper values (Fig. 3, read from the figure) in brackets."
    if "noise_references" in result:
        text += "\n\n" + references_markdown(result["noise_references"], "world", note=NOTE)
    return text


def figure(result: dict[str, Any], path: Path) -> None:
    """Fig. 3: final eCPM against the injected share, ours (lines) and the paper's (dashed)."""
    fig, ax = plt.subplots(figsize=(6.5, 4), dpi=110)
    x = [100 * r for r in RATIOS]
    by = {(r["algorithm"], r["noise_ratio"]): r for r in result["noise"]}
    for algorithm in ALGORITHMS:
        cells = [by[(algorithm, ratio)] for ratio in RATIOS]
        line = ax.errorbar(x, [c["ecpm"] for c in cells], yerr=[c["ecpm_ci"] for c in cells],
                           marker="o", capsize=3, lw=1.5, label=algorithm)
        ax.plot(x, PAPER_ECPM[algorithm], ls="--", lw=1, alpha=0.6,
                color=line.lines[0].get_color())
    ax.set_xlabel("injected random rows (%)")
    ax.set_ylabel("final eCPM (test users)")
    ax.set_title("Fig. 3: ours (solid, 95 % CI) vs paper (dashed)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
