"""The drpo command line: one-line errors with exit code 2, nothing half-written."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from flows.cli import app

runner = CliRunner()


def drpo(*args: str):
    return runner.invoke(app, list(args))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scenario", "noisy"], "unknown scenario 'noisy'; allowed: extreme, medium"),
        (["--mixture", "0.5,0.5,0.5"], "must sum to 1"),
        (["--mixture", "0.5,0.5"], "mixture: expected three comma-separated shares"),
        (["--days", "0"], "days must be positive"),
        (["--rows-per-day", "-5"], "rows_per_day must be positive"),
        (["--set", "n_items=0"], "n_items: Input should be greater than 1"),
        (["--set", "colour=red"], "colour: Extra inputs are not permitted"),
        (["--start-date", "2026-13-01"], "start_date: expected a date YYYY-MM-DD"),
    ],
)
def test_simulate_bad_input(tmp_path, args: list[str], message: str) -> None:
    result = drpo("lab", "simulate", "--out", str(tmp_path / "out"), *args)
    assert result.exit_code == 2
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_simulate_train_evaluate_end_to_end(tmp_path) -> None:
    logs, run = tmp_path / "logs", tmp_path / "run"
    r = drpo("simulate", "--out", str(logs), "--days", "2", "--rows-per-day", "3000",
             "--set", "d=10", "--set", "n_items=500", "--no-progress")
    assert r.exit_code == 0, r.output
    assert "6,000 rows, 2 days 2026-01-01..2026-01-02" in r.output
    r = drpo("train", "--data", str(logs), "--output", str(run), "--steps", "200",
             "--batch-size", "64", "--no-progress")
    assert r.exit_code == 0, r.output
    assert (run / "policy.pt").exists()
    r = drpo("evaluate", "--policy", str(run / "policy.pt"), "--logs", str(logs),
             "--n-users", "300", "--output", str(run / "eval.json"))
    assert r.exit_code == 0, r.output
    metrics = json.loads((run / "eval.json").read_text())
    assert metrics["n_users"] == 300 and 0 < metrics["score"] <= 100
    # a policy for d=10 states in a world of other dimensions is a clear error
    r = drpo("lab", "evaluate", "--policy", str(run / "policy.pt"), "--scenario", "medium",
             "--n-users", "20")
    assert r.exit_code == 2 and "does not accept states of shape (20, " in r.output


def test_train_bad_input(tmp_path) -> None:
    r = drpo("train", "--data", str(tmp_path / "missing"), "--output", str(tmp_path / "o"))
    assert r.exit_code == 2 and "does not exist" in r.output
    r = drpo("train", "--data", str(tmp_path), "--output", str(tmp_path / "o"),
             "--algorithm", "ppo")
    assert r.exit_code == 2 and "valid: drpo, drpo_exp, adaptive_bc" in r.output
    assert not (tmp_path / "o").exists()


def test_ingest_validate_filter_commands(tmp_path) -> None:
    logs, db = tmp_path / "logs", tmp_path / "wh.duckdb"
    assert drpo("simulate", "--out", str(logs), "--days", "2", "--rows-per-day", "500",
                "--set", "d=4", "--set", "n_items=100", "--no-progress").exit_code == 0
    for day in ("2026-01-01", "2026-01-02"):
        r = drpo("ingest", "--logs", str(logs), "--date", day, "--db", str(db))
        assert r.exit_code == 0 and "500 rows read, 500 kept, 0 quarantined" in r.output
    r = drpo("ingest", "--logs", str(logs), "--date", "2026-01-01", "--db", str(db))
    assert "unchanged since its last ingest, skipped" in r.output
    r = drpo("validate", "--date", "2026-01-02", "--db", str(db))
    assert r.exit_code == 0 and "2026-01-02: passed" in r.output
    r = drpo("filter", "--start", "2026-01-01", "--end", "2026-01-02", "--kappa", "0.2",
             "--partition-by", "event_date", "--db", str(db))
    assert r.exit_code == 0 and "200 of 1,000 rows" in r.output
    r = drpo("filter", "--start", "2026-01-02", "--end", "2026-01-01", "--db", str(db))
    assert r.exit_code == 2 and "after its end" in r.output
    r = drpo("ingest", "--logs", str(logs), "--date", "2026-01-09", "--db", str(db))
    assert r.exit_code == 2 and "no partition folder" in r.output


@pytest.mark.parametrize(("args", "message"), [
    (["run", "--date", "2026-01-02", "--kappa", "2"], "kappa: Input should be less than or "
                                                      "equal to 1"),
    (["run", "--date", "2026-01-02", "--window-days", "0"], "window_days: Input should be "
                                                            "greater than 0"),
    (["run", "--date", "2026-02-30"], "date: expected a date YYYY-MM-DD"),
    (["backfill", "--start", "2026-01-05", "--end", "2026-01-01"], "is after its end"),
    (["backfill", "--start", "2026-01-01", "--end", "2999-01-01"], "is not in the past"),
    (["run", "--config", "params.yaml"], "params.yaml: algorithm: Input should be"),
    (["run", "--config", "missing.toml"], "config file missing.toml does not exist"),
])
def test_bad_run_parameters_are_refused_before_anything_is_written(
        tmp_path, monkeypatch, args: list[str], message: str) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DRPO_HOME", str(tmp_path / "home"))
    (tmp_path / "params.yaml").write_text("algorithm: nope\nkappa: 0.5\n")
    r = drpo(*args)
    assert r.exit_code == 2, r.output
    assert r.output.strip().splitlines() == [f"error: {r.output.strip()[7:]}"]
    assert message in r.output
    assert not (tmp_path / "home").exists()  # no warehouse, MLflow store or Prefect home


def test_an_unknown_algorithm_is_refused_by_the_option_itself(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DRPO_HOME", str(tmp_path / "home"))
    r = drpo("run", "--algorithm", "nope")
    assert r.exit_code == 2 and "'nope' is not one of" in r.output and "drpo_exp" in r.output
    assert not (tmp_path / "home").exists()


def test_run_parameter_options_come_from_the_one_parameter_model() -> None:
    import typer.main

    from flows.params import RunParameters

    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    for command in ("run", "backfill"):
        options = {opt for p in commands[command].params for opt in p.opts}
        for name in RunParameters.model_fields:
            assert "--" + name.replace("_", "-") in options, (command, name)


@pytest.mark.parametrize(("column", "row"), [("reward", 17), ("state", 5)])
def test_train_on_a_non_finite_value_names_file_row_and_column(tmp_path, column, row) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    logs = tmp_path / "logs"
    assert drpo("lab", "simulate", "--out", str(logs), "--days", "2", "--rows-per-day", "300",
                "--set", "d=4", "--set", "n_items=50", "--no-progress").exit_code == 0
    path = logs / "event_date=2026-01-02" / "part-0.parquet"
    table = pq.read_table(path)
    values = table.column(column).to_pylist()
    values[row] = (float("nan") if column == "reward"
                   else [values[row][0], float("inf"), *values[row][2:]])
    index = table.schema.get_field_index(column)
    field = table.schema.field(index)
    pq.write_table(table.set_column(index, field, pa.array(values, field.type)), path)
    r = drpo("lab", "train", "--data", str(logs), "--output", str(tmp_path / "run"),
             "--steps", "20", "--no-progress")
    assert r.exit_code == 2
    assert r.output.strip() == (f"error: {path}: row {row}, column {column}: a NaN or inf "
                                "value; training needs finite values (drpo ingest "
                                "quarantines such rows)")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("sessions", "runs"), [
    ("bandit", (("advantage", "0.9"), ("q", "0"))),      # one-step sessions: done = 1 everywhere
    ("sequential", (("advantage", "0.9"), ("q", "0.9"))),
])
def test_train_with_a_learned_quality_on_any_contract_logs(
        tmp_path, sessions: str, runs: tuple[tuple[str, str], ...]) -> None:
    """`--quality advantage` and `--quality q` train on one-step logs (the bandit case) and on
    multi-step sessions (gamma > 0 exports next_state/done from the episode links)."""
    logs = tmp_path / "logs"
    r = drpo("lab", "simulate", "--out", str(logs), "--days", "1", "--rows-per-day", "1500",
             "--set", "d=8", "--set", "n_items=200", "--set", f"sessions={sessions}",
             "--no-progress")
    assert r.exit_code == 0, r.output
    for quality, gamma in runs:
        run = tmp_path / f"run-{quality}-{gamma}"
        r = drpo("lab", "train", "--data", str(logs), "--output", str(run), "--steps", "30",
                 "--batch-size", "64", "--quality", quality, "--gamma", gamma, "--no-progress")
        assert r.exit_code == 0, r.output
        assert "critic/loss" in r.output and "nan" not in r.output.lower()
        saved = json.loads((run / "config.json").read_text())
        assert saved["objective"]["quality"] == quality
        assert saved["objective"]["gamma"] == float(gamma)
    r = drpo("lab", "train", "--data", str(logs), "--output", str(tmp_path / "bad"),
             "--quality", "clicks", "--no-progress")
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1
    assert "quality" in r.output and not (tmp_path / "bad").exists()
