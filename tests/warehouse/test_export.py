"""Export of the (filtered) window to tensors, and weighted sampling from it."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import torch

from drpo_core.data import load_training_data
from drpo_core.sim import LogSimulator, scenario_config
from drpo_core.trainer import TrainConfig, Trainer
from drpo_core.warehouse import open_warehouse
from drpo_core.warehouse.cvar_filter import cvar_filter
from drpo_core.warehouse.export import export_window
from drpo_core.warehouse.ingest import ingest_partition

DAY = dt.date(2026, 2, 1)


@pytest.fixture
def warehouse(tmp_path):
    logs = tmp_path / "logs"
    LogSimulator(scenario_config("medium", d=6, n_items=100, n_users=50)).write(
        logs, DAY, days=2, rows_per_day=700, progress=False)
    with open_warehouse(tmp_path / "wh.duckdb") as wh:
        for k in range(2):
            ingest_partition(wh, logs, DAY + dt.timedelta(days=k))
        yield wh, logs


def test_unfiltered_export_equals_the_logs_in_event_id_order(warehouse) -> None:
    wh, logs = warehouse
    data = export_window(wh, DAY, DAY + dt.timedelta(days=1), filtered=False, batch_rows=333)
    direct = load_training_data(logs)  # file order = (event_date, event_id) for the simulator
    assert data.n_rows == 1400 and data.state.shape == (1400, 6)
    torch.testing.assert_close(data.state, direct.state)
    torch.testing.assert_close(data.action, direct.action)
    torch.testing.assert_close(data.reward, direct.reward)
    assert torch.equal(data.weight, torch.ones(1400))


def test_filtered_export_keeps_the_top_kappa_rows_with_their_weights(warehouse) -> None:
    wh, _ = warehouse
    report = cvar_filter(wh, DAY, DAY, 0.2)
    data = export_window(wh, DAY, DAY)
    assert data.n_rows == report.rows_kept
    assert float(data.reward.min()) == pytest.approx(report.partitions[0].nu, rel=1e-6)
    assert float(data.weight.sum()) / 700 == pytest.approx(1.0)


def test_trainer_samples_rows_in_proportion_to_their_weight() -> None:
    n = 10
    data_weight = torch.tensor([0.0] * 5 + [1.0, 1.0, 1.0, 1.0, 5.0])
    from drpo_core.data import TrainingData

    data = TrainingData(torch.randn(n, 2), torch.randn(n, 2), torch.arange(n).float(),
                        torch.zeros(n), data_weight)
    trainer = Trainer(TrainConfig(algorithm="bc", steps=1, batch_size=20_000, log_every=1,
                                  checkpoint_every=1), data, progress=False)
    counts = np.bincount(trainer._batch().reward_all.long().numpy(), minlength=n) / 20_000
    expected = (data_weight / data_weight.sum()).numpy()
    assert np.abs(counts - expected).max() < 0.02
    assert counts[:5].sum() == 0
