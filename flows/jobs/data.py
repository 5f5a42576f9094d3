"""Data jobs over one event_date or one window: ingest, validate, filter."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from drpo_core.warehouse import open_warehouse
from drpo_core.warehouse.cvar_filter import FilterReport, cvar_filter
from drpo_core.warehouse.ingest import IngestReport, ingest_partition
from flows.settings import db_path, gx_root, log_root, validation_dir
from flows.validation import ValidationConfig, ValidationOutcome, validate_day

LOCK_TIMEOUT = 30.0  # seconds a writer waits for the DuckDB writer lock


class ValidationFailedError(RuntimeError):
    """A critical expectation failed: the run stops before training."""


def ingest(logs: str, event_date: dt.date, force: bool = False,
           timeout: float = LOCK_TIMEOUT, db: Path | None = None) -> IngestReport:
    """One day of logs into the warehouse (``db``, default $DRPO_DB); bad rows to quarantine."""
    with open_warehouse(db or db_path(), timeout=timeout) as wh:
        return ingest_partition(wh, logs, event_date, log_root=log_root(), force=force)


def validate(event_date: dt.date, config: ValidationConfig | None = None,
             timeout: float = LOCK_TIMEOUT, db: Path | None = None) -> ValidationOutcome:
    """The validation suite on one ingested day; its outcome is stored either way."""
    with open_warehouse(db or db_path(), timeout=timeout) as wh:
        return validate_day(wh, event_date, config or ValidationConfig(), gx_root(),
                            validation_dir())


def require_valid(outcome: ValidationOutcome) -> ValidationOutcome:
    if not outcome.success:
        raise ValidationFailedError(
            f"validation of {outcome.event_date} failed: "
            + "; ".join(outcome.critical_failures) + f" (result: {outcome.result_path})")
    return outcome


def filter_window(start: dt.date, end: dt.date, kappa: float, partition_by: str,
                  timeout: float = LOCK_TIMEOUT, db: Path | None = None) -> FilterReport:
    """Theorem 4.1 over a window, recorded in ``filter_runs`` (lineage)."""
    with open_warehouse(db or db_path(), timeout=timeout) as wh:
        return cvar_filter(wh, start, end, kappa, partition_by)
