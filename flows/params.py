"""The parameters of a pipeline run, written once.

``RunParameters`` is what the nightly and backfill flows take (Prefect renders it as one form
section, with these descriptions), what ``drpo run`` / ``drpo backfill`` turn into options, and
what a ``--config`` file (YAML or TOML) holds. It is validated before anything is written: a bad
kappa, algorithm or window fails here, before ingest touches the warehouse.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from drpo_core.objectives import REGISTRY, objective_class
from drpo_core.objectives.critic import Quality
from drpo_core.trainer import TrainConfig
from drpo_core.warehouse.cvar_filter import PARTITION_KEYS, check_quality
from flows.gate import GateConfig

Algorithm = Literal[tuple(REGISTRY)]  # type: ignore[valid-type]
PartitionBy = Literal[tuple(PARTITION_KEYS)]  # type: ignore[valid-type]
Retrain = Literal["last", "each", "none"]


def train_config(algorithm: str, steps: int, batch_size: int = 320, seed: int = 0,
                 **fields: Any) -> TrainConfig:
    """The one place a ``TrainConfig`` is built: metrics every 100 steps (fewer on short runs),
    a checkpoint about every fifth of the run, on a multiple of the logging interval."""
    log_every = min(100, max(steps, 1))
    checkpoint_every = log_every * max(1, steps // 5 // log_every)
    return TrainConfig(algorithm=algorithm, steps=steps, batch_size=batch_size, seed=seed,
                       log_every=log_every, checkpoint_every=checkpoint_every, **fields)


class RunParameters(BaseModel):
    """How one logical date is trained, scored and gated (shared by nightly and backfill)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    logs: str | None = Field(None, description="log root with event_date=YYYY-MM-DD folders "
                                               "(default: $DRPO_LOGS)")
    window_days: int = Field(7, gt=0, le=366,
                             description="training days before the logical date (held out)")
    kappa: float = Field(1.0, gt=0.0, le=1.0,
                         description="kept mass of the SQL top-kappa filter (Theorem 4.1); "
                                     "1 keeps every row")
    partition_by: PartitionBy = Field("none", description="where the kappa cut is taken: "
                                                          "globally, per event_date or per "
                                                          "user segment")
    algorithm: Algorithm = Field("drpo", description="training objective (drpo = Algorithm 1)")
    quality: Quality = Field(
        "reward", description="what the filters rank (drpo, drpo_exp, adaptive_bc, "
                              "filtered_bc): reward (the paper's), advantage (r - V(s)), q "
                              "(Q(s, a)) or return (the session's return-to-go)")
    gamma: float = Field(0.0, ge=0.0, lt=1.0,
                         description="discount of return and of the critics' targets "
                                     "(advantage, q, iql, crr); 0 = the bandit case")
    missing_days: Literal["warn", "refuse"] = Field(
        "warn", description="a window day without rows: train anyway with a warning (the "
                            "coverage is recorded on the version) or refuse the run")
    allow_unvalidated: bool = Field(
        False, description="train on a window with a day whose validation failed or never "
                           "ran (recorded on the version); refused otherwise")
    train_steps: int = Field(3000, gt=0, description="gradient steps")
    batch_size: int = Field(320, gt=0, description="global mini-batch size (paper: N = 320)")
    seed: int = Field(0, ge=0, description="seed of weights, sampling and evaluation")
    eval_users: int = Field(2000, gt=0, description="simulator users for the online score")
    min_gain: float = Field(0.0, ge=0.0,
                            description="gain over the champion that the lower bound of the "
                                        "paired interval must clear")
    confidence: float = Field(0.95, gt=0.5, lt=1.0,
                              description="confidence level of the gate's paired interval")
    tail_tolerance: float = Field(0.01, ge=0.0,
                                  description="allowed drop of the lower-tail CVaR against the "
                                              "champion")
    backfill_workers: int = Field(
        1, ge=1, le=256,
        description="a backfill with retrain each: Dask workers that train its dates at once "
                    "(a local cluster of this many processes, or the cluster at "
                    "$DRPO_DASK_ADDRESS); 1 trains them one after another in the flow's process")

    @model_validator(mode="after")
    def _quality_applies(self) -> RunParameters:
        check_quality(self.quality, self.kappa)
        fields = objective_class(self.algorithm).Config.model_fields
        for name, default in (("quality", "reward"), ("gamma", 0.0)):
            if getattr(self, name) != default and name not in fields:
                raise ValueError(f"{name} does not apply to algorithm {self.algorithm}")
        return self

    def train_config(self) -> TrainConfig:
        """The run's TrainConfig; quality and gamma reach the objective when not the default
        (so a default run's config, hence its run key, is what it was before they existed)."""
        objective = {k: v for k, v in (("quality", self.quality), ("gamma", self.gamma))
                     if v != {"quality": "reward", "gamma": 0.0}[k]}
        return train_config(self.algorithm, self.train_steps, self.batch_size, self.seed,
                            objective=objective)

    def gate_config(self) -> GateConfig:
        return GateConfig(min_gain=self.min_gain, confidence=self.confidence,
                          tail_tolerance=self.tail_tolerance, seed=self.seed)

    def window(self, logical_date: dt.date) -> tuple[dt.date, dt.date]:
        """The training window: the ``window_days`` days before the held-out logical date."""
        return (logical_date - dt.timedelta(days=self.window_days),
                logical_date - dt.timedelta(days=1))


def backfill_dates(start: dt.date, end: dt.date, today: dt.date | None = None
                   ) -> list[dt.date]:
    """Every date of a backfill, refused unless start <= end < today."""
    if start > end:
        raise ValueError(f"backfill start {start} is after its end {end}")
    today = today or dt.datetime.now(dt.UTC).date()
    if end >= today:
        raise ValueError(f"backfill end {end} is not in the past (today is {today})")
    return [start + dt.timedelta(days=k) for k in range((end - start).days + 1)]


def load_parameters(path: Path | None, overrides: dict[str, Any]) -> RunParameters:
    """Parameters from a YAML or TOML file (optional), then the given overrides."""
    base: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} does not exist")
        text = path.read_text()
        try:
            base = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text) or {}
        except (tomllib.TOMLDecodeError, yaml.YAMLError) as err:
            raise ValueError(f"{path}: not valid {path.suffix.lstrip('.') or 'YAML'} "
                             f"({str(err).splitlines()[0]})") from None
        if not isinstance(base, dict):
            raise ValueError(f"{path}: expected a mapping of run parameters")
    try:
        return RunParameters.model_validate({**base, **overrides})
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        where = f"{path}: " if path is not None and field in base else ""
        raise ValueError(f"{where}{field}: {first['msg'].removeprefix('Value error, ')}"
                         ) from None
