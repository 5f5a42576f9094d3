"""The DuckDB warehouse: one writer at a time, SQL from the ``sql`` package, typed reports.

Errors: every refusal of the data layer is a ``WarehouseError`` (a ``ValueError``) whose message
is one line naming the file, day or window and what was expected: ``DatabaseBusyError``,
``IngestError`` (``warehouse.ingest``), ``EmptyWindowError`` (``warehouse.cvar_filter``).
"""

from drpo_core.warehouse.connection import (
    DatabaseBusyError,
    Warehouse,
    WarehouseError,
    open_warehouse,
)
from drpo_core.warehouse.days import DayStatus, simulator_config, window_days

__all__ = ["DatabaseBusyError", "DayStatus", "Warehouse", "WarehouseError", "open_warehouse",
           "simulator_config", "window_days"]
