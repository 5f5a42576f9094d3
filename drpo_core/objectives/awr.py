"""AWR: advantage-weighted regression (Peng et al. 2019) in the contextual bandit.

V(s) <- argmin E[(R - V(s))^2];   A = R - V(s);   w = min(exp(A / beta), 20)
L = -E[w log pi(a | s)] + E[(R - V(s))^2]      (the two terms touch disjoint parameters)
App. I grid: beta in {0.05, 0.1, 1.0}.

``normalize_advantage`` divides A by its batch std first (as AWR implementations commonly do),
so beta no longer depends on the reward's scale: a heavy-tailed reward (per-user activity)
otherwise makes one temperature too soft for light users and too hard for heavy ones.
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

ADVANTAGE_STD_EPS = 1e-8  # a batch whose advantages are all equal keeps weights exp(0) = 1


class AWRConfig(ObjectiveConfig):
    temperature: float = Field(0.1, gt=0.0, description="beta (App. I grid 0.05 / 0.1 / 1.0)")
    max_weight: float = Field(EXP_WEIGHT_MAX, gt=0.0, description="clip of exp(A / beta)")
    normalize_advantage: bool = Field(False, description="A / std(A) over the batch first "
                                                         "(scale-free beta)")


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
        if self.config.normalize_advantage:
            advantage = advantage / advantage.std(correction=0).clamp(min=ADVANTAGE_STD_EPS)
        weight = exp_weights(advantage, self.config.temperature, self.config.max_weight)
        actor_loss = -(weight * self.policy.log_prob(batch.state, batch.action)).mean()
        return LossOutput(actor_loss + value_loss,
                          {"losses/actor": actor_loss.detach(), "losses/value": value_loss.detach(),
                           "awr/weight_mean": weight.mean()})
