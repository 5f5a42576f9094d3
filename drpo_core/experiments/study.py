"""Shared machinery of the reproduction study: study sizes, one seeded training + evaluation,
reference lines, means with 95 % t-intervals and paired differences over seeds.

Every cell trains on its own simulated dataset (seeded per seed) and is scored online on the
simulator's ``test`` users; hyperparameter choices use the ``validation`` users only. All
methods of one seed share that seed's data and test users, so two methods are compared by the
paired difference of their per-seed results (a t-interval on the differences), never by the
overlap of their own intervals.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from pydantic import BaseModel, ConfigDict, Field
from scipy import stats

from drpo_core.data import TrainingData, table_to_training_data
from drpo_core.evaluation.online import EvalUsers, SessionUsers, eval_users, evaluate_policy
from drpo_core.experiments.references import reference_lines
from drpo_core.inference import numpy_policy
from drpo_core.sim import LogSimulator, SimConfig, World, scenario_config
from drpo_core.trainer import TrainConfig, Trainer

CONFIDENCE = 0.95


class StudySize(BaseModel):
    """How big each cell is. ``quick`` runs in CI; ``full`` is the documented study."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seeds: int = Field(5, ge=2, description="seeds per cell (>= 5 in the full study)")
    rows: int = Field(100_000, gt=0, description="logged rows per simulated dataset")
    steps: int = Field(3000, gt=0, description="gradient steps per training")
    headline_steps: int | None = Field(
        None, gt=0, description="gradient steps of the headline tables (Table 1, Table 2); "
        "None = steps")
    eval_users: int = Field(2000, gt=0, description="test (and validation) users")
    d: int = Field(128, gt=0, description="embedding dimension of the simulated world")
    n_items: int = Field(5000, gt=1, description="catalogue size")
    n_users: int = Field(20_000, gt=0, description="users in the logged population")
    condition_seeds: int = Field(3, ge=2, description="seeds per cell of the conditions table")
    condition_baselines: tuple[str, ...] = Field(
        ("bc", "filtered_bc", "awr", "iql", "crr", "asymre"),
        description="non-DRPO baselines of the conditions table (BC is also its reference)")


    @property
    def headline(self) -> StudySize:
        """The size of the headline tables (their own number of steps)."""
        return self.model_copy(update={"steps": self.headline_steps or self.steps})


#: CI's smoke run of every part (same table shapes; the conditions table with two baselines).
QUICK = StudySize(seeds=2, rows=3000, steps=60, eval_users=100, d=16, n_items=400, n_users=2000,
                  condition_seeds=2, condition_baselines=("bc", "filtered_bc"))
#: The documented study, sized for the 120-minute budget on 2 cores: the headline tables train
#: 5000 steps (the paper's length, App. J) on 5 seeds; the other parts 1000 steps, in a
#: d = 32 world (App. J's d = 10 and Sec. 5.1's d = 128 disagree; digest §10.2).
FULL = StudySize(seeds=5, rows=50_000, steps=1000, headline_steps=5000, eval_users=2000, d=32,
                 n_items=2000)


@dataclass(frozen=True)
class CellResult:
    mean_reward: float
    ecpm: float
    score: float
    validation_reward: float
    equilibrium_keep_share: float | None = None  # mean P over the second half (filtered only)


@dataclass
class Scenario:
    """One simulated world and its logged data for one seed."""

    world: World
    data: TrainingData
    test: EvalUsers | SessionUsers
    validation: EvalUsers | SessionUsers
    table: pa.Table | None = None  # the logged rows (episode links, return-to-go)


def world_config(name: str, size: StudySize, seed: int, **overrides: Any) -> SimConfig:
    """The scenario's world at the study's dimensions (every part builds its worlds here)."""
    return scenario_config(name, seed=seed, d=size.d, n_items=size.n_items,
                           n_users=size.n_users, **overrides)


def make_scenario(name: str, size: StudySize, seed: int, **overrides: Any) -> Scenario:
    sim = LogSimulator(world_config(name, size, seed, **overrides))
    table = sim.day_table(0, dt.date(2026, 1, 1), size.rows)
    return Scenario(sim.world, table_to_training_data(table),
                    eval_users(sim.world, size.eval_users, "test"),
                    eval_users(sim.world, size.eval_users, "validation"), table)


def train_and_score(scenario: Scenario, algorithm: str, size: StudySize, seed: int,
                    objective: dict[str, Any] | None = None,
                    data: TrainingData | None = None, validate: bool = True) -> CellResult:
    """Train one method on the scenario's logs and score it on the test users (and on the
    validation users, unless ``validate`` is False: validation_reward is then NaN)."""
    log_every = min(100, size.steps)
    cfg = TrainConfig(algorithm=algorithm, steps=size.steps, seed=seed, log_every=log_every,
                      checkpoint_every=log_every * max(1, size.steps // log_every),
                      objective=objective or {}, device="cpu")
    result = Trainer(cfg, data or scenario.data, progress=False).fit()
    act = numpy_policy(result.policy.eval())
    test = evaluate_policy(scenario.world, act, scenario.test)
    validation = (evaluate_policy(scenario.world, act, scenario.validation).mean_reward
                  if validate else float("nan"))
    shares = [r["filter/keep_share"] for r in result.history if "filter/keep_share" in r]
    equilibrium = float(np.mean(shares[len(shares) // 2 :])) if shares else None
    return CellResult(test.mean_reward, test.ecpm, test.score, validation, equilibrium)


def references(scenario: Scenario, size: StudySize | None = None,
               seed: int = 0) -> dict[str, float]:
    """Test mean reward of the reference lines (random, logging mixture, identity where dims
    allow, the least-squares linear map, oracle) and, given ``size``, of BC trained on the
    scenario's logs (tables without a BC row of their own)."""
    lines = {name: ev.mean_reward
             for name, ev in reference_lines(scenario.world, scenario.data, scenario.test).items()}
    if size is not None:
        bc = train_and_score(scenario, "bc", size, seed).mean_reward
        lines = {**{k: v for k, v in lines.items() if k != "oracle"}, "bc": bc,
                 "oracle": lines["oracle"]}
    return lines


def reference_rows(per_seed: list[dict[str, float]], **keys: Any) -> list[dict[str, Any]]:
    """One row per reference line: mean and 95 % CI over seeds, and the per-seed values."""
    rows = []
    for name in per_seed[0]:
        values = [seed[name] for seed in per_seed]
        mean, ci = mean_ci(values)
        rows.append({**keys, "reference": name, "reward": mean, "reward_ci": ci,
                     "per_seed": values})
    return rows


def mean_ci(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95 % t confidence interval (scipy.stats.t)."""
    n = len(values)
    mean = float(np.mean(values))
    if n < 2:
        return mean, float("nan")
    sem = float(stats.sem(values))
    return mean, float(stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1)) * sem


def paired_difference(a: list[float], b: list[float]) -> dict[str, float]:
    """a - b over paired seeds: mean, 95 % t-interval (scipy.stats.ttest_rel), p-value."""
    if len(a) != len(b):
        raise ValueError(f"paired values need the same seeds, got {len(a)} and {len(b)}")
    diff = np.asarray(a) - np.asarray(b)
    if len(diff) < 2 or np.all(diff == diff[0]):
        return {"mean": float(diff.mean()), "low": float(diff.min()), "high": float(diff.max()),
                "p_value": float("nan"), "seeds": len(diff)}
    test = stats.ttest_rel(a, b)
    interval = test.confidence_interval(CONFIDENCE)
    return {"mean": float(diff.mean()), "low": float(interval.low),
            "high": float(interval.high), "p_value": float(test.pvalue), "seeds": len(diff)}


def paired_rows(per_seed: dict[str, list[float]], reference: str = "drpo",
                **keys: Any) -> list[dict[str, Any]]:
    """``reference`` - X for every other method X (per-seed values of one table)."""
    base = per_seed[reference]
    return [{**keys, "minus": name, **paired_difference(base, values)}
            for name, values in per_seed.items() if name != reference]


def set_threads() -> None:
    """One torch thread and one BLAS thread per process: the study runs its parts in parallel
    processes. numpy's BLAS otherwise starts a thread per core in every process, and on a busy
    machine each small matrix product (KNN retrieval at every step of a session rollout) waits
    for them: 100 x 16 @ 16 x 400 took 35 ms instead of 0.3 ms with the other core busy.
    threadpoolctl comes with scikit-learn (an MLflow dependency)."""
    torch.set_num_threads(1)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - without it numpy keeps its default threads
        return
    threadpool_limits(1)
