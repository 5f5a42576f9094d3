"""What the warehouse knows about each day, for the jobs that must not reopen the raw logs:
the status of every date of a window (sql/window_days.sql: rows stored, ingest, latest
validation) and the simulator config stored with a day at its ingest
(sql/day_simulator_config.sql)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Literal

from drpo_core.warehouse.connection import Warehouse

Validation = Literal["passed", "failed", "never"]


@dataclass(frozen=True)
class DayStatus:
    """One date of a window. ``validation`` is the latest result in ``validation_runs``."""

    event_date: dt.date
    rows_stored: int
    rows_quarantined: int
    ingested: bool
    validation: Validation
    validated_at: dt.datetime | None

    @property
    def missing(self) -> bool:
        """No rows stored for the date (never ingested, or every row quarantined)."""
        return self.rows_stored == 0


def window_days(wh: Warehouse, start: dt.date, end: dt.date) -> list[DayStatus]:
    """Every date in [start, end], in order, with its rows and latest validation; a date
    without data is listed too (``missing``). A database without tables yet lists every date
    as missing and never validated."""
    if start > end:
        raise ValueError(f"window start {start} is after its end {end}")
    if wh.dims() is None:
        days = (end - start).days + 1
        return [DayStatus(start + dt.timedelta(days=k), 0, 0, False, "never", None)
                for k in range(days)]
    return [DayStatus(*row) for row in wh.fetch("window_days", {"start": start, "end": end})]


def unvalidated_days(days: list[DayStatus]) -> list[dt.date]:
    """The dates whose latest validation did not pass (failed or never run)."""
    return [d.event_date for d in days if d.validation != "passed"]


def simulator_config(wh: Warehouse, event_date: dt.date) -> dict | None:
    """The simulator config the day's Parquet footers carried at its ingest (the dict
    ``drpo_core.schema.simulator_config_from_metadata`` reads from the files); None for logs
    that carry none, or a day never ingested."""
    if not wh.has_table("day_metadata"):
        return None
    rows = wh.fetch("day_simulator_config", {"event_date": event_date})
    return json.loads(rows[0][0]) if rows and rows[0][0] is not None else None
