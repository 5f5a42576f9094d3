"""The SQL-level filter (Theorem 4.1, dataset-wide top-kappa) in front of Algorithm 1.

Each seed's logs go through the real data path - Parquet -> DuckDB ingest -> sql/cvar_filter.sql
-> export with weights -> DRPO - once per kappa, to choose the pipeline's default by measurement.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

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
from drpo_core.sim import LogSimulator
from drpo_core.warehouse import open_warehouse
from drpo_core.warehouse.cvar_filter import cvar_filter
from drpo_core.warehouse.export import export_window
from drpo_core.warehouse.ingest import ingest_partition

KAPPAS = (0.1, 0.25, 0.5, 0.75, 1.0)
DAY = dt.date(2026, 1, 1)


NOTE = "reward, not eCPM; BC trained on the same logs"


def run(size: StudySize, scenarios: tuple[str, ...] = ("medium", "extreme")) -> dict[str, Any]:
    values: dict[tuple[str, float], list[float]] = {}
    refs = []
    for scenario_name in scenarios:
        lines = []
        for seed in range(size.seeds):
            scenario = make_scenario(scenario_name, size, seed)
            lines.append(references(scenario, size, seed))
            cfg = world_config(scenario_name, size, seed)
            with tempfile.TemporaryDirectory() as tmp:
                LogSimulator(cfg).write(Path(tmp) / "logs", DAY, 1, size.rows, progress=False)
                with open_warehouse(Path(tmp) / "wh.duckdb") as wh:
                    ingest_partition(wh, Path(tmp) / "logs", DAY)
                    for kappa in KAPPAS:
                        cvar_filter(wh, DAY, DAY, kappa)
                        data = export_window(wh, DAY, DAY)
                        cell = train_and_score(scenario, "drpo", size, seed, data=data)
                        values.setdefault((scenario_name, kappa), []).append(cell.ecpm)
        refs += reference_rows(lines, scenario=scenario_name)
    rows = []
    for (scenario_name, kappa), v in values.items():
        ecpm, ci = mean_ci(v)
        rows.append({"scenario": scenario_name, "kappa": kappa, "ecpm": ecpm, "ecpm_ci": ci,
                     "per_seed": v})
    return {"kappa_sweep": rows, "kappa_sweep_references": refs}


def markdown(result: dict[str, Any]) -> str:
    lines = ["| scenario | " + " | ".join(f"kappa {k:g}" for k in KAPPAS) + " |",
             "|---" * (len(KAPPAS) + 1) + "|"]
    by = {(r["scenario"], r["kappa"]): r for r in result["kappa_sweep"]}
    for scenario in sorted({r["scenario"] for r in result["kappa_sweep"]}):
        lines.append(f"| {scenario} | " + " | ".join(
            f"{by[(scenario, k)]['ecpm']:.2f} ± {by[(scenario, k)]['ecpm_ci']:.2f}"
            for k in KAPPAS) + " |")
    text = "\n".join(lines) + "\n\nDRPO eCPM after the SQL pre-filter (kappa = 1: none)."
    if "kappa_sweep_references" in result:
        text += "\n\n" + references_markdown(result["kappa_sweep_references"], note=NOTE)
    return text
