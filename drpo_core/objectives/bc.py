"""Behaviour cloning: L = -E_{(s,a)~D}[log pi(a | s)] (App. I, "NLL of logged actions")."""

from __future__ import annotations

from typing import ClassVar

from drpo_core.objectives.base import Batch, LossOutput, Objective, ObjectiveConfig


class BCConfig(ObjectiveConfig):
    """BC has no hyperparameters beyond the shared optimiser and policy."""


class BC(Objective):
    name: ClassVar[str] = "bc"
    Config: ClassVar[type[ObjectiveConfig]] = BCConfig

    def loss(self, batch: Batch, step: int) -> LossOutput:
        return LossOutput(-self.policy.log_prob(batch.state, batch.action).mean(), {})
