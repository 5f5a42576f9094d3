"""AsymRe: asymmetric REINFORCE weights on off-policy data.

Definition used (the paper's own, Sec. 5.1 / App. I as digested in §6): A = R - b with b the
global batch mean reward minus ``baseline_shift``; positive advantages keep weight A, negative
ones are down-weighted: w = A if A >= 0 else negative_weight * A (paper: w- = 0.1).
L = -E[w log pi(a | s)].

Why this one: it is the objective the paper names as DRPO's ("AsymRe / min(R_subset)", App. J),
under which DRPO's kept advantages are all >= 0 and the down-weight never fires. The paper's
bibliography entry is a placeholder; Arnal et al. 2025 ("Asymmetric REINFORCE") instead lower
the baseline V below the policy's value: set ``negative_weight = 1`` and ``baseline_shift > 0``
for that variant.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from pydantic import Field

from drpo_core.objectives.base import Batch, LossOutput, Objective, ObjectiveConfig


class AsymReConfig(ObjectiveConfig):
    negative_weight: float = Field(0.1, ge=0.0, le=1.0, description="w- on negative advantages")
    baseline_shift: float = Field(0.0, ge=0.0, description="delta: b = mean(r) - delta")


class AsymRe(Objective):
    name: ClassVar[str] = "asymre"
    Config: ClassVar[type[ObjectiveConfig]] = AsymReConfig
    config: AsymReConfig

    def loss(self, batch: Batch, step: int) -> LossOutput:
        baseline = batch.reward_all.mean() - self.config.baseline_shift
        advantage = batch.reward - baseline
        weight = torch.where(advantage >= 0, advantage, self.config.negative_weight * advantage)
        log_prob = self.policy.log_prob(batch.state, batch.action)
        return LossOutput(-(weight * log_prob).mean(), {})
