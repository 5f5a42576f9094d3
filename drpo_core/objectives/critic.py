"""The quality signal the filtered objectives rank by (issue 11): reward, return, advantage, q.

``quality`` (a field of drpo, drpo_exp, adaptive_bc and filtered_bc; default ``reward``, the
paper's) chooses what the per-batch filter, the variance controller and the weights act on:

* ``reward``: the logged reward (Algorithm 1).
* ``return``: the discounted return-to-go of the row's session with ``gamma``. No critic: the data
  layer exports it in the reward column (``DataNeeds(return_gamma=gamma)``).
* ``advantage``: A = r - V(s), V a state-value critic trained in the same trainer by **mean
  (MSE) regression**, so V estimates the logging policy's expected reward in the state and A says
  how much better than usual in that context the logged action did. The mean, not an expectile:
  it is the SQL filter's stand-in (reward minus the per-user mean), it is unbiased, and shifting
  every reward of a state by c shifts V(s) by c and leaves A unchanged (the invariance the issue
  asks for); an upper expectile would add a state-dependent offset that depends on the spread of
  the state's rewards. With gamma > 0: V(s) <- r + gamma (1 - done) V_target(s') (TD(0) on the
  logged transitions, V_target a Polyak copy moved in ``after_step``), and the signal is the TD
  advantage A = r + gamma (1 - done) V_target(s') - V(s), which is r - V(s) at gamma = 0.
* ``q``: Q(s, a) from a critic (DRPO-Q, digest §4.4). gamma = 0: Q regresses r. gamma > 0: the
  target must need no next action from the logs (the next logged action is the logging policy's,
  and the policy's own would make the signal chase the actor), so it is IQL's in-sample target
  Q(s, a) <- r + gamma (1 - done) V(s'), V(s) <- expectile_tau of Q_target(s, a) (tau =
  ``critic_expectile``, IQL's 0.7 by default: an in-sample, slightly optimistic max over the
  logged actions), Q_target a Polyak copy of Q. The signal is the online Q(s, a), detached.

The learned signals are computed for the whole GLOBAL batch, which the filter ranks: in one
process the batch's rows are the global batch; with world_size > 1 each rank evaluates the
critic on its shard and the detached signals are all-gathered in shard (= rank) order. The
critic's loss is the mean over the rank's rows (DDP averages it to the global mean) and is added
to the objective's loss, so the trainer's one optimiser trains it.

The critic costs one forward and backward of an MLP on all N rows of the batch per step, where
the policy of DRPO runs on its kept rows only (P N, often 0.05 N once the controller settles);
``critic_hidden`` sets its widths. The default is one hidden layer as wide as the policy's last:
the signal has to rank one batch, not act, and every layer runs on all N rows
(benchmarks/quality_bench.py times both; issue 11's goal: the critic at most halves the steps/s).
"""

from __future__ import annotations

import copy
from typing import Literal

import torch
import torch.distributed as dist
from pydantic import Field
from torch import nn

from drpo_core.objectives.base import (
    Batch,
    DataNeeds,
    ObjectiveConfig,
    QNetwork,
    VNetwork,
    expectile_loss,
    polyak_update,
)
from drpo_core.policy import GaussianPolicy

Quality = Literal["reward", "advantage", "q", "return"]
#: signals that need a critic trained with the policy
LEARNED_QUALITIES = frozenset({"advantage", "q"})


class QualityConfig(ObjectiveConfig):
    """The quality fields shared by the filtered objectives."""

    quality: Quality = Field("reward", description="what the filter ranks: reward (the paper's), "
                             "advantage (r - V(s)), q (Q(s, a), DRPO-Q) or return (return-to-go)")
    gamma: float = Field(0.0, ge=0.0, lt=1.0, description="discount of return, and of the "
                         "critic's target with advantage / q (0 = the bandit case)")
    target_rate: float = Field(0.005, gt=0.0, le=1.0, description="Polyak rate of the critic's "
                               "target network (gamma > 0)")
    critic_expectile: float = Field(0.7, gt=0.0, lt=1.0, description="tau of V as an expectile "
                                    "of Q (quality q with gamma > 0, IQL's target)")
    critic_hidden: tuple[int, ...] | None = Field(
        None, description="hidden widths of the critic (None = one layer as wide as the "
        "policy's last)")


def quality_data_needs(config: QualityConfig) -> DataNeeds:
    """What the data layer exports for this quality signal."""
    if config.quality == "return":
        return DataNeeds(return_gamma=config.gamma)
    if config.quality in LEARNED_QUALITIES and config.gamma > 0.0:
        return DataNeeds(transitions=True)
    return DataNeeds()


def gather_global(local: torch.Tensor, batch: Batch) -> torch.Tensor:
    """The (N,) global batch from every rank's (detached) shard, in shard order."""
    if batch.world_size == 1:
        return local
    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError("a learned quality signal with world_size > 1 needs torch.distributed "
                           "initialised (the trainer does it)")
    parts = [torch.empty_like(local) for _ in range(batch.world_size)]
    dist.all_gather(parts, local.contiguous())
    return torch.cat(parts)


class QualityCritic(nn.Module):
    """A learned signal: ``forward(batch)`` returns the global batch's detached signal and the
    critic's loss on this rank's rows; ``after_step`` moves the target network (gamma > 0)."""

    def __init__(self, config: QualityConfig) -> None:
        super().__init__()
        self.gamma = config.gamma
        self.rate = config.target_rate

    def local_signal(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(the detached signal of this rank's rows, the critic's loss)"""
        raise NotImplementedError

    def forward(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        signal, loss = self.local_signal(batch)
        return gather_global(signal.detach(), batch), loss

    def bootstrap(self, batch: Batch, next_value: torch.Tensor) -> torch.Tensor:
        """r + gamma (1 - done) next_value."""
        return batch.reward + self.gamma * (1.0 - batch.done) * next_value

    @torch.no_grad()
    def after_step(self) -> None:
        """Polyak update of the target network (none at gamma = 0)."""


class AdvantageCritic(QualityCritic):
    """A = r + gamma (1 - done) V_target(s') - V(s), V by mean (MSE) regression."""

    def __init__(self, config: QualityConfig, d_state: int, hidden: tuple[int, ...]) -> None:
        super().__init__(config)
        self.value = VNetwork(d_state, hidden)
        self.value_target = (copy.deepcopy(self.value).requires_grad_(False)
                             if self.gamma > 0.0 else None)

    def local_signal(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        v = self.value(batch.state)
        target = batch.reward
        if self.value_target is not None:
            with torch.no_grad():
                target = self.bootstrap(batch, self.value_target(batch.next_state))
        return target - v.detach(), (target - v).pow(2).mean()

    @torch.no_grad()
    def after_step(self) -> None:
        if self.value_target is not None:
            polyak_update(self.value_target, self.value, self.rate)


class QCritic(QualityCritic):
    """Q(s, a): regresses r (gamma = 0) or IQL's r + gamma (1 - done) V(s'), V an expectile of
    the Polyak target Q_target(s, a)."""

    def __init__(self, config: QualityConfig, d_state: int, d_action: int,
                 hidden: tuple[int, ...]) -> None:
        super().__init__(config)
        self.expectile = config.critic_expectile
        self.q = QNetwork(d_state, d_action, hidden)
        self.q_target: QNetwork | None = None
        self.value: VNetwork | None = None
        if self.gamma > 0.0:
            self.q_target = copy.deepcopy(self.q).requires_grad_(False)
            self.value = VNetwork(d_state, hidden)

    def local_signal(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        q = self.q(batch.state, batch.action)
        if self.value is None or self.q_target is None:
            return q.detach(), (batch.reward - q).pow(2).mean()
        with torch.no_grad():
            target = self.bootstrap(batch, self.value(batch.next_state))
            q_old = self.q_target(batch.state, batch.action)
        v = self.value(batch.state)
        loss = (target - q).pow(2).mean() + expectile_loss(q_old - v, self.expectile)
        return q.detach(), loss

    @torch.no_grad()
    def after_step(self) -> None:
        if self.q_target is not None:
            polyak_update(self.q_target, self.q, self.rate)


def make_critic(config: QualityConfig, policy: GaussianPolicy) -> QualityCritic | None:
    """The critic a quality signal needs (None for reward and return)."""
    hidden = config.critic_hidden
    if hidden is None:
        hidden = policy.config.hidden[-1:]
    if config.quality == "advantage":
        return AdvantageCritic(config, policy.d_state, hidden)
    if config.quality == "q":
        return QCritic(config, policy.d_state, policy.d_action, hidden)
    return None
