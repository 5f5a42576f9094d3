"""The training sample drawn out of core: distribution, seed, ranks, dataset-level kappa."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import torch
from scipy import stats

from drpo_core.filtering import top_kappa_weights
from drpo_core.sim import LogSimulator, scenario_config
from drpo_core.trainer import TrainConfig, Trainer
from drpo_core.warehouse import open_warehouse
from drpo_core.warehouse.cvar_filter import cvar_filter
from drpo_core.warehouse.ingest import ingest_partition
from drpo_core.warehouse.sample import draw_training_sample, weigh_window, window_fingerprint

DAY = dt.date(2026, 2, 1)


@pytest.fixture
def warehouse(tmp_path):
    logs = tmp_path / "logs"
    LogSimulator(scenario_config("medium", d=6, n_items=100, n_users=50)).write(
        logs, DAY, days=2, rows_per_day=600, progress=False)
    with open_warehouse(tmp_path / "wh.duckdb") as wh:
        for k in range(2):
            ingest_partition(wh, logs, DAY + dt.timedelta(days=k))
        yield wh


def draw_counts(wh) -> dict[int, int]:
    """row_id -> times drawn, from the last draw's sample_draws."""
    return dict(wh.query("SELECT row_id, count(*) FROM sample_draws GROUP BY row_id"))


def chi_square_p(counts: dict[int, int], weights: dict[int, float]) -> float:
    rows = sorted(weights)
    w = np.array([weights[r] for r in rows])
    observed = np.array([counts.get(r, 0) for r in rows], dtype=float)
    expected = w / w.sum() * observed.sum()
    return float(stats.chisquare(observed, expected).pvalue)


def test_row_frequencies_follow_the_filter_weights(warehouse) -> None:
    wh = warehouse
    report = cvar_filter(wh, DAY, DAY, 0.3)  # 180 kept rows; the boundary row a fraction
    weights = dict(wh.query("SELECT row_id, weight FROM filter_weights"))
    assert len(weights) == report.rows_kept
    draw_training_sample(wh, DAY, DAY, steps=100, batch_size=200, seed=1)
    counts = draw_counts(wh)
    assert set(counts) <= set(weights)  # only kept rows are ever drawn
    assert sum(counts.values()) == 20_000
    assert chi_square_p(counts, weights) > 0.001
    # a frequency law that is off by a little is rejected by the same test
    skewed = {r: w * (1.5 if r % 2 else 1.0) for r, w in weights.items()}
    assert chi_square_p(counts, skewed) < 1e-6


def test_uniform_draw_of_the_unfiltered_window(warehouse) -> None:
    wh = warehouse
    draw_training_sample(wh, DAY, DAY + dt.timedelta(days=1), steps=60, batch_size=200,
                         seed=2, filtered=False)
    rows = dict(wh.query("SELECT rowid, 1.0::DOUBLE FROM interactions"))
    counts = draw_counts(wh)
    assert len(rows) == 1200 and set(counts) <= set(rows)
    assert chi_square_p(counts, rows) > 0.001


def test_dataset_kappa_equals_the_numpy_tie_rule_over_the_kept_rows(warehouse) -> None:
    wh = warehouse
    cvar_filter(wh, DAY, DAY, 0.5)
    rows = wh.query("SELECT f.row_id, f.weight, i.reward FROM filter_weights f "
                    "JOIN interactions i ON i.rowid = f.row_id ORDER BY f.row_id")
    row_id, weight, reward = (np.array(c) for c in zip(*rows, strict=True))
    tie = np.argsort(-reward, kind="stable")[19:26]  # descending ranks 20..26 tie at one value
    reward[tie] = reward[tie[0]]
    wh.con.execute("UPDATE interactions SET reward = $r WHERE rowid IN (SELECT unnest($ids))",
                   {"r": float(reward[tie[0]]), "ids": row_id[tie].tolist()})
    kappa = 22.5 / len(reward)  # the cut inside the tie: 19 rows above, 7 share 3.5
    mass = top_kappa_weights(reward, kappa)
    np.testing.assert_allclose(mass[tie], 0.5)
    assert mass.sum() == pytest.approx(22.5)
    expected = {int(r): float(w * m) for r, w, m in zip(row_id, weight, mass, strict=True)
                if m > 0}
    sample = draw_training_sample(wh, DAY, DAY, steps=100, batch_size=200, seed=3,
                                  dataset_kappa=kappa)
    counts = draw_counts(wh)
    assert set(counts) <= set(expected)
    assert chi_square_p(counts, expected) > 0.001
    cfg = TrainConfig(algorithm="filtered_bc", steps=10, batch_size=200, log_every=10,
                      checkpoint_every=10, objective={"kappa": kappa})
    assert cfg.dataset_kappa() == kappa
    Trainer(cfg, sample, progress=False).fit()  # drawn with the objective's kappa: accepted
    plain = draw_training_sample(wh, DAY, DAY, steps=10, batch_size=200, seed=3)
    with pytest.raises(ValueError, match=r"draw it with dataset_kappa="):
        Trainer(cfg, plain, progress=False)


def test_same_seed_same_sample_and_ranks_are_disjoint_parts_of_it(warehouse) -> None:
    wh = warehouse
    cvar_filter(wh, DAY, DAY + dt.timedelta(days=1), 0.2)
    end = DAY + dt.timedelta(days=1)
    one = draw_training_sample(wh, DAY, end, steps=8, batch_size=32, seed=7)
    again = draw_training_sample(wh, DAY, end, steps=8, batch_size=32, seed=7)
    other = draw_training_sample(wh, DAY, end, steps=8, batch_size=32, seed=8)
    assert torch.equal(one.state, again.state) and one.fingerprint() == again.fingerprint()
    longer = draw_training_sample(wh, DAY, end, steps=12, batch_size=32, seed=7)
    assert torch.equal(longer.state[: one.n_rows], one.state)  # more steps: same first draws
    assert longer.fingerprint() == one.fingerprint()  # so a resume with more steps continues
    assert not torch.equal(one.reward_all, other.reward_all)
    assert TrainConfig().dataset_kappa() is None
    assert one.fingerprint() != other.fingerprint()
    parts = [draw_training_sample(wh, DAY, end, steps=8, batch_size=32, seed=7, rank=r,
                                  world_size=4) for r in range(4)]
    for part in parts:
        assert part.n_rows == 8 * 8 and torch.equal(part.reward_all, one.reward_all)
        assert part.fingerprint() == one.fingerprint()  # one sample, one identity
    # rank r holds batch positions [8 r, 8 r + 8) of every step: together the one sample
    stacked = torch.stack([p.state.view(8, 8, 6) for p in parts], dim=1).reshape(-1, 6)
    assert torch.equal(stacked, one.state)


def test_a_drawn_run_holds_only_its_steps_and_refuses_new_rows(warehouse) -> None:
    wh = warehouse
    weigh_window(wh, DAY, DAY, 0.4)  # the read-only ranks' path: same weights, no lineage row
    assert wh.query("SELECT count(*) FROM filter_runs")[0][0] == 0
    sample = draw_training_sample(wh, DAY, DAY, steps=20, batch_size=16, seed=0)
    cfg = TrainConfig(steps=20, batch_size=16, log_every=10, checkpoint_every=10,
                      policy={"hidden": (16,)})
    trainer = Trainer(cfg, sample, progress=False)
    trainer.fit()
    assert trainer.step == 20
    trainer.config = cfg.model_copy(update={"steps": 30})
    with pytest.raises(ValueError, match="covers 20 steps of batch 16; steps=30"):
        trainer.fit()
    with pytest.raises(ValueError, match="cannot take new rows"):
        trainer.extend_data(sample)
    with pytest.raises(ValueError, match="drawn for batch_size 16"):
        Trainer(cfg.model_copy(update={"batch_size": 32}), sample, progress=False)


def test_window_fingerprint_follows_content_not_order(warehouse) -> None:
    wh = warehouse
    end = DAY + dt.timedelta(days=1)
    cvar_filter(wh, DAY, end, 0.3)
    first = window_fingerprint(wh, DAY, end)
    assert window_fingerprint(wh, DAY, end) == first
    assert window_fingerprint(wh, DAY, end, filtered=False) != first
    cvar_filter(wh, DAY, end, 0.31)
    assert window_fingerprint(wh, DAY, end) != first
    cvar_filter(wh, DAY, end, 0.3)
    assert window_fingerprint(wh, DAY, end) == first
    before = window_fingerprint(wh, DAY, end, filtered=False)
    wh.con.execute("UPDATE interactions SET reward = reward + 1e-9 WHERE rowid = 0")
    assert window_fingerprint(wh, DAY, end, filtered=False) != before
