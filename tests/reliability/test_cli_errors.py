"""Every error path of the installed ``drpo`` command: one ``error:`` line on stderr, a non-zero
exit, no traceback, and nothing written where the command was refused."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from drpo_core.sim import LogSimulator, scenario_config

DRPO = str(Path(sys.executable).parent / "drpo")
DAY = dt.date(2026, 1, 1)


def drpo(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("DRPO_", "MLFLOW"))}
    environment |= {"DRPO_HOME": str(home), "PREFECT_HOME": str(home / "prefect")} | env
    environment.pop("PREFECT_API_URL", None)
    return subprocess.run([DRPO, *args], capture_output=True, text=True, env=environment,
                          timeout=300, cwd=home.parent)


def assert_one_error_line(result: subprocess.CompletedProcess, *expected: str) -> str:
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    for text in expected:
        assert text in errors[0], errors[0]
    return errors[0]


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("logs")
    LogSimulator(scenario_config("medium", d=4, n_items=60, n_users=40)).write(
        out, DAY, days=2, rows_per_day=200, progress=False)
    return out


@pytest.mark.parametrize(("args", "expected"), [
    (["run", "--algorithm", "nope"], ["'nope' is not one of"]),
    (["run", "--kappa", "1.5"], ["kappa"]),
    (["nope"], ["No such command 'nope'"]),
    (["filter", "--start", "2026-01-01", "--end", "2026-01-02"], ["2026-01-01"]),
    (["ingest", "--logs", "missing", "--date", "2026-01-01"], ["missing"]),
    (["promote", "--version", "999"], ["999"]),
    (["rollback"], ["no champion"]),
    (["champion"], ["no champion"]),
])
@pytest.mark.reliability(
    kind="bad input",
    case="`drpo {args}` on a fresh home",
    outcome="exit non-zero, one `error:` line containing: {expected}",
    guards=("cli",),
)
def test_bad_input_on_a_fresh_home(tmp_path: Path, args: list[str], expected: list[str]
                                   ) -> None:
    assert_one_error_line(drpo(tmp_path / "home", *args), *expected)


@pytest.mark.parametrize("kind", ["folder", "text file"])
@pytest.mark.reliability(
    kind="bad input",
    case="`drpo validate --db` pointing at a {kind}",
    outcome="one `error:` line naming the path; the path left as it was",
    guards=("cli",),
)
def test_a_db_path_that_is_not_a_duckdb_file(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "not-a-db"
    if kind == "folder":
        target.mkdir()
    else:
        target.write_text("hello\n")
    result = drpo(tmp_path / "home", "validate", "--date", "2026-01-01", "--db", str(target))
    assert_one_error_line(result, str(target))
    assert (target.is_dir() if kind == "folder" else target.read_text() == "hello\n")


@pytest.mark.reliability(
    kind="fault",
    case="`drpo champion` with MLflow unreachable and a password in MLFLOW_TRACKING_URI",
    outcome="one `error:` line naming the server within 60 s; the password printed nowhere",
    guards=("cli",),
)
def test_an_unreachable_mlflow_fails_fast_and_masks_its_password(tmp_path: Path) -> None:
    started = time.monotonic()
    result = drpo(tmp_path / "home", "champion",
                  MLFLOW_TRACKING_URI="http://drpo:s3cret@127.0.0.1:9")
    line = assert_one_error_line(result)
    assert time.monotonic() - started < 60
    assert "s3cret" not in result.stderr + result.stdout and "127.0.0.1:9" in line


@pytest.mark.reliability(
    kind="bad input",
    case="`drpo run` on the first day of data (empty window), and `--missing-days refuse` over a "
         "window with a day without logs",
    outcome="one `error:` line naming the empty window's day, then one naming the missing day",
    guards=("cli",),
)
def test_a_run_on_the_first_day_of_data_and_a_failed_validation(tmp_path: Path, logs: Path
                                                               ) -> None:
    home = tmp_path / "home"
    first = drpo(home, "run", "--date", DAY.isoformat(), "--logs", str(logs),
                 "--train-steps", "20", "--window-days", "1")
    assert_one_error_line(first, "2025-12-31")  # the window before the data is empty
    strict = drpo(home, "run", "--date", (DAY + dt.timedelta(days=1)).isoformat(), "--logs",
                  str(logs), "--train-steps", "20", "--window-days", "2",
                  "--missing-days", "refuse")
    assert_one_error_line(strict, "days without logs: 2025-12-31")
