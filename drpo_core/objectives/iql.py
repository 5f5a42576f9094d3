"""IQL: implicit Q-learning (Kostrikov et al. 2022), the bandit case and multi-step sessions.

Q_k(s, a) <- argmin E[(y - Q_k(s, a))^2], k = 1, 2,  y = r + gamma (1 - done) V(s')
V(s)     <- argmin E[L_tau(min_k Qbar_k(s, a) - V(s))],  L_tau(u) = |tau - 1(u < 0)| u^2
actor:    w = min(exp(beta (min_k Qbar_k - V)), 100);  L = -E[w log pi(a | s)]
Qbar_k = the Polyak target copies of Q_k (rate ``target_rate``, moved after every step), as in
the paper's implementation; V(s') is the online V (no gradient), as there.
gamma = 0 (the default) is the contextual bandit: y = r, no target networks (no bootstrapped
target needs one), and Qbar = Q (detached): bit for bit the former bandit-only objective.
App. I grid: expectile tau in {0.5, 0.7, 0.9}. beta = 3 is IQL's usual inverse temperature.
"""

from __future__ import annotations

import copy
from typing import ClassVar

import torch
from pydantic import Field

from drpo_core.objectives.base import (
    Batch,
    DataNeeds,
    LossOutput,
    Objective,
    ObjectiveConfig,
    QNetwork,
    VNetwork,
    exp_weights,
    expectile_loss,
    polyak_update,
)
from drpo_core.policy import GaussianPolicy

IQL_WEIGHT_MAX = 100.0

__all__ = ["IQL", "IQLConfig", "expectile_loss"]


class IQLConfig(ObjectiveConfig):
    expectile: float = Field(0.7, gt=0.0, lt=1.0, description="tau (App. I grid 0.5/0.7/0.9)")
    inverse_temperature: float = Field(3.0, gt=0.0, description="beta of exp(beta * A)")
    max_weight: float = Field(IQL_WEIGHT_MAX, gt=0.0, description="clip of the actor weights")
    gamma: float = Field(0.0, ge=0.0, lt=1.0, description="discount (0 = the bandit case; > 0 "
                         "needs next_state and done from the episode links)")
    target_rate: float = Field(0.005, gt=0.0, le=1.0,
                               description="Polyak rate of the target Q networks (gamma > 0)")


class IQL(Objective):
    name: ClassVar[str] = "iql"
    Config: ClassVar[type[ObjectiveConfig]] = IQLConfig
    config: IQLConfig

    def __init__(self, policy: GaussianPolicy, config: IQLConfig) -> None:
        super().__init__(policy, config)
        hidden = policy.config.hidden
        self.q1 = QNetwork(policy.d_state, policy.d_action, hidden)
        self.q2 = QNetwork(policy.d_state, policy.d_action, hidden)
        self.value = VNetwork(policy.d_state, hidden)
        self.q1_target: QNetwork | None = None
        self.q2_target: QNetwork | None = None
        if config.gamma > 0.0:
            self.q1_target = copy.deepcopy(self.q1).requires_grad_(False)
            self.q2_target = copy.deepcopy(self.q2).requires_grad_(False)

    @classmethod
    def data_needs_of(cls, config: ObjectiveConfig) -> DataNeeds:
        assert isinstance(config, IQLConfig)
        return DataNeeds(transitions=config.gamma > 0.0)

    def _q_target(self, batch: Batch) -> torch.Tensor:
        """y: r (bandit) or r + gamma (1 - done) V(s')."""
        if self.config.gamma == 0.0:
            return batch.reward
        with torch.no_grad():
            next_v = self.value(batch.next_state)
        return batch.reward + self.config.gamma * (1.0 - batch.done) * next_v

    def _q_for_value(self, batch: Batch, q1: torch.Tensor, q2: torch.Tensor) -> torch.Tensor:
        """min_k Qbar_k(s, a), detached: the target copies when there are any."""
        if self.q1_target is None or self.q2_target is None:
            return torch.minimum(q1, q2).detach()
        with torch.no_grad():
            return torch.minimum(self.q1_target(batch.state, batch.action),
                                 self.q2_target(batch.state, batch.action))

    def loss(self, batch: Batch, step: int) -> LossOutput:
        c = self.config
        q1, q2 = self.q1(batch.state, batch.action), self.q2(batch.state, batch.action)
        y = self._q_target(batch)
        q_loss = (y - q1).pow(2).mean() + (y - q2).pow(2).mean()
        q_min = self._q_for_value(batch, q1, q2)
        v = self.value(batch.state)
        v_loss = expectile_loss(q_min - v, c.expectile)
        advantage = q_min - v.detach()
        weight = exp_weights(advantage, 1.0 / c.inverse_temperature, c.max_weight)
        actor_loss = -(weight * self.policy.log_prob(batch.state, batch.action)).mean()
        return LossOutput(actor_loss + q_loss + v_loss,
                          {"losses/actor": actor_loss.detach(), "losses/q": q_loss.detach(),
                           "losses/value": v_loss.detach(), "iql/weight_mean": weight.mean()})

    @torch.no_grad()
    def after_step(self, step: int) -> None:
        if self.q1_target is not None and self.q2_target is not None:
            polyak_update(self.q1_target, self.q1, self.config.target_rate)
            polyak_update(self.q2_target, self.q2, self.config.target_rate)
