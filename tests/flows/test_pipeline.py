"""End to end: Prefect flows on a temporary API, a real MLflow SQLite store, a DuckDB file."""

from __future__ import annotations

import asyncio
import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flows import pipeline, registry
from flows.jobs.data import ValidationFailedError
from flows.jobs.window import WindowRefusedError
from flows.params import RunParameters, backfill_dates
from tests.flows.conftest import FIRST_DAY

DAY2, DAY3 = FIRST_DAY + dt.timedelta(days=1), FIRST_DAY + dt.timedelta(days=2)
FAST = RunParameters(train_steps=200, batch_size=64, eval_users=300, window_days=2)


def fast(**changes) -> RunParameters:
    return RunParameters.model_validate(FAST.model_dump() | changes)


def versions(client) -> dict[int, dict[str, str]]:
    return {int(v.version): v.tags for v in
            client.search_model_versions(f"name = '{registry.MODEL_NAME}'")}


def versions_run_id(client, version: int) -> str:
    return client.get_model_version(registry.MODEL_NAME, str(version)).run_id


def alias(client, name: str) -> int | None:
    mv = registry.alias_version(client, name)
    return None if mv is None else int(mv.version)


def test_backfill_then_nightly_registers_versions_with_aliases_and_tags(prefect_api, home):
    first = pipeline.backfill(start=FIRST_DAY, end=DAY2, retrain="last", params=FAST)
    assert first["days"] == 2 and first["rows"] == 3000
    assert first["retrained"][0]["gate"]["promoted"]  # the first healthy version: champion
    client = registry.configure()
    assert alias(client, "champion") == 1 and alias(client, "challenger") == 1

    # a minimum gain no policy reaches: the gate's outcome is known in advance
    night = pipeline.nightly_retrain(logical_date=DAY3, params=fast(min_gain=1.0))
    assert night["version"] == 2 and night["created"]
    assert not night["gate"]["promoted"] and "does not beat" in night["gate"]["reason"]
    tags = versions(client)[2]
    assert tags["logical_date"] == "2026-01-03"
    assert tags["window"] == "2026-01-01..2026-01-02"
    assert tags["kappa"] == "1.0" and tags["validation"] == "passed"
    assert tags["quality"] == "reward" and tags["gamma"] == "0.0"
    assert len(tags["data_hash"]) == 16 and len(tags["sql_hash"]) == 16 and tags["git_sha"]
    assert float(tags["eval.online_mean_reward"]) > 0
    assert alias(client, "challenger") == 2
    assert alias(client, "champion") == 1

    # same date, data and training config: the run and its version are reused
    again = pipeline.nightly_retrain(logical_date=DAY3, params=fast(min_gain=1.0))
    assert again["version"] == 2 and not again["created"]
    assert sorted(versions(client)) == [1, 2]
    history = client.get_metric_history(versions_run_id(client, 2), "losses/total")
    assert [int(m.step) for m in history] == [100, 200]  # every logged step, batched

    registry.promote(client, 2, reason="test")
    registry.promote(client, 1, reason="test")
    assert alias(client, "champion") == 1
    assert registry.rollback(client) == (1, 2)
    assert alias(client, "champion") == 2

    # another quality signal is another run: the SQL filter ranks the per-user advantage, the
    # trainer the critic's (gamma > 0: episode links exported), both on the version's tags
    learned = pipeline.nightly_retrain(logical_date=DAY3, params=fast(
        min_gain=1.0, quality="advantage", gamma=0.9, kappa=0.5))
    assert learned["version"] == 3 and learned["created"]
    tags = versions(client)[3]
    assert (tags["quality"], tags["gamma"], tags["kappa"]) == ("advantage", "0.9", "0.5")
    assert tags["data_hash"] != versions(client)[2]["data_hash"]


def test_gate_keeps_a_worse_challenger_and_never_promotes_a_collapsed_one(prefect_api, home):
    pipeline.backfill(start=FIRST_DAY, end=DAY2, retrain="last", params=FAST)
    client = registry.configure()
    assert alias(client, "champion") == 1
    worse = pipeline.nightly_retrain(logical_date=DAY3, params=fast(train_steps=5))
    assert not worse["gate"]["promoted"] and "does not beat" in worse["gate"]["reason"]
    collapsed = pipeline.nightly_retrain(
        logical_date=DAY3, params=fast(algorithm="apg", train_steps=4000))
    assert not collapsed["gate"]["promoted"]
    assert "unhealthy" in collapsed["gate"]["reason"]
    assert alias(client, "champion") == 1
    assert alias(client, "challenger") == worse["version"]  # unhealthy: no challenger alias


def test_validation_failure_stops_before_training_and_moves_no_alias(prefect_api, home):
    pipeline.backfill(start=FIRST_DAY, end=DAY2, retrain="last", params=FAST)
    path = home / "logs" / "live" / f"event_date={DAY3.isoformat()}" / "part-0.parquet"
    table = pq.read_table(path)
    rewards = table.column("reward").to_pylist()
    rewards[:300] = [float("nan")] * 300  # 20 % of the day is quarantined
    pq.write_table(table.set_column(table.schema.get_field_index("reward"), "reward",
                                    pa.array(rewards, pa.float64())), path)
    with pytest.raises(ValidationFailedError, match="quarantine_share"):
        pipeline.nightly_retrain(logical_date=DAY3, params=FAST)
    client = registry.configure()
    assert sorted(versions(client)) == [1]
    assert alias(client, "champion") == 1
    assert not (home / "runs" / DAY3.isoformat()).exists()


def corrupt_rewards(home, day: dt.date, rows: int = 300) -> None:
    """Make ``rows`` rewards of the day NaN: ingest quarantines them, validation fails."""
    path = home / "logs" / "live" / f"event_date={day.isoformat()}" / "part-0.parquet"
    table = pq.read_table(path)
    rewards = table.column("reward").to_pylist()
    rewards[:rows] = [float("nan")] * rows
    pq.write_table(table.set_column(table.schema.get_field_index("reward"), "reward",
                                    pa.array(rewards, pa.float64())), path)


def test_a_window_day_that_failed_validation_is_not_trained_on(prefect_api, home):
    corrupt_rewards(home, DAY2)
    with pytest.raises(ValidationFailedError, match="2026-01-02"):
        pipeline.backfill(start=FIRST_DAY, end=DAY2, retrain="none", params=FAST)
    with pytest.raises(WindowRefusedError, match="did not pass validation: 2026-01-02"):
        pipeline.nightly_retrain(logical_date=DAY3, params=FAST)
    assert not (home / "runs" / DAY3.isoformat()).exists()
    client = registry.configure()
    assert versions(client) == {}
    run = pipeline.nightly_retrain(logical_date=DAY3, params=fast(allow_unvalidated=True))
    tags = versions(client)[run["version"]]
    assert tags["validation"] == "overridden"
    assert tags["window_unvalidated_days"] == "2026-01-02"
    assert tags["window_coverage"] == "2/2" and tags["window_missing_days"] == "none"


async def task_run_counts(flow_run_name: str) -> dict[str, int]:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        # the session's API holds earlier tests' runs of the same name: take the newest
        run = max((r for r in await client.read_flow_runs() if r.name == flow_run_name),
                  key=lambda r: r.created)
        tasks = await client.read_task_runs()
        return {t.name.rsplit("-", 1)[0]: t.run_count for t in tasks
                if t.flow_run_id == run.id}


def test_mlflow_steps_retry_transient_errors_but_not_an_unreachable_server() -> None:
    from prefect.states import Failed

    assert pipeline.transient(None, None, Failed(data=RuntimeError("409: conflict")))
    assert not pipeline.transient(None, None,
                                  Failed(data=registry.RegistryUnavailableError("down")))


def test_unreachable_mlflow_fails_once_and_a_rerun_registers_once(prefect_api, home,
                                                                   monkeypatch):
    pipeline.backfill(start=FIRST_DAY, end=DAY2, retrain="none", params=FAST)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://u:secret@127.0.0.1:9")  # nothing there
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    with pytest.raises(registry.RegistryUnavailableError, match=r"127\.0\.0\.1:9") as err:
        pipeline.nightly_retrain(logical_date=DAY3, params=FAST)
    assert "secret" not in str(err.value)
    counts = asyncio.run(task_run_counts(f"nightly-{DAY3.isoformat()}"))
    assert counts["evaluate"] == 1  # no Prefect retries on top of MLflow's own bound
    assert "register" not in counts
    runs = list((home / "runs" / DAY3.isoformat()).iterdir())
    assert len(runs) == 1 and (runs[0] / "policy.pt").exists()  # the local run survives
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    result = pipeline.nightly_retrain(logical_date=DAY3, params=FAST)
    assert result["version"] == 1 and result["created"]
    assert sorted(versions(registry.configure())) == [1]


@pytest.mark.parametrize(("start", "end", "message"), [
    (DAY2, FIRST_DAY, "is after its end"),
    (FIRST_DAY, dt.date(2999, 1, 1), "is not in the past"),
])
def test_backfill_range_is_checked(start, end, message) -> None:
    with pytest.raises(ValueError, match=message):
        backfill_dates(start, end)


def test_each_drpo_home_gets_its_own_mlflow_store(tmp_path, monkeypatch) -> None:
    """mlflow.set_tracking_uri writes MLFLOW_TRACKING_URI; a later home must not inherit it."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    for name in ("a", "b"):
        monkeypatch.setenv("DRPO_HOME", str(tmp_path / name))
        registry.configure()
        assert registry.tracking_uri() == f"sqlite:///{tmp_path / name / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5055")
    assert registry.tracking_uri() == "http://127.0.0.1:5055"  # a user's setting wins
