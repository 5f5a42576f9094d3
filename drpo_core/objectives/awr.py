"""AWR: advantage-weighted regression (Peng et al. 2019) in the contextual bandit.

V(s) <- argmin E[(R - V(s))^2];   A = R - V(s);   w = min(exp(A / beta), 20)
L = -E[w log pi(a | s)] + E[(R - V(s))^2]      (the two terms touch disjoint parameters)
App. I grid: beta in {0.05, 0.1, 1.0}.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from drpo_core.objectives.base import (
    EXP_WEIGHT_MAX,
    Batch,
    LossOutput,
    Objective,
    ObjectiveConfig,
    VNetwork,
    exp_weights,
)
from drpo_core.policy import GaussianPolicy


class AWRConfig(ObjectiveConfig):
    temperature: float = Field(0.1, gt=0.0, description="beta (App. I grid 0.05 / 0.1 / 1.0)")
    max_weight: float = Field(EXP_WEIGHT_MAX, gt=0.0, description="clip of exp(A / beta)")


class AWR(Objective):
    name: ClassVar[str] = "awr"
    Config: ClassVar[type[ObjectiveConfig]] = AWRConfig
    config: AWRConfig

    def __init__(self, policy: GaussianPolicy, config: AWRConfig) -> None:
        super().__init__(policy, config)
        self.value = VNetwork(policy.d_state, policy.config.hidden)

    def loss(self, batch: Batch, step: int) -> LossOutput:
        v = self.value(batch.state)
        value_loss = (batch.reward - v).pow(2).mean()
        advantage = (batch.reward - v).detach()
        weight = exp_weights(advantage, self.config.temperature, self.config.max_weight)
        actor_loss = -(weight * self.policy.log_prob(batch.state, batch.action)).mean()
        return LossOutput(actor_loss + value_loss,
                          {"losses/actor": actor_loss.detach(), "losses/value": value_loss.detach(),
                           "awr/weight_mean": weight.mean()})
