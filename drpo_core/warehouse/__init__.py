"""The DuckDB warehouse: one writer at a time, SQL from the ``sql`` package, typed reports."""

from drpo_core.warehouse.connection import (
    DatabaseBusyError,
    Warehouse,
    open_warehouse,
)

__all__ = ["DatabaseBusyError", "Warehouse", "open_warehouse"]
