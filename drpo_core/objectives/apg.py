"""APG: off-policy advantage policy gradient with no correction (paper Sec. 2, the failure case).

grad J ≈ E_{(s,a)~D}[ Â(s,a) grad log pi(a | s) ],  Â = R - b,  no importance weights.
b is the global batch's mean reward (digest §2: "b(s) ... such as V(s) or the batch mean").
With Zipf-like rewards most Â < 0: the repulsive terms dominate and the policy collapses (RQ1,
Table 1 prose: reward ≈ 0.01). This objective exists to reproduce that failure.
"""

from __future__ import annotations

from typing import ClassVar

from drpo_core.objectives.base import Batch, LossOutput, Objective, ObjectiveConfig


class APGConfig(ObjectiveConfig):
    """APG uses the batch-mean baseline; no hyperparameters."""


class APG(Objective):
    name: ClassVar[str] = "apg"
    Config: ClassVar[type[ObjectiveConfig]] = APGConfig

    def loss(self, batch: Batch, step: int) -> LossOutput:
        advantage = batch.reward - batch.reward_all.mean()
        log_prob = self.policy.log_prob(batch.state, batch.action)
        negative_share = (batch.reward_all < batch.reward_all.mean()).float().mean()
        return LossOutput(-(advantage * log_prob).mean(),
                          {"apg/negative_share": negative_share})
