"""Where the embedded defaults live: everything under ``$DRPO_HOME`` (default ``./.drpo``).

| setting | environment variable | default |
|---|---|---|
| data directory | ``DRPO_HOME`` | ``./.drpo`` |
| DuckDB file | ``DRPO_DB`` | ``$DRPO_HOME/warehouse.duckdb`` |
| log root (ingest refuses paths outside it) | ``DRPO_LOG_ROOT`` | none: any path |
| logs the flows read by default | ``DRPO_LOGS`` | ``$DRPO_HOME/logs/live`` |
| Prefect home (ephemeral API, results) | ``PREFECT_HOME`` | ``$DRPO_HOME/prefect`` |
| MLflow tracking and registry | ``MLFLOW_TRACKING_URI`` | ``sqlite:///$DRPO_HOME/mlflow.db`` |
| Great Expectations project | | ``$DRPO_HOME/gx`` |
| validation results | | ``$DRPO_HOME/validation`` |
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_HOME = ".drpo"


def drpo_home() -> Path:
    """The project's data directory: DuckDB file, logs, MLflow store, Prefect home, outputs."""
    return Path(os.environ.get("DRPO_HOME", DEFAULT_HOME)).resolve()


def db_path() -> Path:
    return Path(os.environ.get("DRPO_DB", drpo_home() / "warehouse.duckdb")).resolve()


def log_root() -> Path | None:
    root = os.environ.get("DRPO_LOG_ROOT")
    return Path(root).resolve() if root else None


def gx_root() -> Path:
    return drpo_home() / "gx"


def validation_dir() -> Path:
    return drpo_home() / "validation"


def logs_dir() -> Path:
    return Path(os.environ.get("DRPO_LOGS", drpo_home() / "logs" / "live")).resolve()


def embedded_environment() -> None:
    """Defaults for running flows in-process: Prefect's home under DRPO_HOME, telemetry off."""
    home = drpo_home()
    os.environ.setdefault("PREFECT_HOME", str(home / "prefect"))
    Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(home / "inductor"))
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
