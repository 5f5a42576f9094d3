"""A complete training run on one dataset: train, export, write the run's files.

Output folder::

    config.json    the resolved TrainConfig (every field, objective defaults filled in)
    checkpoint.pt  exact-resume state (updated every checkpoint_every steps)
    metrics.json   history of logged metrics + final values + data fingerprint
    policy_state.pt  the eager policy: dims, config, CPU weights (``inference.load_run_policy``)
    policy.pt      TorchScript mean-action policy (written last: its presence means success)
    loss.png, keep_share.png, sigma.png

Used by ``drpo train`` and by the orchestration layer (which adds callbacks).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from drpo_core.data import TrainingData
from drpo_core.export import export_torchscript
from drpo_core.inference import POLICY_STATE_FILE, save_policy_state
from drpo_core.plots import training_curves
from drpo_core.trainer import Callback, TrainConfig, Trainer, TrainResult

POLICY_FILE = "policy.pt"
RUN_FILES = ("config.json", "checkpoint.pt", "metrics.json", POLICY_STATE_FILE, POLICY_FILE,
             "loss.png", "keep_share.png", "sigma.png", "checkpoint.tmp", "policy.tmp",
             "policy_state.tmp")


@dataclass(frozen=True)
class TrainingOutputs:
    output_dir: Path
    policy_path: Path
    metrics_path: Path
    result: TrainResult


def prepare_output_dir(output_dir: Path, resume: bool, overwrite: bool) -> None:
    """Refuse to mix runs: a non-empty folder needs --resume (same run) or --overwrite."""
    if output_dir.exists() and not output_dir.is_dir():
        raise FileExistsError(f"output {output_dir} exists and is not a directory")
    if resume:
        if not (output_dir / "checkpoint.pt").is_file():
            raise FileNotFoundError(f"--resume: no checkpoint.pt in {output_dir}")
        return
    if output_dir.is_dir() and any(output_dir.iterdir()):
        foreign = [p.name for p in output_dir.iterdir() if p.name not in RUN_FILES]
        if foreign:
            raise FileExistsError(
                f"output dir {output_dir} holds other files ({', '.join(sorted(foreign)[:3])}); "
                "choose an empty or new directory"
            )
        if not overwrite:
            raise FileExistsError(
                f"output dir {output_dir} holds an earlier run; pass --resume to continue it "
                "or --overwrite to replace it"
            )
        for name in RUN_FILES:
            (output_dir / name).unlink(missing_ok=True)
    output_dir.mkdir(parents=True, exist_ok=True)


def run_training(
    config: TrainConfig,
    data: TrainingData,
    output_dir: Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    callbacks: Sequence[Callback] = (),
    progress: bool = True,
) -> TrainingOutputs:
    output_dir = Path(output_dir)
    trainer = Trainer(config, data, output_dir, callbacks, progress)  # validates first
    main = trainer.ctx.is_main  # under torchrun only rank 0 writes files
    if main:
        prepare_output_dir(output_dir, resume, overwrite)
    if resume:
        trainer.load_checkpoint()  # a bad checkpoint fails before any file is touched
    if main:
        (output_dir / POLICY_FILE).unlink(missing_ok=True)
    if main and not resume:
        resolved = config.model_dump(mode="json") | {"objective": config.resolved_objective()}
        (output_dir / "config.json").write_text(json.dumps(resolved, indent=2) + "\n")
    result = trainer.fit()
    if not main:
        return TrainingOutputs(output_dir, output_dir / POLICY_FILE,
                               output_dir / "metrics.json", result)
    metrics_path = output_dir / "metrics.json"
    metrics_path.write_text(json.dumps({
        "algorithm": config.algorithm,
        "steps": result.steps,
        "resumed_from": result.resumed_from,
        "data_fingerprint": trainer.data_fingerprint,
        "n_rows": data.n_rows,
        "rows_after_objective_filter": len(trainer.pool),
        "final": result.final_metrics,
        "history": result.history,
    }, indent=2) + "\n")
    training_curves(result.history, output_dir, title=config.algorithm)
    save_policy_state(result.policy, output_dir / POLICY_STATE_FILE)
    policy_path = export_torchscript(result.policy, output_dir / POLICY_FILE)
    return TrainingOutputs(output_dir, policy_path, metrics_path, result)
