"""One training run of a logical date in ``runs/<date>/<run_key>``: a finished run is reused,
a killed one resumed from its checkpoint. ``draw_and_train`` is the part of a date that a
distributed backfill runs on a worker: it reads the warehouse read-only and writes only its
own run folder (the run key names it, so workers never share one)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from drpo_core.diagnostics import policy_health
from drpo_core.trainer import Callback, CheckpointError, TrainConfig
from drpo_core.training_run import POLICY_FILE, run_training
from flows import registry
from flows.jobs.window import SampleFacts, Window, draw_sample
from flows.params import RunParameters
from flows.settings import runs_dir

#: a concurrent run of the same date, data and config waits this long for the first one's
#: training, then reuses its finished run
TRAIN_LOCK_TIMEOUT_S = 6 * 3600.0


@dataclass
class TrainStep:
    run_dir: Path
    run_key: str
    history: list[dict[str, float]]
    final: dict[str, float]
    reused: bool
    config: dict[str, Any]
    health: dict[str, Any] = field(default_factory=dict)


def run_key(logical_date: dt.date, window: Window, config: TrainConfig) -> str:
    """Same date, data, SQL and config => same key => one registered version."""
    h = hashlib.sha256()
    h.update(logical_date.isoformat().encode())
    h.update(window.data.fingerprint().encode())
    h.update(json.dumps(config.model_dump(mode="json"), sort_keys=True).encode())
    h.update(window.report.sql_hash.encode())
    return h.hexdigest()[:16]


class ProgressLog:
    """A trainer callback that reports step, loss, keep share and sigma to a logger (the
    Prefect run logger in a flow), at most once every ``min_seconds``, and the last step."""

    def __init__(self, logger: logging.Logger | logging.LoggerAdapter, steps: int,
                 min_seconds: float = 5.0) -> None:
        self.logger, self.steps, self.min_seconds = logger, steps, min_seconds
        self._last = -math.inf

    def on_log(self, step: int, metrics: dict[str, float]) -> None:
        now = time.monotonic()
        if now - self._last < self.min_seconds and step < self.steps:
            return
        self._last = now
        nan = float("nan")
        self.logger.info("train step %d/%d: loss %.4g, keep share P %.3f, sigma %.4g", step,
                         self.steps, metrics.get("losses/total", nan),
                         metrics.get("filter/keep_share", nan),
                         metrics.get("policy/sigma", nan))


def train(logical_date: dt.date, window: Window, config: TrainConfig,
          progress: bool = True, callbacks: Sequence[Callback] = ()) -> TrainStep:
    key = run_key(logical_date, window, config)
    run_dir = runs_dir() / logical_date.isoformat() / key
    with registry.registration_lock(key, timeout=TRAIN_LOCK_TIMEOUT_S):  # one trainer per key
        reused = (run_dir / POLICY_FILE).exists() and (run_dir / "metrics.json").exists()
        if not reused:
            resume = (run_dir / "checkpoint.pt").exists()
            try:
                run_training(config, window.data, run_dir, resume=resume, overwrite=not resume,
                             progress=progress, callbacks=callbacks)
            except CheckpointError as err:  # a checkpoint is a cache: never block the rerun
                if not resume:
                    raise
                logging.getLogger(__name__).warning("%s: training again from step 0", err)
                run_training(config, window.data, run_dir, overwrite=True, progress=progress,
                             callbacks=callbacks)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    health = policy_health(metrics["history"], config.policy)
    resolved = config.model_dump(mode="json") | {"objective": config.resolved_objective()}
    return TrainStep(run_dir, key, metrics["history"], metrics["final"], reused, resolved,
                     asdict(health))


def draw_and_train(logical_date: dt.date, window: Window, params: RunParameters,
                   callbacks: Sequence[Callback] = ()) -> tuple[TrainStep, Window]:
    """Draw the sample of a window prepared without it, train on it; return the step and the
    window holding only the sample's facts (the tensors stay with the worker)."""
    drawn = draw_sample(logical_date, params, window)
    step = train(logical_date, drawn, params.train_config(), progress=False,
                 callbacks=callbacks)
    return step, replace(drawn, data=SampleFacts.of(drawn.data))
