"""CRR: critic-regularised regression (Wang et al. 2020), the bandit case and multi-step sessions.

Q(s, a) <- argmin E[(y - Q(s, a))^2],  y = r + gamma (1 - done) (1/m) sum_j Qbar(s', a'_j),
          a'_j ~ pi(. | s'),  Qbar = the Polyak target copy of Q (rate ``target_rate``)
A(s, a) = Q(s, a) - (1/m) sum_j Q(s, a_j),  a_j ~ pi(. | s)
exp:    w = min(exp(A / beta), 20)      binary: w = 1[A > 0]
L = -E[w log pi(a | s)] + critic loss.  App. I grid: beta in {0.5, 1.0, 5.0}.
gamma = 0 (the default) is App. J's bandit setting: y = r, no bootstrapping, no target network
and no draws of a' (the generator's stream is the former bandit-only objective's, bit for bit).
The paper's distributional critic and periodic hard target copies are replaced by a scalar critic
and a Polyak target, the common re-implementation (CORL, d3rlpy).
"""

from __future__ import annotations

import copy
from typing import ClassVar, Literal

import torch
from pydantic import Field

from drpo_core.objectives.base import (
    EXP_WEIGHT_MAX,
    Batch,
    DataNeeds,
    LossOutput,
    Objective,
    ObjectiveConfig,
    QNetwork,
    exp_weights,
    polyak_update,
)
from drpo_core.policy import GaussianPolicy


class CRRConfig(ObjectiveConfig):
    temperature: float = Field(1.0, gt=0.0, description="beta (App. I grid 0.5 / 1.0 / 5.0)")
    weighting: Literal["exp", "binary"] = Field("exp", description="CRR-exp or CRR-binary")
    action_samples: int = Field(4, gt=0, description="m: policy samples for the baseline")
    max_weight: float = Field(EXP_WEIGHT_MAX, gt=0.0, description="clip of exp(A / beta)")
    gamma: float = Field(0.0, ge=0.0, lt=1.0, description="discount (0 = the bandit case; > 0 "
                         "needs next_state and done from the episode links)")
    target_rate: float = Field(0.005, gt=0.0, le=1.0,
                               description="Polyak rate of the target Q network (gamma > 0)")


class CRR(Objective):
    name: ClassVar[str] = "crr"
    Config: ClassVar[type[ObjectiveConfig]] = CRRConfig
    config: CRRConfig

    def __init__(self, policy: GaussianPolicy, config: CRRConfig) -> None:
        super().__init__(policy, config)
        self.q = QNetwork(policy.d_state, policy.d_action, policy.config.hidden)
        self.q_target: QNetwork | None = None
        if config.gamma > 0.0:
            self.q_target = copy.deepcopy(self.q).requires_grad_(False)

    @classmethod
    def data_needs_of(cls, config: ObjectiveConfig) -> DataNeeds:
        assert isinstance(config, CRRConfig)
        return DataNeeds(transitions=config.gamma > 0.0)

    @torch.no_grad()
    def _policy_value(self, q: QNetwork, state: torch.Tensor, batch: Batch) -> torch.Tensor:
        """(1/m) sum_j q(s, a_j), a_j ~ pi(. | s)."""
        m, n = self.config.action_samples, state.shape[0]
        states = state.repeat(m, 1)
        sampled = self.policy.sample(states, batch.generator)
        return q(states, sampled).view(m, n).mean(dim=0)

    def _q_target(self, batch: Batch) -> torch.Tensor:
        """y: r (bandit) or r + gamma (1 - done) E_{a' ~ pi} Qbar(s', a')."""
        if self.q_target is None:
            return batch.reward
        next_q = self._policy_value(self.q_target, batch.next_state, batch)
        return batch.reward + self.config.gamma * (1.0 - batch.done) * next_q

    def loss(self, batch: Batch, step: int) -> LossOutput:
        c = self.config
        q = self.q(batch.state, batch.action)
        critic_loss = (self._q_target(batch) - q).pow(2).mean()
        with torch.no_grad():
            advantage = q.detach() - self._policy_value(self.q, batch.state, batch)
            if c.weighting == "exp":
                weight = exp_weights(advantage, c.temperature, c.max_weight)
            else:
                weight = (advantage > 0).float()
        actor_loss = -(weight * self.policy.log_prob(batch.state, batch.action)).mean()
        return LossOutput(actor_loss + critic_loss,
                          {"losses/actor": actor_loss.detach(),
                           "losses/critic": critic_loss.detach(),
                           "crr/weight_mean": weight.mean()})

    @torch.no_grad()
    def after_step(self, step: int) -> None:
        if self.q_target is not None:
            polyak_update(self.q_target, self.q, self.config.target_rate)
