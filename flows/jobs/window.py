"""The training window of a logical date: the SQL top-kappa filter, then its rows as tensors."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

from drpo_core.data import TrainingData
from drpo_core.warehouse import open_warehouse
from drpo_core.warehouse.cvar_filter import FilterReport, cvar_filter
from drpo_core.warehouse.export import export_window
from flows.params import RunParameters
from flows.settings import db_path


@dataclass
class Window:
    data: TrainingData
    report: FilterReport

    @property
    def summary(self) -> dict[str, Any]:
        """The filter's lineage record: window, kappa, rows, cut per partition, SQL hash."""
        r = self.report
        return {"filter_id": r.filter_id, "window_start": r.window_start.isoformat(),
                "window_end": r.window_end.isoformat(), "kappa": r.kappa,
                "partition_by": r.partition_by, "rows_in": r.rows_in,
                "rows_kept": r.rows_kept, "sql_hash": r.sql_hash,
                "partitions": [asdict(p) for p in r.partitions]}


def prepare_window(logical_date: dt.date, params: RunParameters) -> Window:
    start, end = params.window(logical_date)
    with open_warehouse(db_path()) as wh:
        report = cvar_filter(wh, start, end, params.kappa, params.partition_by)
        data = export_window(wh, start, end, filtered=True)
    return Window(data, report)
