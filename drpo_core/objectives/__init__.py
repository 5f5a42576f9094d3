"""One module per algorithm, one loss each; ``REGISTRY`` maps names to them."""

from __future__ import annotations

from typing import Any

from drpo_core.objectives.apg import APG
from drpo_core.objectives.asymre import AsymRe
from drpo_core.objectives.awr import AWR
from drpo_core.objectives.base import Batch, DataNeeds, LossOutput, Objective, ObjectiveConfig
from drpo_core.objectives.bc import BC
from drpo_core.objectives.bppo import BPPO
from drpo_core.objectives.critic import LEARNED_QUALITIES, Quality
from drpo_core.objectives.crr import CRR
from drpo_core.objectives.drpo import DRPO, AdaptiveBC, DRPOExp
from drpo_core.objectives.filtered_bc import FilteredBC
from drpo_core.objectives.iql import IQL
from drpo_core.policy import GaussianPolicy

REGISTRY: dict[str, type[Objective]] = {
    cls.name: cls
    for cls in (DRPO, DRPOExp, AdaptiveBC, FilteredBC, BC, AWR, CRR, IQL, BPPO, APG, AsymRe)
}


def algorithm_names() -> list[str]:
    return list(REGISTRY)


def objective_class(name: str) -> type[Objective]:
    if name not in REGISTRY:
        raise ValueError(f"unknown algorithm {name!r}; valid: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def make_config(name: str, values: dict[str, Any] | None = None) -> ObjectiveConfig:
    """The typed config of algorithm ``name`` (unknown fields are an error)."""
    return objective_class(name).Config.model_validate(values or {})


def make_objective(name: str, policy: GaussianPolicy,
                   config: ObjectiveConfig | dict[str, Any] | None = None) -> Objective:
    cls = objective_class(name)
    if not isinstance(config, ObjectiveConfig):
        config = make_config(name, config)
    return cls(policy, config)


__all__ = [
    "LEARNED_QUALITIES",
    "REGISTRY",
    "Batch",
    "DataNeeds",
    "LossOutput",
    "Objective",
    "ObjectiveConfig",
    "Quality",
    "algorithm_names",
    "make_config",
    "make_objective",
    "objective_class",
]
