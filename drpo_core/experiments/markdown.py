"""Markdown blocks every table of the study shares: reference lines, paired differences, the
per-seed values."""

from __future__ import annotations

from typing import Any


def references_markdown(rows: list[dict[str, Any]], key: str = "scenario",
                        note: str = "BC is its row above") -> str:
    names = list(dict.fromkeys(r["reference"] for r in rows))
    groups = list(dict.fromkeys(r[key] for r in rows))
    by = {(r[key], r["reference"]): r for r in rows}
    out = [f"Reference lines (test reward, 95 % CI over seeds; {note}):", "",
           f"| {key} | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for g in groups:
        out.append(f"| {g} | " + " | ".join(
            f"{by[(g, n)]['reward']:.3f} ± {by[(g, n)]['reward_ci']:.3f}"
            if (g, n) in by else "-" for n in names) + " |")
    return "\n".join(out)


def paired_markdown(rows: list[dict[str, Any]], key: str) -> str:
    out = ["Paired differences DRPO - X (test reward; per seed, 95 % t-interval, "
           "scipy.stats.ttest_rel):", "",
           f"| {key} | X | DRPO - X | 95 % interval | p |", "|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r[key]} | {r['minus']} | {r['mean']:+.4f} | "
                   f"[{r['low']:+.4f}, {r['high']:+.4f}] | {r['p_value']:.3f} |")
    return "\n".join(out)


def per_seed_markdown(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> str:
    out = ["<details><summary>Per-seed test reward</summary>", "",
           "| " + " | ".join(keys) + " | per seed |", "|" + "---|" * (len(keys) + 1)]
    for r in rows:
        if "per_seed" in r:
            out.append("| " + " | ".join(str(r[k]) for k in keys) + " | "
                       + ", ".join(f"{v:.3f}" for v in r["per_seed"]) + " |")
    return "\n".join([*out, "", "</details>"])
