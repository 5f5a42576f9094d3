"""The promotion gate (design card §5): challenger vs @champion on the same units, paired.

Both policies are scored on the same units (the simulator's evaluation users, or the held-out
rows of the off-policy estimate); each ``Scorecard`` carries its per-unit values, aligned. The
gate looks at the paired differences d_u = challenger_u - champion_u:

    mean gain  d_bar = (1/n) sum_u d_u
    interval   d_bar -/+ t_{(1+c)/2, n-1} * s_d / sqrt(n)      (Student t, confidence c)
               or the BCa bootstrap interval of the mean (scipy.stats.bootstrap)

and promotes only when

1. the challenger is healthy (finite, sigma inside its bounds, no collapse signal),
2. it is not blocked (a rolled-back version waits for a manual promotion),
3. the interval's lower bound clears ``min_gain`` (lower > min_gain), and
4. its lower tail is not worse than the champion's by more than ``tail_tolerance``.

The first healthy version becomes champion. Pairing removes the between-unit variance the two
policies share, so the interval is much narrower than two independent ones would be.

Scorecards without per-unit values (an older caller) fall back to comparing the two means by
``min_gain``, and the decision says so (``interval`` is None).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


class GateConfig(BaseModel):
    """``min_improvement`` (the older name) is accepted for ``min_gain``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    min_gain: float = Field(0.0, ge=0.0, description="minimum gain the lower bound must clear",
                            validation_alias="min_improvement")
    confidence: float = Field(0.95, gt=0.5, lt=1.0, description="two-sided confidence level")
    method: Literal["t", "bootstrap"] = Field("t", description="interval on the mean gain")
    tail_tolerance: float = Field(0.01, ge=0.0, description="allowed drop of the lower tail")
    bootstrap_resamples: int = Field(2000, ge=100, description="bootstrap resamples")
    seed: int = Field(0, description="bootstrap seed (decisions are reproducible)")


@dataclass(frozen=True)
class Scorecard:
    """What the gate compares: a mean score, its lower tail, health, and per-unit values."""

    score: float
    tail: float
    healthy: bool
    reasons: tuple[str, ...] = ()
    units: np.ndarray | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class GainInterval:
    """The paired gain of the challenger over the champion."""

    mean: float
    lower: float
    upper: float
    n: int
    confidence: float
    method: str

    def as_tags(self, prefix: str = "gate.gain_") -> dict[str, str]:
        return {f"{prefix}mean": f"{self.mean:.6g}", f"{prefix}lower": f"{self.lower:.6g}",
                f"{prefix}upper": f"{self.upper:.6g}", f"{prefix}n": str(self.n),
                f"{prefix}confidence": f"{self.confidence:g}", f"{prefix}method": self.method}

    def __str__(self) -> str:
        return (f"gain {self.mean:+.4f}, {self.confidence:.0%} interval "
                f"[{self.lower:+.4f}, {self.upper:+.4f}] over n={self.n} paired units")


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reason: str
    interval: GainInterval | None = None

    def as_tags(self) -> dict[str, str]:
        """For the version's tags and the Prefect artifact."""
        tags = {"gate.promoted": str(self.promote), "gate.reason": self.reason[:500]}
        return tags | (self.interval.as_tags() if self.interval else {})


def paired_gain(challenger: np.ndarray, champion: np.ndarray, config: GateConfig
                ) -> GainInterval:
    """The interval on the mean of d_u = challenger_u - champion_u."""
    from scipy import stats

    a, b = np.asarray(challenger, dtype=np.float64), np.asarray(champion, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired scores must be aligned 1-d arrays, got {a.shape} and "
                         f"{b.shape}")
    if len(a) < 2:
        raise ValueError(f"a paired interval needs at least 2 units, got {len(a)}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("paired scores must be finite")
    d = a - b
    mean = float(d.mean())
    if float(d.std()) == 0.0:  # every unit moved by the same amount: no sampling noise
        return GainInterval(mean, mean, mean, len(d), config.confidence, config.method)
    if config.method == "t":
        low, high = stats.t.interval(config.confidence, len(d) - 1, loc=mean,
                                     scale=stats.sem(d))
    else:
        res = stats.bootstrap((d,), np.mean, confidence_level=config.confidence,
                              n_resamples=config.bootstrap_resamples, method="BCa",
                              rng=np.random.default_rng(config.seed))
        low, high = res.confidence_interval
    return GainInterval(mean, float(low), float(high), len(d), config.confidence,
                        config.method)


def decide(challenger: Scorecard, champion: Scorecard | None, config: GateConfig,
           *, blocked: str | None = None) -> GateDecision:
    if not challenger.healthy:
        return GateDecision(False, "challenger unhealthy: " + "; ".join(challenger.reasons))
    if blocked:
        return GateDecision(False, f"version is blocked ({blocked}); only a manual "
                                   "promotion may make it champion")
    if champion is None:
        return GateDecision(True, "first healthy version becomes champion")
    interval = None
    if challenger.units is not None and champion.units is not None:
        interval = paired_gain(challenger.units, champion.units, config)
        if not interval.lower > config.min_gain:
            return GateDecision(False, f"score {challenger.score:.4f} does not beat the "
                                       f"champion's {champion.score:.4f}: {interval}, lower "
                                       f"bound not above {config.min_gain:g}", interval)
    else:
        gain = challenger.score - champion.score
        if not gain > config.min_gain:
            return GateDecision(False, f"score {challenger.score:.4f} does not beat the "
                                       f"champion's {champion.score:.4f} by {config.min_gain:g}"
                                       " (no per-unit scores: point comparison)")
    if challenger.tail < champion.tail - config.tail_tolerance:
        return GateDecision(False, f"lower tail {challenger.tail:.4f} regresses from the "
                                   f"champion's {champion.tail:.4f}", interval)
    evidence = str(interval) if interval else "no per-unit scores: point comparison"
    return GateDecision(True, f"score {challenger.score:.4f} > champion {champion.score:.4f} "
                              f"({evidence}), tail {challenger.tail:.4f} vs "
                              f"{champion.tail:.4f}", interval)
