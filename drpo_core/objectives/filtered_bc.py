"""Filtered behaviour cloning, %BC (CORL): BC on the dataset's top ``kappa`` by quality.

With ``quality`` reward or return (objectives/critic.py) the cut is fixed before training (CORL
filters once, by return) over the whole dataset, with the project's one tie rule
(drpo_core/filtering.py, the SQL filter's): rank ceil(kappa n) by descending quality, rows tied at
the cut share the fractional mass, so exactly kappa of the rows' mass is kept. This is the
fixed-ratio filter of the paper's ablation and App. K ("Top 5 % / Top 40 % / 100 %").

With a learned signal (advantage, q) no cut can be made before training: the critic learns with
the policy. The same tie rule with the same fixed kappa is then applied to every batch, on the
signal of the global batch (``filtering.top_kappa``, the ablation's fixed-ratio filter), the
policy clones the kept rows (L = -(1/K) sum_j m_j log pi(a_j | s_j), m_j the kept mass), the
critic's loss is added, and there is no dataset-level cut (``dataset_kappa_of`` is None).

Before issue 12 the field was ``fraction`` (still accepted as an alias) and the cut was
``reward >= torch.quantile(reward, 1 - fraction)``, an interpolating cut that kept a mass other
than kappa with ties or a non-integer kappa n.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from pydantic import AliasChoices, Field

from drpo_core.filtering import top_kappa
from drpo_core.objectives.base import (
    Batch,
    DataNeeds,
    LossOutput,
    Objective,
    ObjectiveConfig,
    weighted_log_likelihood_loss,
)
from drpo_core.objectives.critic import (
    LEARNED_QUALITIES,
    QualityConfig,
    make_critic,
    quality_data_needs,
)
from drpo_core.policy import GaussianPolicy


class FilteredBCConfig(QualityConfig):
    kappa: float = Field(0.1, gt=0.0, le=1.0, validation_alias=AliasChoices("kappa", "fraction"),
                         description="kept mass of the dataset (top by quality; per batch with "
                         "a learned quality); alias: fraction")


class FilteredBC(Objective):
    name: ClassVar[str] = "filtered_bc"
    Config: ClassVar[type[ObjectiveConfig]] = FilteredBCConfig
    config: FilteredBCConfig

    def __init__(self, policy: GaussianPolicy, config: FilteredBCConfig) -> None:
        super().__init__(policy, config)
        self.critic = make_critic(config, policy)

    @classmethod
    def dataset_kappa_of(cls, config: ObjectiveConfig) -> float | None:
        assert isinstance(config, FilteredBCConfig)
        return None if config.quality in LEARNED_QUALITIES else config.kappa

    @classmethod
    def data_needs_of(cls, config: ObjectiveConfig) -> DataNeeds:
        assert isinstance(config, FilteredBCConfig)
        return quality_data_needs(config)

    def loss(self, batch: Batch, step: int) -> LossOutput:
        if self.critic is None:  # the dataset's cut was made before training
            return LossOutput(-self.policy.log_prob(batch.state, batch.action).mean(), {})
        quality, critic_loss = self.critic(batch)
        kept = top_kappa(quality, self.config.kappa)
        loss = weighted_log_likelihood_loss(self.policy, batch, kept.weight, kept.count)
        return LossOutput(loss + critic_loss, {"filter/nu": kept.nu, "filter/kept": kept.count,
                                               "critic/loss": critic_loss.detach()})

    def needs_after_step(self) -> bool:
        return self.critic is not None

    @torch.no_grad()
    def after_step(self, step: int) -> None:
        if self.critic is not None:
            self.critic.after_step()
