"""The MLflow version of a training run: params, history, evaluation, lineage tags, the policy.
A healthy version gets the ``challenger`` alias."""

from __future__ import annotations

import datetime as dt
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drpo_core.inference import load_run_policy
from drpo_core.policy import MeanActionHead
from drpo_core.training_run import POLICY_FILE
from flows import registry
from flows.jobs.evaluate import Evaluation
from flows.jobs.train import TrainStep
from flows.jobs.window import Window
from flows.validation import ValidationOutcome

RUN_ARTIFACTS = ("loss.png", "keep_share.png", "sigma.png", "metrics.json", "config.json")


@dataclass(frozen=True)
class Registration:
    version: int
    run_id: str
    created: bool


def _metrics(step: TrainStep, evaluation: Evaluation) -> dict[str, float]:
    score = evaluation.challenger
    return {**{f"final/{k}": v for k, v in step.final.items() if k != "step"},
            **{f"eval/ope_{k}": v for k, v in score.off_policy.items()},
            **{f"eval/online_{k}": v for k, v in (score.online or {}).items()}}


def _tags(logical_date: dt.date, step: TrainStep, window: Window,
          validation: ValidationOutcome, metrics: dict[str, float]) -> dict[str, str]:
    s = window.summary
    tags = {"logical_date": logical_date.isoformat(),
            "window": f"{s['window_start']}..{s['window_end']}", "kappa": str(s["kappa"]),
            "quality": s["quality"], "gamma": str(s["gamma"]),
            "data_hash": window.fingerprint, "sql_hash": s["sql_hash"],
            "git_sha": git_sha(), "validation": _validation_tag(validation, window),
            "algorithm": step.config["algorithm"], "healthy": str(step.health.get("healthy")),
            **window.coverage_tags,
            "validation_data_docs": str(validation.data_docs or "none"),
            **{k: f"{v:.6g}" for k, v in metrics.items() if k.startswith("eval/")}}
    return {k.replace("/", "."): v for k, v in tags.items()}


def _validation_tag(validation: ValidationOutcome, window: Window) -> str:
    """passed: the logical date and every window day passed; overridden: trained anyway."""
    clean = window.coverage_tags["window_unvalidated_days"] == "none"
    return "passed" if validation.success and clean else "overridden"


def register(logical_date: dt.date, step: TrainStep, window: Window, evaluation: Evaluation,
             validation: ValidationOutcome) -> Registration:
    client = registry.configure()
    metrics = _metrics(step, evaluation)
    manifest: dict[str, Any] = {"data_hash": window.fingerprint,
                                "rows": window.report.rows_kept, "draws": window.data.n_rows,
                                "sample": window.data.fingerprint(), "window": window.summary}
    version = registry.log_and_register(
        client, run_key=step.run_key,
        run_name=f"{step.config['algorithm']}-{logical_date.isoformat()}",
        params=step.config, history=step.history, metrics=metrics,
        artifacts=[step.run_dir / name for name in RUN_ARTIFACTS],
        json_artifacts={"filter_run.json": window.summary,
                        "validation.json": {"event_date": validation.event_date.isoformat(),
                                            "success": validation.success,
                                            "warnings": validation.warnings},
                        "evaluation.json": evaluation.as_dict(),
                        "data_manifest.json": manifest},
        policy_module=MeanActionHead(load_run_policy(step.run_dir)),
        torchscript_path=step.run_dir / POLICY_FILE, d_state=window.data.d_state,
        tags=_tags(logical_date, step, window, validation, metrics),
        catalogue_ids=evaluation.catalogue.item_ids,
        catalogue_embeddings=evaluation.catalogue.catalogue)
    if step.health.get("healthy"):
        registry.set_challenger(client, version.version)
    return Registration(version.version, version.run_id, version.created)


def git_sha() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=5, cwd=Path(__file__).parent)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"
