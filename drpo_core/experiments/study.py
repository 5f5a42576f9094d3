"""Shared machinery of the reproduction study: study sizes, one seeded training + evaluation,
and mean +- 95 % confidence intervals over seeds.

Every cell trains on its own simulated dataset (seeded per seed) and is scored online on the
simulator's ``test`` users; hyperparameter choices use the ``validation`` users only.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from drpo_core.data import TrainingData, table_to_training_data
from drpo_core.evaluation.online import EvalUsers, eval_users, evaluate_policy
from drpo_core.sim import LogSimulator, World, scenario_config
from drpo_core.trainer import TrainConfig, Trainer

#: Student-t 97.5 % quantiles for n - 1 degrees of freedom (n = 2..10 seeds).
_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
         9: 2.262}


class StudySize(BaseModel):
    """How big each cell is. ``quick`` runs in CI; ``full`` is the documented study."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seeds: int = Field(5, ge=2, description="seeds per cell (>= 5 in the full study)")
    rows: int = Field(100_000, gt=0, description="logged rows per simulated dataset")
    steps: int = Field(3000, gt=0, description="gradient steps per training")
    eval_users: int = Field(2000, gt=0, description="test (and validation) users")
    d: int = Field(128, gt=0, description="embedding dimension of the simulated world")
    n_items: int = Field(5000, gt=1, description="catalogue size")


QUICK = StudySize(seeds=2, rows=3000, steps=100, eval_users=150, d=16, n_items=400)
#: The documented study, sized to finish within the 60-minute budget on 2 cores: about 450
#: trainings, so 1000 steps each (the paper: 5000) in a d = 32 world (App. J's d = 10 and
#: Sec. 5.1's d = 128 disagree; digest §10.2).
FULL = StudySize(seeds=5, rows=50_000, steps=1000, eval_users=2000, d=32, n_items=2000)


@dataclass(frozen=True)
class CellResult:
    mean_reward: float
    ecpm: float
    score: float
    validation_reward: float


@dataclass
class Scenario:
    """One simulated world and its logged data for one seed."""

    world: World
    data: TrainingData
    test: EvalUsers
    validation: EvalUsers


def make_scenario(name: str, size: StudySize, seed: int, **overrides: Any) -> Scenario:
    cfg = scenario_config(name, seed=seed, d=size.d, n_items=size.n_items, **overrides)
    sim = LogSimulator(cfg)
    table = sim.day_table(0, dt.date(2026, 1, 1), size.rows)
    return Scenario(sim.world, table_to_training_data(table),
                    eval_users(sim.world, size.eval_users, "test"),
                    eval_users(sim.world, size.eval_users, "validation"))


def train_and_score(scenario: Scenario, algorithm: str, size: StudySize, seed: int,
                    objective: dict[str, Any] | None = None,
                    data: TrainingData | None = None) -> CellResult:
    log_every = min(100, size.steps)
    cfg = TrainConfig(algorithm=algorithm, steps=size.steps, seed=seed, log_every=log_every,
                      checkpoint_every=log_every * max(1, size.steps // log_every),
                      objective=objective or {}, device="cpu")
    result = Trainer(cfg, data or scenario.data, progress=False).fit()
    policy = result.policy.eval()

    def act(states: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return policy(torch.from_numpy(states)).numpy()

    test = evaluate_policy(scenario.world, act, scenario.test)
    validation = evaluate_policy(scenario.world, act, scenario.validation)
    return CellResult(test.mean_reward, test.ecpm, test.score, validation.mean_reward)


def mean_ci(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95 % t confidence interval."""
    n = len(values)
    mean = float(np.mean(values))
    if n < 2:
        return mean, float("nan")
    sd = float(np.std(values, ddof=1))
    t = _T975.get(n - 1, 1.96)
    return mean, t * sd / math.sqrt(n)
