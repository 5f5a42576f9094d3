"""BPPO: behaviour proximal policy optimisation (Zhuang et al. 2023) in the contextual bandit.

Phase 1 (steps < bc_steps): BC of the behaviour policy, and Q(s, a), V(s) fitted to R.
Phase 2: clipped-ratio improvement against a frozen old policy pi_k, refreshed every
``old_policy_interval`` steps:
  a ~ pi_k(. | s),  A = (Q(s, a) - V(s)) / std,  rho = pi(a | s) / pi_k(a | s)
  L = -E[min(rho A, clip(rho, 1 - eps, 1 + eps) A)]
App. I grid: clip eps in {0.1, 0.2, 0.3}. ASSUMPTION: the original's offline policy evaluation
gate for replacing pi_k is replaced by a fixed refresh interval. Under data parallelism the
advantage std is taken per shard.
"""

from __future__ import annotations

import copy
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
)
from drpo_core.policy import GaussianPolicy


class BPPOConfig(ObjectiveConfig):
    clip: float = Field(0.2, gt=0.0, lt=1.0, description="epsilon (App. I grid 0.1/0.2/0.3)")
    bc_steps: int = Field(1000, ge=0, description="steps of phase 1 (BC + critics)")
    old_policy_interval: int = Field(100, gt=0, description="steps between pi_k refreshes")


class BPPO(Objective):
    name: ClassVar[str] = "bppo"
    Config: ClassVar[type[ObjectiveConfig]] = BPPOConfig
    config: BPPOConfig

    def __init__(self, policy: GaussianPolicy, config: BPPOConfig) -> None:
        super().__init__(policy, config)
        hidden = policy.config.hidden
        self.q = QNetwork(policy.d_state, policy.d_action, hidden)
        self.value = VNetwork(policy.d_state, hidden)
        self.old_policy = copy.deepcopy(policy).requires_grad_(False)

    def loss(self, batch: Batch, step: int) -> LossOutput:
        q = self.q(batch.state, batch.action)
        v = self.value(batch.state)
        critic_loss = (batch.reward - q).pow(2).mean() + (batch.reward - v).pow(2).mean()
        if step < self.config.bc_steps:
            bc_loss = -self.policy.log_prob(batch.state, batch.action).mean()
            return LossOutput(bc_loss + critic_loss,
                              {"losses/actor": bc_loss.detach(),
                               "losses/critic": critic_loss.detach()})
        with torch.no_grad():
            action = self.old_policy.sample(batch.state, batch.generator)
            old_log_prob = self.old_policy.log_prob(batch.state, action)
            advantage = self.q(batch.state, action) - self.value(batch.state)
            advantage = advantage / (advantage.std(correction=0) + 1e-8)
        ratio = torch.exp(self.policy.log_prob(batch.state, action) - old_log_prob)
        clipped = torch.clamp(ratio, 1.0 - self.config.clip, 1.0 + self.config.clip)
        actor_loss = -torch.minimum(ratio * advantage, clipped * advantage).mean()
        return LossOutput(actor_loss + critic_loss,
                          {"losses/actor": actor_loss.detach(),
                           "losses/critic": critic_loss.detach(),
                           "bppo/ratio_mean": ratio.mean().detach()})

    @torch.no_grad()
    def after_step(self, step: int) -> None:
        done = step + 1
        if done >= self.config.bc_steps and (done - self.config.bc_steps) % \
                self.config.old_policy_interval == 0:
            self.old_policy.load_state_dict(self.policy.state_dict())
