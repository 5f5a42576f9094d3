"""Filtered behaviour cloning, %BC (CORL): BC on the dataset's top ``fraction`` by reward.

The threshold is the dataset-level (1 - fraction)-quantile of the reward, fixed before training
(CORL filters once, by return); rows at or above it are kept. This is the fixed-ratio filter of
the paper's ablation and App. K ("Top 5 % / Top 40 % / 100 %").
"""

from __future__ import annotations

from typing import ClassVar

import torch
from pydantic import Field

from drpo_core.objectives.base import Batch, LossOutput, Objective, ObjectiveConfig


class FilteredBCConfig(ObjectiveConfig):
    fraction: float = Field(0.1, gt=0.0, le=1.0, description="share of rows kept (top by reward)")


class FilteredBC(Objective):
    name: ClassVar[str] = "filtered_bc"
    Config: ClassVar[type[ObjectiveConfig]] = FilteredBCConfig
    config: FilteredBCConfig

    def prepare(self, reward: torch.Tensor) -> torch.Tensor | None:
        if self.config.fraction >= 1.0:
            return None
        threshold = torch.quantile(reward.double(), 1.0 - self.config.fraction)
        return reward.double() >= threshold

    def loss(self, batch: Batch, step: int) -> LossOutput:
        return LossOutput(-self.policy.log_prob(batch.state, batch.action).mean(), {})
