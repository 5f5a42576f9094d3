"""Filtered behaviour cloning, %BC (CORL): BC on the dataset's top ``kappa`` by reward.

The cut is fixed before training (CORL filters once, by return) over the whole dataset, with
the project's one tie rule (drpo_core/filtering.py, the SQL filter's): rank ceil(kappa n) by
descending reward, rows tied at the cut share the fractional mass, so exactly kappa of the rows'
mass is kept. This is the fixed-ratio filter of the paper's ablation and App. K ("Top 5 % /
Top 40 % / 100 %").

Before issue 12 the field was ``fraction`` (still accepted as an alias) and the cut was
``reward >= torch.quantile(reward, 1 - fraction)``, an interpolating cut that kept a mass other
than kappa with ties or a non-integer kappa n.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import AliasChoices, Field

from drpo_core.objectives.base import Batch, LossOutput, Objective, ObjectiveConfig


class FilteredBCConfig(ObjectiveConfig):
    kappa: float = Field(0.1, gt=0.0, le=1.0, validation_alias=AliasChoices("kappa", "fraction"),
                         description="kept mass of the dataset (top by reward); alias: fraction")


class FilteredBC(Objective):
    name: ClassVar[str] = "filtered_bc"
    Config: ClassVar[type[ObjectiveConfig]] = FilteredBCConfig
    config: FilteredBCConfig

    @classmethod
    def dataset_kappa_of(cls, config: ObjectiveConfig) -> float | None:
        assert isinstance(config, FilteredBCConfig)
        return config.kappa

    def loss(self, batch: Batch, step: int) -> LossOutput:
        return LossOutput(-self.policy.log_prob(batch.state, batch.action).mean(), {})
