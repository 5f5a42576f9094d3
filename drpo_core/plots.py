"""PNG plots people would rather look at than read: learning curves, kept share P, sigma,
and the reward distribution with the kappa cut."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

CURVES = {
    "loss.png": ("losses/total", "training loss"),
    "keep_share.png": ("filter/keep_share", "kept share P (variance feedback)"),
    "sigma.png": ("policy/sigma", "policy sigma (mean of exp(log-std))"),
}


def training_curves(history: Sequence[dict[str, float]], out_dir: Path, title: str = ""
                    ) -> list[Path]:
    """One PNG per curve present in ``history`` (records with a ``step`` key)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    steps = [r["step"] for r in history]
    for filename, (key, label) in CURVES.items():
        if not history or key not in history[0]:
            continue
        fig, ax = plt.subplots(figsize=(6, 3.5), dpi=110)
        ax.plot(steps, [r[key] for r in history], lw=1.5)
        ax.set_xlabel("gradient step")
        ax.set_ylabel(label)
        if key == "policy/sigma":
            ax.set_yscale("log")
        ax.set_title(f"{title} - {label}" if title else label, fontsize=10)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(out_dir / filename)
        plt.close(fig)
        written.append(out_dir / filename)
    return written


def reward_distribution(groups: dict[str, np.ndarray], path: Path, kappa: float | None = None,
                        title: str = "logged reward") -> Path:
    """Left: histogram of rewards per group (e.g. logging component) and overall, with the
    kappa cut nu = (1 - kappa)-quantile of all rewards (Theorem 4.1). Right: reward against
    its rank on log-log axes (a Zipf law is a straight line) with the top-10 % mass share."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, (ax, rank_ax) = plt.subplots(1, 2, figsize=(12, 4), dpi=110)
    everything = np.concatenate(list(groups.values()))
    top = max(float(np.quantile(everything, 0.999)), 1e-9)
    bins = np.linspace(0.0, top, 51)
    ax.hist(everything, bins=bins, histtype="stepfilled", color="0.85", label="all rows")
    for name, values in groups.items():
        ax.hist(values, bins=bins, histtype="step", lw=1.6, label=name)
    if kappa is not None:
        nu = float(np.quantile(everything, 1.0 - kappa))
        ax.axvline(nu, color="k", ls="--", lw=1.2,
                   label=f"top-kappa cut, kappa={kappa:g} (nu={nu:.3f})")
    ax.set_xlabel("reward (99.9 % of rows shown)")
    ax.set_ylabel("rows")
    ax.set_yscale("log")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ordered = np.sort(everything)[::-1]
    positive = ordered[ordered > 0]
    share = ordered[: len(ordered) // 10].sum() / max(ordered.sum(), 1e-12)
    rank_ax.loglog(np.arange(1, len(positive) + 1), positive, lw=1.5)
    rank_ax.set_xlabel("rank of the row by reward")
    rank_ax.set_ylabel("reward")
    rank_ax.set_title(f"rank-reward (top 10 % of rows hold {share:.0%} of the reward)",
                      fontsize=10)
    rank_ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
