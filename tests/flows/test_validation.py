"""The Great Expectations gate on a real DuckDB file and a real file-backed GX project."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from drpo_core.sim import LogSimulator, scenario_config
from drpo_core.warehouse import open_warehouse
from drpo_core.warehouse.ingest import ingest_partition
from flows.validation import ValidationConfig, validate_day

DAY = dt.date(2026, 2, 1)


@pytest.fixture
def setup(tmp_path):
    logs = tmp_path / "logs"
    LogSimulator(scenario_config("medium", d=4, n_items=100, n_users=50)).write(
        logs, DAY - dt.timedelta(days=2), days=3, rows_per_day=400, progress=False)
    return tmp_path, logs


def run(tmp_path, wh, config=ValidationConfig()):
    return validate_day(wh, DAY, config, tmp_path / "gx", tmp_path / "validation")


def test_a_clean_day_passes_and_is_recorded(setup) -> None:
    tmp_path, logs = setup
    with open_warehouse(tmp_path / "wh.duckdb") as wh:
        for k in (2, 1, 0):
            ingest_partition(wh, logs, DAY - dt.timedelta(days=k))
        outcome = run(tmp_path, wh)
        assert outcome.success and outcome.critical_failures == []
        stored = wh.query("SELECT success, result FROM validation_runs")
        assert stored[0][0] is True
        statistics = json.loads(stored[0][1])["statistics"]
        assert statistics["rows_kept"] == 400 and statistics["days_trailing"] == 2
        assert statistics["volume_ratio"] == pytest.approx(1.0)
        # the simulator logs exact propensities of a full-support mixture: E_b[1/(n p_b)] ~ 1
        assert 0.8 < statistics["propensity_calibration"] < 1.2
    assert json.loads(outcome.result_path.read_text())["success"] is True
    assert outcome.data_docs is not None and outcome.data_docs.exists()
    assert outcome.data_docs.parent.parent.name == f"interactions_day-{DAY.isoformat()}"
    assert DAY.isoformat() in outcome.data_docs.read_text()


def test_critical_failures_fail_the_day_and_name_the_expectation(setup) -> None:
    tmp_path, logs = setup
    path = logs / f"event_date={DAY.isoformat()}" / "part-0.parquet"
    table = pq.read_table(path)
    rewards = table.column("reward").to_pylist()
    rewards[:40] = [float("nan")] * 40  # 10 % of the day is quarantined
    table = table.set_column(table.schema.get_field_index("reward"), "reward",
                             pa.array(rewards, pa.float64()))
    pq.write_table(table, path)
    with open_warehouse(tmp_path / "wh.duckdb") as wh:
        ingest_partition(wh, logs, DAY)
        outcome = run(tmp_path, wh, ValidationConfig(max_rows=100))
        assert not outcome.success
        failed = " ".join(outcome.critical_failures)
        assert '"column": "rows_kept"' in failed and "observed [360]" in failed
        assert '"column": "quarantine_share"' in failed and "observed [0.1]" in failed
        assert wh.query("SELECT success FROM validation_runs") == [(False,)]


def test_reward_drift_is_a_warning_not_a_failure(setup) -> None:
    tmp_path, logs = setup
    path = logs / f"event_date={DAY.isoformat()}" / "part-0.parquet"
    table = pq.read_table(path)
    shifted = [3.0 * r for r in table.column("reward").to_pylist()]
    pq.write_table(table.set_column(table.schema.get_field_index("reward"), "reward",
                                    pa.array(shifted, pa.float64())), path)
    with open_warehouse(tmp_path / "wh.duckdb") as wh:
        for k in (2, 1, 0):
            ingest_partition(wh, logs, DAY - dt.timedelta(days=k))
        outcome = run(tmp_path, wh)
        assert outcome.success
        assert any("reward_p50_drift" in w for w in outcome.warnings)


def test_a_reward_above_its_declared_maximum_fails_the_day(setup) -> None:
    tmp_path, logs = setup
    with open_warehouse(tmp_path / "wh.duckdb") as wh:
        ingest_partition(wh, logs, DAY)
        top = wh.query("SELECT max(reward) FROM interactions")[0][0]
        outcome = run(tmp_path, wh, ValidationConfig(reward_max=top / 2))
    assert not outcome.success
    assert any('"column": "reward_max"' in c for c in outcome.critical_failures)
