"""One training loop for every objective (Algorithm 1's outer loop).

* Two kinds of data. ``TrainingData`` (a window held as tensors on the device): each step draws
  a batch of indices with a seeded device generator (with replacement, weighted by the filter's
  weights, like d3rlpy/CleanRL) and gathers rows: no Python per-row work. ``DrawnSample`` (drawn
  before training, out of core: drpo_core.warehouse.sample): step t reads draws
  [t N, (t + 1) N) in order, so memory is bounded by the sample, never by the window.
* No host synchronisation per step: losses and metrics accumulate on the device and are read
  once every ``log_every`` steps. A non-finite loss is then traced back to its exact step, and
  the run stops with an error naming that step and the objective (no NaN policy is saved).
* CUDA when present (bf16 autocast), CPU otherwise; ``device`` forces one.
* Checkpoints hold everything for an exact resume: weights, optimiser, controller P (a buffer of
  the objective), the sampling generator, the step and the metric history.
* Data parallel through ``torchrun`` (Gloo on CPU, NCCL on GPU): every rank draws the same global
  batch and computes its shard; DistributedDataParallel averages gradients (objectives/base.py).
  With a ``DrawnSample`` each rank holds only its own, disjoint part of the one seeded sample
  (plus every draw's reward, which the batch filter ranks): the same global batches.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Self

import torch
import torch.distributed as dist
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from drpo_core.data import DrawnSample, TrainingData
from drpo_core.objectives import Batch, Objective, make_config, make_objective, objective_class
from drpo_core.objectives.base import DataNeeds
from drpo_core.policy import GaussianPolicy, PolicyConfig

CHECKPOINT_FORMAT = 1
#: Fields that may differ between a run and its resume (they do not change the trajectory).
RESUMABLE_FIELDS = frozenset({"steps", "log_every", "checkpoint_every", "device", "compile"})


class TrainConfig(BaseModel):
    """Everything that determines a training run (App. J defaults)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    algorithm: str = Field("drpo", description="objective name (see drpo_core.objectives)")
    steps: int = Field(5000, gt=0, description="gradient steps (App. J: 5000)")
    batch_size: int = Field(320, gt=0, description="global batch size N (App. J: 320)")
    learning_rate: float = Field(3e-4, gt=0.0, description="Adam learning rate (App. J: 3e-4)")
    seed: int = Field(0, ge=0, description="seed of weights and batch sampling")
    device: str = Field("auto", description="auto | cpu | cuda | cuda:N")
    mixed_precision: bool = Field(True, description="bf16 autocast on CUDA (ignored on CPU)")
    grad_clip_norm: float | None = Field(None, gt=0.0, description="global grad-norm clip")
    compile: bool = Field(False, description="torch.compile the objective's loss (inductor)")
    log_every: int = Field(100, gt=0, description="steps between metric reads (host syncs)")
    checkpoint_every: int = Field(1000, gt=0, description="steps between checkpoints")
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    objective: dict[str, Any] = Field(default_factory=dict,
                                      description="the objective's own config fields")

    @field_validator("algorithm")
    @classmethod
    def _known_algorithm(cls, name: str) -> str:
        objective_class(name)
        return name

    @model_validator(mode="after")
    def _check(self) -> Self:
        try:
            make_config(self.algorithm, self.objective)
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ValueError(f"objective.{where}: {first['msg']}") from None
        if self.checkpoint_every % self.log_every:
            raise ValueError(
                f"checkpoint_every ({self.checkpoint_every}) must be a multiple of "
                f"log_every ({self.log_every})"
            )
        return self

    def resolved_objective(self) -> dict[str, Any]:
        return make_config(self.algorithm, self.objective).model_dump(mode="json")

    def dataset_kappa(self) -> float | None:
        """The objective's dataset-level top-kappa (filtered_bc), None when it has none: what
        ``draw_training_sample(..., dataset_kappa=...)`` needs for this run."""
        kappa = objective_class(self.algorithm).dataset_kappa_of(
            make_config(self.algorithm, self.objective))
        return None if kappa is None or kappa >= 1.0 else kappa

    def data_needs(self) -> DataNeeds:
        """What the objective needs from the data layer beyond the logged columns (the
        return-to-go, the episode links): what ``export_window`` / ``draw_training_sample`` /
        ``load_training_logs(..., needs=...)`` need for this run."""
        return objective_class(self.algorithm).data_needs_of(
            make_config(self.algorithm, self.objective))


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or inf: the run stops, nothing is exported."""


class CheckpointError(ValueError):
    """A checkpoint cannot be used (unreadable, other config, other data)."""


class Callback(Protocol):
    """Receives metrics at every log step (the orchestration layer plugs MLflow in here)."""

    def on_log(self, step: int, metrics: dict[str, float]) -> None: ...


@dataclass
class TrainResult:
    policy: GaussianPolicy
    objective: Objective
    history: list[dict[str, float]]
    steps: int
    resumed_from: int | None = None
    final_metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1

    @classmethod
    def from_env(cls) -> DistContext:
        return cls(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)))

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available")
    return device


class Trainer:
    """Trains ``config.algorithm`` on ``data``; writes checkpoints under ``output_dir``."""

    def __init__(
        self,
        config: TrainConfig,
        data: TrainingData,
        output_dir: Path | None = None,
        callbacks: Sequence[Callback] = (),
        progress: bool = True,
        dist_context: DistContext | None = None,
    ) -> None:
        self.config = config
        self.output_dir = Path(output_dir) if output_dir is not None else None
        self.callbacks = list(callbacks)
        self.ctx = dist_context or DistContext.from_env()
        self.progress = progress and self.ctx.is_main
        if config.batch_size % self.ctx.world_size:
            raise ValueError(
                f"batch_size ({config.batch_size}) must divide by the number of processes "
                f"({self.ctx.world_size})"
            )
        if data.n_rows == 0:
            raise ValueError("training data is empty")
        if self.ctx.world_size > 1 and config.device == "auto" and torch.cuda.is_available():
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        else:
            self.device = resolve_device(config.device)
        self.data_fingerprint = data.fingerprint()
        self.data = data.to(self.device)

        torch.manual_seed(config.seed)
        self.policy = GaussianPolicy(data.d_state, data.d_action, config.policy)
        self.objective = make_objective(config.algorithm, self.policy,
                                        config.resolved_objective()).to(self.device)
        self._check_needs(data)
        self.optimizer = torch.optim.Adam(
            [p for p in self.objective.parameters() if p.requires_grad],
            lr=config.learning_rate,
        )
        self.generator = torch.Generator(device=self.device).manual_seed(config.seed)
        self.drawn = isinstance(self.data, DrawnSample)
        if isinstance(self.data, DrawnSample):
            self._check_drawn(self.data)
            self.pool = torch.arange(data.n_rows, device=self.device)
            self._pool_cdf = None
            self._pool_is_all = True
        else:
            self._set_pool(self.objective.prepare(self.data.reward))
        probe = self.pool[:256]  # fixed rows for the collapse monitor (diagnostics.py)
        self._probe_states = self.data.state[probe]
        self._action_norm = self.data.action[probe].norm(dim=1).mean()
        self.history: list[dict[str, float]] = []
        self.step = 0
        self._model: torch.nn.Module = self.objective
        if self.ctx.world_size > 1:
            if not dist.is_initialized():
                backend = "nccl" if self.device.type == "cuda" else "gloo"
                dist.init_process_group(backend, rank=self.ctx.rank,
                                        world_size=self.ctx.world_size)
            self._model = DistributedDataParallel(self.objective, find_unused_parameters=True)
        if config.compile:
            self._model = torch.compile(self._model)
        shard = config.batch_size // self.ctx.world_size
        self._shard = slice(self.ctx.rank * shard, (self.ctx.rank + 1) * shard)

    def _set_pool(self, keep: torch.Tensor | None) -> None:
        """Rows to sample from and their cumulative weights: the filter's weight (Q*) times the
        objective's dataset-level kept mass (``prepare``)."""
        d = self.data
        self.pool = (torch.arange(d.n_rows, device=self.device) if keep is None
                     else torch.nonzero(keep > 0).squeeze(1))
        if len(self.pool) == 0:
            raise ValueError(f"{self.config.algorithm}: no rows left after its dataset filter")
        weight = None if d.weight is None else d.weight[self.pool]
        if keep is not None and not bool((keep[self.pool] == 1).all()):
            weight = keep[self.pool] * (1.0 if weight is None else weight)
        self._pool_cdf = _sampling_cdf(weight)
        self._pool_is_all = len(self.pool) == d.n_rows  # pool = every row: no lookup per step

    def _check_needs(self, data: TrainingData) -> None:
        """Refuse, in one line, data that lacks what the objective needs (its DataNeeds)."""
        needs, name = self.config.data_needs(), self.config.algorithm
        if needs.transitions and not data.has_transitions:
            raise ValueError(f"{name} needs next_state and done (a critic with gamma > 0): the "
                             "training data carries no episode links; export it with "
                             "DataNeeds(transitions=True) (TrainConfig.data_needs())")
        if needs.return_gamma != data.return_gamma:
            want = "the logged reward" if needs.return_gamma is None else \
                f"the return-to-go with gamma={needs.return_gamma:g}"
            have = "the logged reward" if data.return_gamma is None else \
                f"the return-to-go with gamma={data.return_gamma:g}"
            raise ValueError(f"{name} needs {want} in the reward column; the training data "
                             f"holds {have}: export it with TrainConfig.data_needs()")

    def _check_drawn(self, sample: DrawnSample) -> None:
        cfg, ctx = self.config, self.ctx
        if (sample.batch_size, sample.world_size, sample.rank) != (
                cfg.batch_size, ctx.world_size, ctx.rank):
            raise ValueError(
                f"the sample was drawn for batch_size {sample.batch_size} on rank "
                f"{sample.rank} of {sample.world_size}; this run has batch_size "
                f"{cfg.batch_size} on rank {ctx.rank} of {ctx.world_size}")
        want = self.objective.dataset_kappa()
        have = sample.dataset_kappa if (sample.dataset_kappa or 1.0) < 1.0 else None
        if want != have:
            raise ValueError(
                f"{cfg.algorithm} keeps the top kappa={want} of the dataset before training, "
                f"the sample was drawn with dataset_kappa={have}: draw it with "
                f"dataset_kappa={want}")

    def extend_data(self, new: TrainingData) -> None:
        """Append rows (offline-to-online): they join the sampling pool from the next step.

        Only for data held in memory. A pre-drawn sample fixes every future batch when it is
        drawn: a run that gets new rows ingests them and draws a new sample for the steps left
        (rows it has not drawn cannot join a sample without redrawing it).
        """
        if self.drawn:
            raise ValueError("a pre-drawn sample cannot take new rows; ingest them and draw a "
                             "new sample for the remaining steps")
        if (new.d_state, new.d_action) != (self.data.d_state, self.data.d_action):
            raise ValueError("new rows have other dimensions than the training data")
        if self.objective.prepare(self.data.reward) is not None:
            raise ValueError(f"{self.config.algorithm} filters its dataset once; it cannot "
                             "take new rows")
        old = self.data
        if (new.has_transitions, new.return_gamma) != (old.has_transitions, old.return_gamma):
            raise ValueError("new rows must carry the session data of the training data "
                             f"(episode links: {old.has_transitions}, return_gamma: "
                             f"{old.return_gamma}); they have {new.has_transitions}, "
                             f"{new.return_gamma}")
        new = new.to(self.device)
        weights = None
        if old.weight is not None or new.weight is not None:
            weights = torch.cat([old.weight if old.weight is not None else
                                 torch.ones_like(old.reward),
                                 new.weight if new.weight is not None else
                                 torch.ones_like(new.reward)])
        links = ((torch.cat([old.next_state, new.next_state]), torch.cat([old.done, new.done]))
                 if old.next_state is not None and new.next_state is not None
                 and old.done is not None and new.done is not None else (None, None))
        self.data = TrainingData(torch.cat([old.state, new.state]),
                                 torch.cat([old.action, new.action]),
                                 torch.cat([old.reward, new.reward]),
                                 torch.cat([old.behavior_logprob, new.behavior_logprob]),
                                 weights, *links, return_gamma=old.return_gamma)
        self._set_pool(None)
        self.data_fingerprint = self.data.fingerprint()

    # ---- checkpoints ------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path | None:
        return None if self.output_dir is None else self.output_dir / "checkpoint.pt"

    def _config_for_resume(self) -> dict[str, Any]:
        data = self.config.model_dump(mode="json")
        data["objective"] = self.config.resolved_objective()
        return {k: v for k, v in data.items() if k not in RESUMABLE_FIELDS}

    def save_checkpoint(self) -> Path | None:
        path = self.checkpoint_path
        if path is None or not self.ctx.is_main:
            return None
        state = {
            "format": CHECKPOINT_FORMAT,
            "step": self.step,
            "config": json.dumps(self._config_for_resume(), sort_keys=True),
            "data_fingerprint": self.data_fingerprint,
            "objective": self.objective.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "history": json.dumps(self.history),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, path)
        return path

    def load_checkpoint(self, path: Path | None = None) -> int:
        path = Path(path) if path is not None else self.checkpoint_path
        if path is None or not path.is_file():
            raise CheckpointError(f"no checkpoint at {path}")
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
            fmt, step = state["format"], int(state["step"])
        except Exception as err:
            raise CheckpointError(f"checkpoint {path} is unreadable or corrupt ({err})") from None
        if fmt != CHECKPOINT_FORMAT:
            raise CheckpointError(f"checkpoint {path} has format {fmt}, expected "
                                  f"{CHECKPOINT_FORMAT}")
        saved = _flatten(json.loads(state["config"]))
        current = _flatten(self._config_for_resume())
        diff = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
        if diff:
            k = diff[0]
            raise CheckpointError(
                f"checkpoint {path} was written with a different config: {k} was "
                f"{saved.get(k)!r}, now {current.get(k)!r}"
            )
        if state["data_fingerprint"] != self.data_fingerprint:
            raise CheckpointError(f"checkpoint {path} was trained on different data")
        self.objective.load_state_dict(state["objective"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"].cpu())
        self.history = json.loads(state["history"])
        self.step = step
        return step

    # ---- the loop ---------------------------------------------------------------------------
    def _batch(self) -> Batch:
        d = self.data
        if isinstance(d, DrawnSample):  # step t reads draws [t N, (t + 1) N) in order
            n = self.config.batch_size
            rows = slice(self.step * n // self.ctx.world_size,
                         (self.step + 1) * n // self.ctx.world_size)
            return Batch(state=d.state[rows], action=d.action[rows], reward=d.reward[rows],
                         behavior_logprob=d.behavior_logprob[rows],
                         reward_all=d.reward_all[self.step * n:(self.step + 1) * n],
                         shard=self._shard, world_size=self.ctx.world_size,
                         generator=self.generator,
                         next_state=None if d.next_state is None else d.next_state[rows],
                         done=None if d.done is None else d.done[rows])
        if self._pool_cdf is None:
            pick = torch.randint(len(self.pool), (self.config.batch_size,),
                                 generator=self.generator, device=self.device)
        else:  # sample rows in proportion to their weight (rows of Q*, Theorem 4.1)
            u = torch.rand(self.config.batch_size, generator=self.generator,
                           device=self.device, dtype=torch.float64)
            pick = torch.searchsorted(self._pool_cdf, u * self._pool_cdf[-1], right=True)
            pick = pick.clamp_(max=len(self.pool) - 1)
        idx = pick if self._pool_is_all else self.pool.index_select(0, pick)
        local = idx if self.ctx.world_size == 1 else idx[self._shard]
        return Batch(state=d.state, action=d.action, reward=d.reward,
                     behavior_logprob=d.behavior_logprob, reward_all=d.reward.index_select(0, idx),
                     shard=self._shard, world_size=self.ctx.world_size,
                     generator=self.generator, rows=local,  # rows gathered on use
                     next_state=d.next_state, done=d.done)

    def _autocast_enabled(self) -> bool:
        return self.config.mixed_precision and self.device.type == "cuda"

    def _autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=torch.bfloat16,
                              enabled=self._autocast_enabled())

    def fit(self, resume: bool = False) -> TrainResult:
        """Train up to ``config.steps``; ``resume`` first loads the output's checkpoint."""
        cfg = self.config
        if resume:
            self.load_checkpoint()
        resumed_from = self.step or None
        if self.step > cfg.steps:
            raise CheckpointError(f"checkpoint is at step {self.step}, beyond steps={cfg.steps}")
        if isinstance(self.data, DrawnSample) and cfg.steps > self.data.steps:
            raise ValueError(f"the drawn sample covers {self.data.steps} steps of batch "
                             f"{cfg.batch_size}; steps={cfg.steps}: draw steps x batch_size rows")
        window: list[torch.Tensor] = []  # the step losses, stacked and read at a log
        pending: list[dict[str, torch.Tensor | float]] = []  # the metrics, read at a log
        autocast = self._autocast() if self._autocast_enabled() else contextlib.nullcontext()
        # one process, no compile: the loss itself (Module.__call__ would only add its hook
        # checks to every step); DDP and torch.compile go through their wrappers
        forward = self.objective.loss if self._model is self.objective else self._model
        # zero_grad(set_to_none=True) is this loop plus a profiler range per call (tens of us
        # a step on a small network, issue 15 §5): the trainer clears the gradients itself
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        after_step = self.objective.after_step if self.objective.needs_after_step() else None
        bar = tqdm(total=cfg.steps, initial=self.step, desc=f"train {cfg.algorithm}",
                   unit="step", disable=not self.progress, mininterval=1.0)
        self.objective.train()
        window_start = self.step
        while self.step < cfg.steps:
            batch = self._batch()
            with autocast:
                out = forward(batch, self.step)
            for p in params:
                p.grad = None
            out.loss.backward()
            if cfg.grad_clip_norm is not None:
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip_norm)
            self.optimizer.step()
            if after_step is not None:
                after_step(self.step)
            window.append(out.loss.detach())  # no copy into a buffer: one op less per step
            pending.append({k: v.detach() if isinstance(v, torch.Tensor) and v.requires_grad
                            else v for k, v in out.metrics.items()})
            self.step += 1
            if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                n = self.step - window_start
                self._log(torch.stack(window).float(), _metric_sums(pending), n, window_start)
                if self.progress:
                    bar.update(n)
                    bar.set_postfix(_short(self.history[-1]), refresh=False)
                window_start, pending, window = self.step, [], []
                if self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps:
                    self.save_checkpoint()
        bar.close()
        final = self.history[-1] if self.history else {}
        return TrainResult(self.policy, self.objective, self.history, self.step, resumed_from,
                           final)

    def _log(self, losses: torch.Tensor, sums: dict[str, torch.Tensor | float], n: int,
             first_step: int) -> None:
        policy_metrics = self.objective.policy_metrics()
        with torch.no_grad():
            policy_metrics["policy/mean_norm"] = self.policy(self._probe_states).norm(
                dim=1).mean()
        policy_metrics["data/action_norm"] = self._action_norm
        on_device = [k for k, v in sums.items() if isinstance(v, torch.Tensor)]
        read = torch.stack([losses.mean(), *(sums[k] / n for k in on_device),
                            *policy_metrics.values()]).cpu().tolist()  # one host read
        cut = 1 + len(on_device)
        device_means = dict(zip(on_device, read[1:cut], strict=True))
        values = [read[0], *(device_means[k] if k in device_means else float(v) / n
                             for k, v in sums.items()), *read[cut:]]
        finite = torch.isfinite(losses).cpu()
        if not bool(finite.all()):
            bad = first_step + int((~finite).nonzero()[0, 0])
            raise NonFiniteLossError(
                f"{self.config.algorithm}: loss became non-finite at step {bad}; "
                "stopping (no policy is exported)"
            )
        names = ["losses/total", *sums.keys(), *policy_metrics.keys()]
        metrics = dict(zip(names, values, strict=True))
        if not all(math.isfinite(v) for v in metrics.values()):
            bad_names = [k for k, v in metrics.items() if not math.isfinite(v)]
            raise NonFiniteLossError(
                f"{self.config.algorithm}: non-finite {bad_names} by step {self.step}; stopping"
            )
        record = {"step": float(self.step), **metrics}
        self.history.append(record)
        if self.ctx.is_main:
            for cb in self.callbacks:
                cb.on_log(self.step, metrics)


def _metric_sums(pending: list[dict[str, torch.Tensor | float]]
                 ) -> dict[str, torch.Tensor | float]:
    """Each metric summed over the steps of a log window (read once per window, not per step;
    an objective may leave a metric out on some steps): tensors stacked on their device, host
    floats summed exactly (``math.fsum``)."""
    names = dict.fromkeys(k for m in pending for k in m)
    sums: dict[str, torch.Tensor | float] = {}
    for k in names:
        values = [m[k] for m in pending if k in m]
        if all(isinstance(v, float) for v in values):
            sums[k] = math.fsum(values)  # type: ignore[arg-type]
        else:
            sums[k] = torch.stack([torch.as_tensor(v).float() for v in values]).sum()
    return sums


def _sampling_cdf(weight: torch.Tensor | None) -> torch.Tensor | None:
    """Cumulative weights over the pool, or None when sampling is uniform."""
    if weight is None:
        return None
    w = weight.double()
    if not bool(torch.isfinite(w).all()) or bool((w < 0).any()) or float(w.sum()) <= 0:
        raise ValueError("sampling weights must be finite, >= 0 and not all zero")
    if bool((w == w[0]).all()):
        return None
    return torch.cumsum(w, dim=0)


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _short(record: dict[str, float]) -> dict[str, str]:
    keys = ("losses/total", "filter/keep_share", "policy/sigma")
    return {k.split("/")[-1]: f"{record[k]:.4g}" for k in keys if k in record}
