"""Real parts for flow tests: a temporary Prefect API, an MLflow SQLite store, DuckDB files."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import pytest

from drpo_core.sim import LogSimulator, scenario_config

FIRST_DAY = dt.date(2026, 1, 1)
SMALL_WORLD = {"d": 8, "n_items": 200, "n_users": 300}


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory: pytest.TempPathFactory):
    """One temporary Prefect server for the session (about 10 s to start)."""
    home = tmp_path_factory.mktemp("prefect_home")
    os.environ["PREFECT_HOME"] = str(home)
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow SQLite store with migrations applied once; copied into each test's home."""
    home = tmp_path_factory.mktemp("mlflow_template")
    old = os.environ.get("DRPO_HOME")
    os.environ["DRPO_HOME"] = str(home)
    try:
        from flows import registry

        registry.configure()
    finally:
        if old is None:
            os.environ.pop("DRPO_HOME", None)
        else:
            os.environ["DRPO_HOME"] = old
    return home / "mlflow.db"


@pytest.fixture
def home(mlflow_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh DRPO_HOME with a migrated MLflow store and simulated logs of 3 days."""
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(mlflow_template, home / "mlflow.db")
    monkeypatch.setenv("DRPO_HOME", str(home))
    LogSimulator(scenario_config("medium", **SMALL_WORLD)).write(
        home / "logs" / "live", FIRST_DAY, days=3, rows_per_day=1500, progress=False)
    return home


@pytest.fixture
def client(mlflow_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """An MLflow client on a fresh DRPO_HOME with a migrated store (no logs)."""
    from flows import registry

    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(mlflow_template, home / "mlflow.db")
    monkeypatch.setenv("DRPO_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return registry.configure()
