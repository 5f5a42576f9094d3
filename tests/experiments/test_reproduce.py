"""The reproduction study's runner: every part produces its tables, figures and JSON."""

from __future__ import annotations

import json

import pytest

from drpo_core.experiments import table1
from drpo_core.experiments.runner import reproduce
from drpo_core.experiments.study import StudySize, mean_ci

TINY = StudySize(seeds=2, rows=1500, steps=60, eval_users=100, d=8, n_items=200)


def test_runner_writes_table1_and_rq1(tmp_path) -> None:
    result = reproduce(tmp_path, size=TINY)
    rows = result["table1"]
    assert len(rows) == 2 * len(table1.ALGORITHMS)
    assert {(r["scenario"], r["algorithm"]) for r in rows} == {
        (s, a) for s in ("medium", "extreme") for a in table1.ALGORITHMS}
    assert all(r["seeds"] == 2 and r["reward_ci"] >= 0 for r in rows)
    iql = next(r for r in rows if r["algorithm"] == "iql")
    assert iql["params"] in table1.GRIDS["iql"]  # chosen from the App. I grid
    assert len(result["rq1"]["records"]) > 3
    assert (tmp_path / "fig2_phantom_gradients.png").stat().st_size > 10_000
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["table1"] == json.loads(json.dumps(rows))
    assert "| medium | drpo |" in (tmp_path / "tables.md").read_text()


def test_unknown_part_and_confidence_interval() -> None:
    with pytest.raises(ValueError, match="unknown study part"):
        reproduce(__import__("pathlib").Path("/nonexistent"), only=["fig9"])
    mean, half = mean_ci([1.0, 2.0, 3.0])
    assert mean == 2.0 and half == pytest.approx(4.303 * 1.0 / 3**0.5)
