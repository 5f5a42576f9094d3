"""``docs/reproduction.md`` from a study's ``results.json`` (plus a hand-written discussion).

    drpo reproduce --output docs/reproduction                 # the full study (~60 min)
    python -m drpo_core.experiments.report docs/reproduction  # regenerates docs/reproduction.md

Every number in the document comes from ``results.json``; a test regenerates the document and
compares it with the committed one.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from drpo_core.experiments.runner import PARTS, part_results

TITLES = {
    "table1": "Table 1 (RQ2): main comparison, test users",
    "rq1": "Fig. 2 (RQ1): phantom gradients",
    "noise": "Fig. 3 (RQ3a): injected noise, eCPM",
    "ablation": "Table 2 (RQ3b): ablation, medium scenario",
    "fixed_ratios": "App. K: fixed kept ratios, eCPM",
    "online": "Fig. 4 (RQ4): offline-to-online",
    "kappa_sweep": "SQL pre-filter (Theorem 4.1) in front of Algorithm 1",
    "investigation": "Investigation: where our run disagrees with the paper, and why",
    "conditions": "Conditions: where DRPO is worth choosing",
    "quality": "Quality signals: what DRPO filters on (heavy users, sessions)",
}
#: Figures next to their tables (paths relative to docs/). rq1 draws its own while it runs; the
#: others are drawn by ``write`` from results.json (``figure`` of the part's module).
FIGURES = {"rq1": "fig2_phantom_gradients.png", "noise": "fig3_noise.png",
           "online": "fig4_offline_to_online.png"}


def headline(size: dict[str, Any]) -> str:
    steps = size.get("headline_steps")
    return "" if steps is None else f"Headline tables (Table 1, Table 2): {steps} steps. "


def runtime(results: dict[str, Any]) -> str:
    seconds = results["seconds"]
    parts = "(" + ", ".join(f"{k} {v / 60:.1f}" for k, v in seconds.items()) + ")."
    if results.get("wall_seconds") is None:
        return f"Runtime on 2 cores: {sum(seconds.values()) / 60:.1f} min " + parts
    return (f"Wall time on 2 cores: {results['wall_seconds'] / 60:.1f} min, parts in parallel "
            f"processes; minutes per part " + parts)


def grids_markdown(grids: dict[str, list[dict[str, Any]]]) -> str:
    lines = ["Every method with a hyperparameter gets three grid points, chosen by mean reward "
             "on the validation users of the first seed (never the test users) and kept for "
             "every seed. BC and APG have none.", "", "| method | grid |", "|---|---|"]
    lines += [f"| {name} | " + " / ".join(", ".join(f"{k} = {v}" for k, v in flat(point))
                                          for point in points) + " |"
              for name, points in grids.items()]
    return "\n".join(lines)


def flat(point: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """``{"controller": {"target_ratio": 0.3}}`` -> ``[("controller.target_ratio", 0.3)]``."""
    out: list[tuple[str, Any]] = []
    for key, value in point.items():
        if isinstance(value, dict):
            out += flat(value, f"{prefix}{key}.")
        else:
            out.append((f"{prefix}{key}", value))
    return out


def render(results: dict[str, Any], discussion: str, folder: str) -> str:
    size = results["size"]
    seconds = results["seconds"]
    lines = [
        "# Reproducing the paper on the simulator",
        "",
        f"Made by `drpo reproduce --output {folder}` (all parts; each section names the "
        f"command that reruns it alone; numbers: `{folder}/results.json`) and "
        f"`python -m drpo_core.experiments.report {folder}` (this page). Study size: "
        f"{size['seeds']} seeds per cell, {size['rows']:,} logged rows per dataset, "
        f"{size['steps']} gradient steps per training, {size['eval_users']} test users, "
        f"d = {size['d']}, {size['n_items']} items. Intervals are 95 % t-intervals over seeds. "
        + headline(size) + runtime(results),
        "",
        "Paper values (digest §7) stand in brackets or in their own column. Our eCPM is 5 x the",
        "noise-free reward of the retrieved item (the paper's Table 1 eCPM is 5 x its reward).",
        "",
    ]
    if "table1_grids" in results:
        lines += ["## Equal tuning", "", grids_markdown(results["table1_grids"]), ""]
    for name, module in PARTS.items():
        if name not in results:
            continue
        lines += [f"## {TITLES[name]}", "",
                  f"Made by `drpo reproduce --only {name} --output {folder}` "
                  f"({seconds[name] / 60:.1f} min).", "",
                  module.markdown(part_results(results, name)), ""]
        if name in FIGURES:
            lines += [f"![{name}]({Path(folder).name}/{FIGURES[name]})", ""]
    lines += ["## Discussion", "", discussion.strip(), ""]
    return "\n".join(lines)


def write(folder: Path, target: Path) -> str:
    results = json.loads((folder / "results.json").read_text())
    discussion_file = folder / "discussion.md"
    discussion = discussion_file.read_text() if discussion_file.exists() else "(none yet)"
    for name, module in PARTS.items():
        if name in results and hasattr(module, "figure"):
            module.figure(part_results(results, name), folder / FIGURES[name])
    text = render(results, discussion, folder.as_posix())
    target.write_text(text)
    return text


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/reproduction")
    target = folder.parent / f"{folder.name}.md"
    write(folder, target)
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
