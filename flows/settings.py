"""Where the embedded defaults live: everything under ``$DRPO_HOME`` (default ``./.drpo``)."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_HOME = ".drpo"


def drpo_home() -> Path:
    """The project's data directory: DuckDB file, logs, MLflow store, Prefect home, outputs."""
    return Path(os.environ.get("DRPO_HOME", DEFAULT_HOME)).resolve()
