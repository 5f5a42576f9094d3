"""Challenger and champion scored in one pass on the same held-out units.

Everything comes from the warehouse: the held-out day's sample, the item catalogue and, for
simulated logs, the simulator's config recorded at ingest. The raw logs are never reopened.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drpo_core.evaluation.scoring import HeldoutSample, OnlineSetting, PolicyScore, score_policy
from drpo_core.export import load_policy
from drpo_core.inference import load_run_policy, numpy_policy
from drpo_core.warehouse import open_warehouse
from drpo_core.warehouse.days import simulator_config
from drpo_core.warehouse.heldout import heldout_rows, item_catalogue
from flows.params import RunParameters
from flows.settings import db_path

OPE_ROWS = 20_000  # held-out rows of the off-policy estimate (a seeded sample)


@dataclass(frozen=True)
class Evaluation:
    challenger: PolicyScore
    champion: PolicyScore | None
    champion_version: int | None
    catalogue: HeldoutSample = field(repr=False)  # the held-out rows and the item catalogue

    def as_dict(self) -> dict[str, Any]:
        return {"challenger": self.challenger.as_dict(),
                "champion": self.champion.as_dict() if self.champion else None,
                "champion_version": self.champion_version}


def evaluate(logical_date: dt.date, run_dir: Path, params: RunParameters,
             champion: tuple[int, Path] | None = None) -> Evaluation:
    """Score the run's policy (and the champion's ``policy.pt``) on the logical date."""
    with open_warehouse(db_path(), read_only=True) as wh:
        heldout = HeldoutSample.from_tables(
            heldout_rows(wh, logical_date, OPE_ROWS, params.seed),
            item_catalogue(wh, logical_date))
        sim = simulator_config(wh, logical_date)
    online = OnlineSetting.from_metadata(sim, params.eval_users) if sim else None
    score = score_policy(numpy_policy(load_run_policy(run_dir)), heldout, online, params.seed)
    if champion is None:
        return Evaluation(score, None, None, heldout)
    version, path = champion
    champion_score = score_policy(numpy_policy(load_policy(path)), heldout, online,
                                  params.seed)
    return Evaluation(score, champion_score, version, heldout)
