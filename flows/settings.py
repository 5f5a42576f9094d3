"""Where the embedded defaults live: everything under ``$DRPO_HOME`` (default ``./.drpo``).

Read from the environment by pydantic-settings each time they are asked for (tests and the
CLI change the environment between calls):

| setting | environment variable | default |
|---|---|---|
| data directory | ``DRPO_HOME`` | ``./.drpo`` |
| DuckDB file | ``DRPO_DB`` | ``$DRPO_HOME/warehouse.duckdb`` |
| log root (ingest refuses paths outside it) | ``DRPO_LOG_ROOT`` | none: any path |
| logs the flows read by default | ``DRPO_LOGS`` | ``$DRPO_HOME/logs/live`` |
| Prefect home (ephemeral API, results) | ``PREFECT_HOME`` | ``$DRPO_HOME/prefect`` |
| MLflow tracking and registry | ``MLFLOW_TRACKING_URI`` | ``sqlite:///$DRPO_HOME/mlflow.db`` |
| Dask scheduler of a distributed backfill | ``DRPO_DASK_ADDRESS`` | none: a local cluster |
| Great Expectations project | | ``$DRPO_HOME/gx`` |
| validation results | | ``$DRPO_HOME/validation`` |
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """The ``DRPO_*`` environment."""

    model_config = SettingsConfigDict(env_prefix="DRPO_", extra="ignore")

    home: Path = Path(".drpo")
    db: Path | None = None
    logs: str | None = None
    log_root: str | None = None
    dask_address: str | None = None  # e.g. tcp://scheduler:8786 (docs/scaling.md)


def settings() -> Settings:
    return Settings()


def drpo_home() -> Path:
    """The project's data directory: DuckDB file, logs, MLflow store, Prefect home, outputs."""
    return settings().home.resolve()


def db_path() -> Path:
    s = settings()
    return (s.db or s.home.resolve() / "warehouse.duckdb").resolve()


def log_root() -> str | Path | None:
    """``DRPO_LOG_ROOT``: a local folder (resolved) or an object-store URI (kept as written)."""
    root = settings().log_root
    if not root:
        return None
    return root if "://" in root else Path(root).resolve()


def dask_address() -> str | None:
    """``DRPO_DASK_ADDRESS``: the Dask scheduler a distributed backfill trains on (its workers
    share DRPO_HOME and the warehouse file); unset, the backfill starts a local cluster."""
    return settings().dask_address or None


def gx_root() -> Path:
    return drpo_home() / "gx"


def validation_dir() -> Path:
    return drpo_home() / "validation"


def runs_dir() -> Path:
    return drpo_home() / "runs"


def logs_dir() -> str:
    """``DRPO_LOGS``: the log root the flows read by default (a folder or an object-store URI)."""
    logs = settings().logs
    if logs:
        return logs if "://" in logs else str(Path(logs).resolve())
    return str(drpo_home() / "logs" / "live")


def embedded_environment() -> None:
    """Defaults for running flows in-process: Prefect's home under DRPO_HOME, telemetry off."""
    home = drpo_home()
    os.environ.setdefault("PREFECT_HOME", str(home / "prefect"))
    Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # the temporary API starts in ~5 s on a quiet machine; a busy one (a nightly beside other
    # jobs) took over Prefect's default 20 s and failed the run before it began
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(home / "inductor"))
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
