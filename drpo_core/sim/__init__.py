"""RecSim-style simulator (paper App. H): world, mixed logging agent, log writer, environment."""

from drpo_core.sim.config import (
    SCENARIOS,
    LoggingMixture,
    SimConfig,
    scenario_config,
    with_expert_share,
)
from drpo_core.sim.generate import LogSimulator, SimulationError, SimulationResult
from drpo_core.sim.logging_agent import COMPONENTS, MixedLoggingAgent
from drpo_core.sim.world import World

__all__ = [
    "COMPONENTS",
    "SCENARIOS",
    "LogSimulator",
    "LoggingMixture",
    "MixedLoggingAgent",
    "SimConfig",
    "SimulationError",
    "SimulationResult",
    "World",
    "scenario_config",
    "with_expert_share",
]
