"""The champion alias: the gate's decision after a run, and the moves an operator makes."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from drpo_core.evaluation.scoring import PolicyScore
from flows import registry
from flows.gate import GateConfig, Scorecard, decide
from flows.jobs.evaluate import Evaluation
from flows.settings import drpo_home


@dataclass(frozen=True)
class GateOutcome:
    promoted: bool
    reason: str
    champion: int | None
    interval: dict[str, Any] | None = None  # the paired gain: mean, lower, upper, n


def champion_policy() -> tuple[int, Path] | None:
    """The current champion's version and its downloaded ``policy.pt``, if there is one."""
    client = registry.configure()
    mv = registry.alias_version(client, registry.CHAMPION)
    if mv is None:
        return None
    version = int(mv.version)
    cache = drpo_home() / "registry-cache" / str(version)
    return version, registry.download_policy(client, version, cache)


def scorecard(score: PolicyScore, health: dict[str, Any]) -> Scorecard:
    finite = math.isfinite(score.score) and math.isfinite(score.tail)
    reasons = tuple(health.get("reasons", ())) + (() if finite else ("non-finite evaluation",))
    return Scorecard(score.score, score.tail, bool(health.get("healthy")) and finite, reasons,
                     units=score.per_unit)


def gate(version: int, evaluation: Evaluation, health: dict[str, Any], config: GateConfig
         ) -> GateOutcome:
    """A pure decision over the two scorecards, then the alias move it asks for."""
    client = registry.configure()
    if evaluation.champion_version == version:
        return GateOutcome(False, f"version {version} already is the champion", version)
    champion = (scorecard(evaluation.champion, {"healthy": True})
                if evaluation.champion is not None else None)
    decision = decide(scorecard(evaluation.challenger, health), champion, config,
                      blocked=registry.blocked_reason(client, version))
    registry.annotate_version(client, version, tags=decision.as_tags(),
                              description_line=f"Gate: {decision.reason}")
    if decision.promote:
        registry.promote(client, version, reason=decision.reason)
    current = registry.alias_version(client, registry.CHAMPION)
    return GateOutcome(decision.promote, decision.reason,
                       int(current.version) if current is not None else None,
                       asdict(decision.interval) if decision.interval else None)


def promote(version: int) -> int | None:
    """Move ``champion`` to ``version`` by hand; the previous champion's version."""
    return registry.promote(registry.configure(), version, reason="manual (drpo promote)",
                            manual=True)


def rollback() -> tuple[int, int]:
    """Move ``champion`` back to the previous champion: (rolled back from, now champion)."""
    return registry.rollback(registry.configure())


def champion() -> Any:
    """The champion's model version, or a clear error when there is none."""
    mv = registry.alias_version(registry.configure(), registry.CHAMPION)
    if mv is None:
        raise ValueError(f"{registry.MODEL_NAME} has no champion yet")
    return mv
