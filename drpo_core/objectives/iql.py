"""IQL: implicit Q-learning (Kostrikov et al. 2022) in the contextual bandit.

Q_k(s, a) <- argmin E[(R - Q_k(s, a))^2], k = 1, 2   (gamma = 0: the bandit target is R itself)
V(s)     <- argmin E[L_tau(min_k Q_k(s, a) - V(s))],  L_tau(u) = |tau - 1(u < 0)| u^2
actor:    w = min(exp(beta (min_k Q_k - V)), 100);  L = -E[w log pi(a | s)]
App. I grid: expectile tau in {0.5, 0.7, 0.9}. beta = 3 is IQL's usual inverse temperature.
With gamma = 0 the target network of the original is not needed (no bootstrapped target).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from pydantic import Field

from drpo_core.objectives.base import (
    Batch,
    LossOutput,
    Objective,
    ObjectiveConfig,
    QNetwork,
    VNetwork,
    exp_weights,
)
from drpo_core.policy import GaussianPolicy

IQL_WEIGHT_MAX = 100.0


class IQLConfig(ObjectiveConfig):
    expectile: float = Field(0.7, gt=0.0, lt=1.0, description="tau (App. I grid 0.5/0.7/0.9)")
    inverse_temperature: float = Field(3.0, gt=0.0, description="beta of exp(beta * A)")
    max_weight: float = Field(IQL_WEIGHT_MAX, gt=0.0, description="clip of the actor weights")


def expectile_loss(diff: torch.Tensor, expectile: float) -> torch.Tensor:
    """L_tau(u) = |tau - 1(u < 0)| u^2, averaged."""
    weight = torch.where(diff < 0, 1.0 - expectile, expectile)
    return (weight * diff.pow(2)).mean()


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

    def loss(self, batch: Batch, step: int) -> LossOutput:
        c = self.config
        q1, q2 = self.q1(batch.state, batch.action), self.q2(batch.state, batch.action)
        q_loss = (batch.reward - q1).pow(2).mean() + (batch.reward - q2).pow(2).mean()
        q_min = torch.minimum(q1, q2).detach()
        v = self.value(batch.state)
        v_loss = expectile_loss(q_min - v, c.expectile)
        advantage = q_min - v.detach()
        weight = exp_weights(advantage, 1.0 / c.inverse_temperature, c.max_weight)
        actor_loss = -(weight * self.policy.log_prob(batch.state, batch.action)).mean()
        return LossOutput(actor_loss + q_loss + v_loss,
                          {"losses/actor": actor_loss.detach(), "losses/q": q_loss.detach(),
                           "losses/value": v_loss.detach(), "iql/weight_mean": weight.mean()})
