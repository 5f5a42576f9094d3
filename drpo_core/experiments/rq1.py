"""Fig. 2 (RQ1): phantom gradients of negative samples during attractive-only training."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from drpo_core.diagnostics import phantom_gradient_study
from drpo_core.experiments.study import StudySize, make_scenario

#: Fig. 2 values read from the paper's vector figure (digest §7), at step 2000.
PAPER_END = {"phantom/total": 83.9, "actual/total": 9.3, "phantom/log_std": 15.6,
             "actual/log_std": 0.27, "phantom/mean": 0.22, "actual/mean": 0.12}


def run(size: StudySize, out: Path, steps: int | None = None) -> dict[str, Any]:
    scenario = make_scenario("medium", size, seed=0)
    steps = steps or max(200, min(2000, size.steps))
    records = phantom_gradient_study(scenario.data, steps=steps, record_every=max(10, steps // 40))
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), dpi=110)
    for ax, part in zip(axes, ("total", "mean", "log_std"), strict=True):
        x = [r["step"] for r in records]
        ax.plot(x, [r[f"phantom/{part}"] for r in records], label="phantom (negatives)")
        ax.plot(x, [r[f"actual/{part}"] for r in records], "--", label="actual (positives)")
        ax.set_title(f"gradient norm: {part}", fontsize=10)
        ax.set_xlabel("training step")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "fig2_phantom_gradients.png")
    plt.close(fig)
    first, last = records[0], records[-1]
    return {"rq1": {"records": records, "steps": steps,
                    "end_ratio_total": last["phantom/total"] / last["actual/total"],
                    "end_ratio_log_std": last["phantom/log_std"] / last["actual/log_std"],
                    "end_ratio_mean": last["phantom/mean"] / last["actual/mean"],
                    "sigma_start": first["sigma"], "sigma_end": last["sigma"],
                    "paper_end": PAPER_END}}


def markdown(result: dict[str, Any]) -> str:
    r = result["rq1"]
    return "\n".join([
        "| ratio phantom / actual at the end | ours | paper (Fig. 2, step 2000) |",
        "|---|---|---|",
        f"| total gradient norm | {r['end_ratio_total']:.1f} | 9.0 |",
        f"| mean output | {r['end_ratio_mean']:.1f} | 1.8 |",
        f"| log-std output | {r['end_ratio_log_std']:.1f} | 58 |",
        f"| sigma start -> end | {r['sigma_start']:.3f} -> {r['sigma_end']:.3f} | shrinks |",
    ])
