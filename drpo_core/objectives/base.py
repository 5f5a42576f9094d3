"""What every objective shares: the batch it sees, what it returns, and its base class.

An objective owns the policy and any auxiliary networks (critics, a frozen old policy) and
computes one loss per step. It never knows about devices, optimisers, checkpoints or MLflow.

Data parallelism: every rank draws the same global batch of indices and sees all its rewards
(``reward_all``), but evaluates networks only on its own ``shard``. Batch-level statistics
(top-P filter, baselines) therefore use the whole global batch, and per-row terms are summed as
this rank's share, so averaging gradients over ranks equals the single-process gradient.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict
from torch import nn

from drpo_core.filtering import top_kappa
from drpo_core.policy import GaussianPolicy, mlp

#: AWR convention: exponential weights are clipped here (d3rlpy/CORL use 20 for AWR, 100 for IQL).
EXP_WEIGHT_MAX = 20.0


class ObjectiveConfig(BaseModel):
    """Base of every objective's hyperparameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Batch:
    """One training step's data: local shard tensors plus the global batch's rewards.

    ``state``, ``action``, ``reward`` and ``behavior_logprob`` may be given as whole tables with
    ``rows`` (this shard's row indices into them): each is then gathered on first use, and
    ``take`` gathers only some rows of state and action (DRPO's kept rows), so a step never
    copies rows or columns it does not use.
    """

    def __init__(self, state: torch.Tensor, action: torch.Tensor, reward: torch.Tensor,
                 behavior_logprob: torch.Tensor, reward_all: torch.Tensor,
                 shard: slice | None = None, world_size: int = 1,
                 generator: torch.Generator | None = None,
                 rows: torch.Tensor | None = None, next_state: torch.Tensor | None = None,
                 done: torch.Tensor | None = None) -> None:
        self._tables = {"state": state, "action": action, "reward": reward,
                        "behavior_logprob": behavior_logprob}
        if next_state is not None and done is not None:  # episode links (DataNeeds.transitions)
            self._tables.update(next_state=next_state, done=done)
        self._gathered: dict[str, torch.Tensor] = {}
        self.rows = rows
        self.reward_all = reward_all  # (N,) rewards of the whole global batch
        self.shard = slice(None) if shard is None else shard
        self.world_size = world_size
        self.generator = generator

    def _column(self, name: str) -> torch.Tensor:
        if name not in self._tables:
            raise ValueError(f"this objective needs {name!r}: the training data carries no "
                             "episode links (export it with DataNeeds.transitions)")
        if self.rows is None:
            return self._tables[name]
        if name not in self._gathered:
            self._gathered[name] = self._tables[name][self.rows]
        return self._gathered[name]

    @property
    def state(self) -> torch.Tensor:  # (n, d_state)
        return self._column("state")

    @property
    def action(self) -> torch.Tensor:  # (n, d_action)
        return self._column("action")

    @property
    def reward(self) -> torch.Tensor:  # (n,)
        return self._column("reward")

    @property
    def behavior_logprob(self) -> torch.Tensor:  # (n,)  NaN where not logged
        return self._column("behavior_logprob")

    @property
    def has_transitions(self) -> bool:
        return "next_state" in self._tables

    @property
    def next_state(self) -> torch.Tensor:  # (n, d_state) the episode's next state (any if done)
        return self._column("next_state")

    @property
    def done(self) -> torch.Tensor:  # (n,) 1.0 = last step of its episode, else 0.0
        return self._column("done")

    def take(self, local_rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """state and action of some of this shard's rows, from the shard's columns where they
        are gathered already (a critic read them), else from the tables directly.
        (``index_select``: a third of what indexing with a tensor costs on the CPU.)"""
        if self.rows is None:
            return self.state.index_select(0, local_rows), self.action.index_select(0, local_rows)
        if not self._gathered:  # the common case: straight from the tables
            picked = self.rows.index_select(0, local_rows)
            return (self._tables["state"].index_select(0, picked),
                    self._tables["action"].index_select(0, picked))
        picked = None
        out = []
        for name in ("state", "action"):
            if name in self._gathered:
                out.append(self._gathered[name].index_select(0, local_rows))
            else:
                picked = self.rows.index_select(0, local_rows) if picked is None else picked
                out.append(self._tables[name].index_select(0, picked))
        return out[0], out[1]

    def local(self, x_all: torch.Tensor) -> torch.Tensor:
        return x_all[self.shard]


@dataclass(frozen=True)
class DataNeeds:
    """What an objective needs from the data layer beyond (state, action, reward, logprob)."""

    #: the reward column holds the discounted return-to-go of the row's session with this
    #: gamma (quality = "return"); None = the logged reward
    return_gamma: float | None = None
    #: next_state and done from the episode links (critics with gamma > 0)
    transitions: bool = False


@dataclass
class LossOutput:
    loss: torch.Tensor
    #: 0-d tensors, new every step, or host floats where the step has them on the host
    #: already (the trainer keeps them until the next log step, then reads them at once)
    metrics: dict[str, torch.Tensor | float]


def global_weighted_sum(values: torch.Tensor, batch: Batch) -> torch.Tensor:
    """sum over this rank's (already weighted) rows, scaled so that the gradient average over
    ranks equals the single-process sum over the global batch."""
    total = values.sum()
    return total if batch.world_size == 1 else total * batch.world_size


def weighted_log_likelihood_loss(policy: GaussianPolicy, batch: Batch, w_all: torch.Tensor,
                                 count: torch.Tensor) -> torch.Tensor:
    """L = -(1/count) sum_j w_j log pi(a_j | s_j) over the global batch's weights ``w_all``.

    The policy runs on the rows that carry weight only (on CPU: gathered; on an accelerator the
    whole shard under the weights, which needs no host synchronisation)."""
    w = batch.local(w_all)
    if w.device.type == "cpu":  # only the rows that carry weight reach the network
        rows = w.nonzero().squeeze(1)
        return weighted_rows_loss(policy, batch, rows, w[rows], count)
    log_prob = policy.log_prob(batch.state, batch.action)
    return -global_weighted_sum(w * log_prob, batch) / count


def weighted_rows_loss(policy: GaussianPolicy, batch: Batch, rows: torch.Tensor,
                       w: torch.Tensor, count: torch.Tensor | float) -> torch.Tensor:
    """The same loss from some of this shard's ``rows`` (those that may carry weight) and
    their weights ``w``: the weighted sum as one ``dot``, the sign and 1/count one scale."""
    state, action = batch.take(rows)
    log_prob = policy.log_prob(state, action)
    return torch.dot(w.to(log_prob.dtype), log_prob) * _loss_scale(batch, float(count))


def host_rows_loss(policy: GaussianPolicy, batch: Batch, rows: np.ndarray, w: np.ndarray,
                   count: float) -> torch.Tensor:
    """``weighted_rows_loss`` from numpy rows and weights (the host path): the scale is
    applied to the weights in numpy, so the loss is one ``dot`` after the policy."""
    state, action = batch.take(torch.from_numpy(rows))
    w_scaled = torch.from_numpy(w * w.dtype.type(_loss_scale(batch, count)))
    log_prob = policy.log_prob(state, action)
    if w_scaled.dtype != log_prob.dtype:  # float64 rewards
        w_scaled = w_scaled.to(log_prob.dtype)
    return torch.dot(w_scaled, log_prob)


def _loss_scale(batch: Batch, count: float) -> float:
    """-(world size) / K: the sign of a likelihood loss, global_weighted_sum's factor and the
    mean over the kept mass K; NaN without kept mass (a NaN reward's cut: the step is named)."""
    return -batch.world_size / count if count else math.nan


class Objective(nn.Module):
    """Base class: subclasses set ``name`` and ``Config`` and implement ``loss``."""

    name: ClassVar[str]
    Config: ClassVar[type[ObjectiveConfig]]

    def __init__(self, policy: GaussianPolicy, config: ObjectiveConfig) -> None:
        super().__init__()
        self.policy = policy
        self.config = config

    @classmethod
    def dataset_kappa_of(cls, config: ObjectiveConfig) -> float | None:
        """kappa of a dataset-level top-kappa filter by reward, applied once before training
        (None = none). The trainer applies it to data it holds (``prepare``); a sample drawn out
        of core must have been drawn with it (``drpo_core.warehouse.sample``)."""
        return None

    @classmethod
    def data_needs_of(cls, config: ObjectiveConfig) -> DataNeeds:
        """Columns the data layer must export for this objective (default: none extra)."""
        return DataNeeds()

    def dataset_kappa(self) -> float | None:
        kappa = self.dataset_kappa_of(self.config)
        return None if kappa is None or kappa >= 1.0 else kappa

    def prepare(self, reward: torch.Tensor) -> torch.Tensor | None:
        """Kept mass of every row under ``dataset_kappa`` (filtering.py's tie rule), in [0, 1];
        None = keep all rows."""
        kappa = self.dataset_kappa()
        if kappa is None:
            return None
        return top_kappa(reward, kappa).weight

    def loss(self, batch: Batch, step: int) -> LossOutput:
        raise NotImplementedError

    def forward(self, batch: Batch, step: int) -> LossOutput:  # the DDP entry point
        return self.loss(batch, step)

    def needs_after_step(self) -> bool:
        """Whether ``after_step`` does anything: the trainer skips a no-op hook (and its
        no_grad context) on every step."""
        return type(self).after_step is not Objective.after_step

    @torch.no_grad()
    def after_step(self, step: int) -> None:
        """Hook after the optimiser step (target networks, old-policy snapshots)."""

    def policy_metrics(self) -> dict[str, torch.Tensor]:
        return {"policy/sigma": self.policy.sigma().detach()}


class QNetwork(nn.Module):
    """Q(s, a): an MLP with the policy's backbone widths."""

    def __init__(self, d_state: int, d_action: int, hidden: tuple[int, ...]) -> None:
        super().__init__()
        self.net = mlp(d_state + d_action, hidden, 1)

    def forward(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([state, action], dim=-1)).squeeze(-1).float()


class VNetwork(nn.Module):
    """V(s): an MLP with the policy's backbone widths."""

    def __init__(self, d_state: int, hidden: tuple[int, ...]) -> None:
        super().__init__()
        self.net = mlp(d_state, hidden, 1)

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        return self.net(state).squeeze(-1).float()


def expectile_loss(diff: torch.Tensor, expectile: float) -> torch.Tensor:
    """L_tau(u) = |tau - 1(u < 0)| u^2, averaged."""
    weight = torch.where(diff < 0, 1.0 - expectile, expectile)
    return (weight * diff.pow(2)).mean()


@torch.no_grad()
def polyak_update(target: nn.Module, online: nn.Module, rate: float) -> None:
    """target <- (1 - rate) target + rate online, parameter by parameter."""
    torch._foreach_lerp_(list(target.parameters()), list(online.parameters()), rate)


def exp_weights(advantage: torch.Tensor, temperature: float,
                max_weight: float = EXP_WEIGHT_MAX) -> torch.Tensor:
    """w = min(exp(A / beta), max_weight), computed without overflow."""
    log_max = torch.log(torch.tensor(max_weight, dtype=advantage.dtype, device=advantage.device))
    return torch.exp(torch.clamp(advantage / temperature, max=log_max))
