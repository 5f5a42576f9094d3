"""The promotion gate (design card §5): challenger vs @champion on the same held-out data.

A challenger is promoted only if it is healthy (finite, sigma inside its bounds, no collapse
signal), its score beats the champion's by at least ``min_improvement``, and its lower tail is
not worse than the champion's by more than ``tail_tolerance``. The first healthy version becomes
champion. The score is the simulator's online reward when the logs come from the simulator, and
the doubly robust off-policy estimate on the held-out day otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field


class GateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min_improvement: float = Field(0.0, ge=0.0, description="score margin over the champion")
    tail_tolerance: float = Field(0.01, ge=0.0, description="allowed drop of the lower tail")


@dataclass(frozen=True)
class Scorecard:
    """What the gate compares: a mean score, its lower tail, and health."""

    score: float
    tail: float
    healthy: bool
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reason: str


def decide(challenger: Scorecard, champion: Scorecard | None, config: GateConfig
           ) -> GateDecision:
    if not challenger.healthy:
        return GateDecision(False, "challenger unhealthy: " + "; ".join(challenger.reasons))
    if champion is None:
        return GateDecision(True, "first healthy version becomes champion")
    gain = challenger.score - champion.score
    if gain < config.min_improvement or (gain <= 0 and config.min_improvement == 0):
        return GateDecision(False, f"score {challenger.score:.4f} does not beat the champion's "
                                   f"{champion.score:.4f} by {config.min_improvement:g}")
    if challenger.tail < champion.tail - config.tail_tolerance:
        return GateDecision(False, f"lower tail {challenger.tail:.4f} regresses from the "
                                   f"champion's {champion.tail:.4f}")
    return GateDecision(True, f"score {challenger.score:.4f} > champion {champion.score:.4f} "
                              f"(+{gain:.4f}), tail {challenger.tail:.4f} vs {champion.tail:.4f}")
