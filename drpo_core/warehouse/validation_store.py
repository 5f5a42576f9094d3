"""What the validation gate reads from and writes to the warehouse: one day's statistics
(sql/validation_day_stats.sql) and its outcome (sql/validation_record.sql)."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from drpo_core.warehouse.connection import Warehouse


def day_statistics(wh: Warehouse, event_date: dt.date, trailing_days: int) -> dict[str, Any]:
    """The day's statistics as one record (NaN read back as None)."""
    cursor = wh.run("validation_day_stats", {"event_date": event_date,
                                             "trailing_days": trailing_days})[-1]
    names = [d[0] for d in cursor.description]
    row = cursor.fetchone()
    return {k: (None if isinstance(v, float) and math.isnan(v) else v)
            for k, v in zip(names, row, strict=True)}


def record_validation(wh: Warehouse, event_date: dt.date, success: bool,
                      critical_failures: list[str], warnings: list[str], result: str) -> None:
    wh.run("validation_record", {"event_date": event_date, "success": success,
                                 "critical_failures": critical_failures, "warnings": warnings,
                                 "result": result})
