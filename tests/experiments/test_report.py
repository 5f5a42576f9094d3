"""docs/reproduction.md is what the report generator makes from the committed results.json,
and a small run of the study produces tables of the same shape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drpo_core.experiments.report import render
from drpo_core.experiments.runner import PARTS, reproduce

DOCS = Path(__file__).resolve().parents[2] / "docs"
FOLDER = DOCS / "reproduction"
KEYS = {"table1": ("scenario", "algorithm"), "noise": ("algorithm", "noise_ratio"),
        "ablation": ("variant",), "fixed_ratios": ("policy_noise", "reward_noise", "keep_share"),
        "online": ("algorithm",), "kappa_sweep": ("scenario", "kappa")}
INVESTIGATION_KEYS = {"tail_purity": ("scenario", "reward_noise"),
                      "reward_noise": ("reward_noise", "algorithm"),
                      "long_training": ("algorithm",),
                      "awr_temperature": ("temperature", "noise_ratio")}

pytestmark = pytest.mark.skipif(not (FOLDER / "results.json").exists(),
                                reason="the full study's results are not committed yet")


def committed() -> dict:
    return json.loads((FOLDER / "results.json").read_text())


def test_document_is_generated_from_the_committed_results() -> None:
    discussion = (FOLDER / "discussion.md").read_text()
    assert (DOCS / "reproduction.md").read_text() == render(committed(), discussion,
                                                            "docs/reproduction")


def shape(rows: list[dict], keys: tuple[str, ...]) -> set[tuple]:
    return {tuple(r[k] for k in keys) for r in rows}


def test_quick_study_has_the_same_tables(tmp_path) -> None:
    """``drpo reproduce --quick`` (what CI runs, every part) makes the committed tables."""
    full = committed()
    assert set(PARTS) <= set(full)
    small = reproduce(tmp_path, quick=True)
    for part, keys in KEYS.items():
        assert shape(small[part], keys) == shape(full[part], keys), part
    for name, keys in INVESTIGATION_KEYS.items():
        assert shape(small["investigation"][name], keys) == shape(
            full["investigation"][name], keys), name
    assert len(small["rq1"]["records"]) > 3
    for name in ("fig2_phantom_gradients.png",):
        assert (tmp_path / name).stat().st_size > 10_000
