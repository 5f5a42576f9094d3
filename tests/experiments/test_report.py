"""docs/reproduction.md is what the report generator makes from the committed results.json,
and a small run of the study produces tables of the same shape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drpo_core.experiments.report import render
from drpo_core.experiments.runner import PARTS, reproduce
from drpo_core.experiments.study import StudySize

DOCS = Path(__file__).resolve().parents[2] / "docs"
FOLDER = DOCS / "reproduction"
KEYS = {"table1": ("scenario", "algorithm"), "noise": ("algorithm", "noise_ratio"),
        "ablation": ("variant",), "fixed_ratios": ("policy_noise", "reward_noise", "keep_share"),
        "online": ("algorithm",), "kappa_sweep": ("scenario", "kappa")}

pytestmark = pytest.mark.skipif(not (FOLDER / "results.json").exists(),
                                reason="the full study's results are not committed yet")


def committed() -> dict:
    return json.loads((FOLDER / "results.json").read_text())


def test_document_is_generated_from_the_committed_results() -> None:
    discussion = (FOLDER / "discussion.md").read_text()
    assert (DOCS / "reproduction.md").read_text() == render(committed(), discussion,
                                                            "docs/reproduction")


def test_a_small_run_has_the_same_tables(tmp_path) -> None:
    full = committed()
    assert set(PARTS) <= set(full)
    tiny = StudySize(seeds=2, rows=600, steps=20, eval_users=40, d=8, n_items=100)
    small = reproduce(tmp_path, size=tiny, only=["table1", "ablation", "kappa_sweep"])
    for part in ("table1", "ablation", "kappa_sweep"):
        shape = {tuple(r[k] for k in KEYS[part]) for r in small[part]}
        assert shape == {tuple(r[k] for k in KEYS[part]) for r in full[part]}, part
