"""``drpo reproduce``: run the study's parts and write JSON, markdown tables and figures.

Parts: Table 1 (RQ2), Fig. 2 (RQ1), Fig. 3 (noise injection), Table 2 (ablation), App. K
(fixed ratios), Fig. 4 (offline-to-online, our protocol), the SQL kappa sweep, and the
investigation of where our run disagrees with the paper.

``--only`` reruns some parts and merges them into the output folder's ``results.json`` when it
holds a study of the same size (the other parts' numbers and seconds stay).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from drpo_core.experiments import (
    ablation,
    fixed_ratios,
    investigation,
    kappa_sweep,
    noise,
    online,
    rq1,
    table1,
)
from drpo_core.experiments.study import FULL, QUICK, StudySize

PARTS = {"table1": table1, "rq1": rq1, "noise": noise, "ablation": ablation,
         "fixed_ratios": fixed_ratios, "online": online, "kappa_sweep": kappa_sweep,
         "investigation": investigation}


def reproduce(output: Path, quick: bool = False, only: list[str] | None = None,
              size: StudySize | None = None) -> dict[str, Any]:
    size = size or (QUICK if quick else FULL)
    unknown = sorted(set(only or []) - set(PARTS))
    if unknown:
        raise ValueError(f"unknown study part(s) {unknown}; valid: {', '.join(PARTS)}")
    output.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"size": size.model_dump(), "quick": quick, "seconds": {}}
    saved = output / "results.json"
    if only and saved.exists():
        previous = json.loads(saved.read_text())
        if previous.get("size") == results["size"]:
            results = previous
    for name, module in PARTS.items():
        if only and name not in only:
            continue
        started = time.perf_counter()
        part = module.run(size, output) if name == "rq1" else module.run(size)
        results.update(part)
        results["seconds"][name] = time.perf_counter() - started
        # written after every part: a long study that stops keeps what it finished
        saved.write_text(json.dumps(results, indent=2, default=float) + "\n")
    (output / "tables.md").write_text("\n".join(
        f"## {name}\n\n{module.markdown({name: results[name]})}\n"
        for name, module in PARTS.items() if name in results))
    return results
