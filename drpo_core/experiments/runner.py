"""``drpo reproduce``: run the study's parts and write JSON, markdown tables and figures.

Parts: Table 1 (RQ2), Fig. 2 (RQ1), Fig. 3 (noise injection), Table 2 (ablation), App. K
(fixed ratios), Fig. 4 (offline-to-online, our protocol), the SQL kappa sweep, the
investigation of where our run disagrees with the paper, the conditions table (where DRPO
is worth choosing) and the quality signals (what DRPO filters on, issue 11).

``--only`` reruns some parts and merges them into the output folder's ``results.json`` when it
holds a study of the same size (the other parts' numbers and seconds stay). ``jobs`` runs parts
in parallel processes (one torch thread each); the full study uses both cores by default.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from types import ModuleType
from typing import Any

from drpo_core.experiments import (
    ablation,
    conditions,
    fixed_ratios,
    investigation,
    kappa_sweep,
    noise,
    online,
    quality,
    rq1,
    table1,
)
from drpo_core.experiments.study import FULL, QUICK, StudySize, set_threads

PARTS: dict[str, ModuleType] = {
    "table1": table1, "rq1": rq1, "noise": noise, "ablation": ablation,
    "fixed_ratios": fixed_ratios, "online": online, "kappa_sweep": kappa_sweep,
    "investigation": investigation, "conditions": conditions, "quality": quality}
#: Longest parts first, so parallel workers finish together.
ORDER = ("table1", "conditions", "quality", "fixed_ratios", "investigation", "noise", "ablation",
         "kappa_sweep", "online", "rq1")


def part_results(results: dict[str, Any], name: str) -> dict[str, Any]:
    """The part's own keys of ``results`` (its table and its ``<name>_...`` companions)."""
    return {k: v for k, v in results.items() if k == name or k.startswith(f"{name}_")}


def run_part(name: str, size: StudySize, output: Path) -> tuple[str, dict[str, Any], float]:
    set_threads()
    started = time.perf_counter()
    module = PARTS[name]
    part = module.run(size, output) if name == "rq1" else module.run(size)
    return name, part, time.perf_counter() - started


def reproduce(output: Path, quick: bool = False, only: list[str] | None = None,
              size: StudySize | None = None, jobs: int | None = None) -> dict[str, Any]:
    jobs = jobs or (2 if size is None and not quick else 1)  # the full study: both cores
    size = size or (QUICK if quick else FULL)
    unknown = sorted(set(only or []) - set(PARTS))
    if unknown:
        raise ValueError(f"unknown study part(s) {unknown}; valid: {', '.join(PARTS)}")
    output.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"size": size.model_dump(mode="json"), "quick": quick,
                               "seconds": {}}
    saved = output / "results.json"
    if only and saved.exists():
        previous = json.loads(saved.read_text())
        if previous.get("size") == results["size"]:
            results = previous
    names = [n for n in ORDER if not only or n in only]
    started = time.perf_counter()

    def keep(name: str, part: dict[str, Any], seconds: float) -> None:
        results.update(part)
        results["seconds"][name] = seconds
        # written after every part: a long study that stops keeps what it finished
        saved.write_text(json.dumps(results, indent=2, default=float) + "\n")

    if jobs == 1:
        for name in names:
            keep(*run_part(name, size, output))
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(jobs, mp_context=context) as pool:
            futures = [pool.submit(run_part, name, size, output) for name in names]
            for future in as_completed(futures):
                keep(*future.result())
    results["wall_seconds"] = time.perf_counter() - started if not only else results.get(
        "wall_seconds")
    saved.write_text(json.dumps(results, indent=2, default=float) + "\n")
    (output / "tables.md").write_text("\n".join(
        f"## {name}\n\n{module.markdown(part_results(results, name))}\n"
        for name, module in PARTS.items() if name in results))
    return results
