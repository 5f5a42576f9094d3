"""CRR: critic-regularised regression (Wang et al. 2020) in the contextual bandit.

Q(s, a) <- argmin E[(R - Q(s, a))^2]   (one step, no bootstrapping: App. J's bandit setting)
A(s, a) = Q(s, a) - (1/m) sum_j Q(s, a_j),  a_j ~ pi(. | s)
exp:    w = min(exp(A / beta), 20)      binary: w = 1[A > 0]
L = -E[w log pi(a | s)] + critic loss.  App. I grid: beta in {0.5, 1.0, 5.0}.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from pydantic import Field

from drpo_core.objectives.base import (
    EXP_WEIGHT_MAX,
    Batch,
    LossOutput,
    Objective,
    ObjectiveConfig,
    QNetwork,
    exp_weights,
)
from drpo_core.policy import GaussianPolicy


class CRRConfig(ObjectiveConfig):
    temperature: float = Field(1.0, gt=0.0, description="beta (App. I grid 0.5 / 1.0 / 5.0)")
    weighting: Literal["exp", "binary"] = Field("exp", description="CRR-exp or CRR-binary")
    action_samples: int = Field(4, gt=0, description="m: policy samples for the baseline")
    max_weight: float = Field(EXP_WEIGHT_MAX, gt=0.0, description="clip of exp(A / beta)")


class CRR(Objective):
    name: ClassVar[str] = "crr"
    Config: ClassVar[type[ObjectiveConfig]] = CRRConfig
    config: CRRConfig

    def __init__(self, policy: GaussianPolicy, config: CRRConfig) -> None:
        super().__init__(policy, config)
        self.q = QNetwork(policy.d_state, policy.d_action, policy.config.hidden)

    def loss(self, batch: Batch, step: int) -> LossOutput:
        c = self.config
        q = self.q(batch.state, batch.action)
        critic_loss = (batch.reward - q).pow(2).mean()
        with torch.no_grad():
            n = batch.state.shape[0]
            states = batch.state.repeat(c.action_samples, 1)
            sampled = self.policy.sample(states, batch.generator)
            baseline = self.q(states, sampled).view(c.action_samples, n).mean(dim=0)
            advantage = q.detach() - baseline
            if c.weighting == "exp":
                weight = exp_weights(advantage, c.temperature, c.max_weight)
            else:
                weight = (advantage > 0).float()
        actor_loss = -(weight * self.policy.log_prob(batch.state, batch.action)).mean()
        return LossOutput(actor_loss + critic_loss,
                          {"losses/actor": actor_loss.detach(),
                           "losses/critic": critic_loss.detach(),
                           "crr/weight_mean": weight.mean()})
