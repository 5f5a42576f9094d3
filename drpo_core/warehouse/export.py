"""Training window export: DuckDB -> Arrow record batches -> torch tensors.

Streaming with bounded memory: the row count is read first, the tensors are allocated once,
and each record batch is copied in through zero-copy views of its fixed-size-list child
buffers. Rows come in a deterministic order (event_date, event_id) - the trainer shuffles.
"""

from __future__ import annotations

import datetime as dt
import warnings

import pyarrow as pa
import torch

from drpo_core.data import TrainingData
from drpo_core.warehouse.connection import Warehouse

BATCH_ROWS = 262_144

_COLUMNS = "i.state, i.action, i.reward, i.behavior_logprob"


def window_query(filtered: bool) -> str:
    if filtered:  # the rows kept by cvar_filter, with their weights (same connection)
        return (f"SELECT {_COLUMNS}, f.weight FROM interactions i JOIN filter_weights f "
                "ON i.rowid = f.row_id WHERE i.event_date BETWEEN $start AND $end "
                "ORDER BY i.event_date, i.event_id")
    return (f"SELECT {_COLUMNS}, 1.0 AS weight FROM interactions i "
            "WHERE i.event_date BETWEEN $start AND $end ORDER BY i.event_date, i.event_id")


def _view(values: pa.Array, dim: int) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(values.to_numpy(zero_copy_only=True)).view(-1, dim)


def export_window(wh: Warehouse, start: dt.date, end: dt.date, filtered: bool = True,
                  batch_rows: int = BATCH_ROWS) -> TrainingData:
    """The window as tensors; ``filtered`` uses the last ``cvar_filter`` of this connection."""
    dims = wh.dims()
    if dims is None:
        raise ValueError(f"database {wh.path} has no interactions yet")
    d_state, d_action = dims
    params = {"start": start, "end": end}
    query = window_query(filtered)
    n = wh.con.execute(f"SELECT count(*) FROM ({query})", params).fetchall()[0][0]
    if n == 0:
        raise ValueError(f"no rows to export between {start} and {end}")
    out = TrainingData(torch.empty(n, d_state), torch.empty(n, d_action), torch.empty(n),
                       torch.empty(n), torch.empty(n))
    reader = wh.con.sql(query, params=params).to_arrow_reader(batch_rows)
    row = 0
    for batch in reader:
        k = batch.num_rows
        state = batch.column("state")
        action = batch.column("action")
        out.state[row : row + k] = _view(state.values if state.offset == 0 else state.flatten(),
                                         d_state)
        out.action[row : row + k] = _view(
            action.values if action.offset == 0 else action.flatten(), d_action)
        for name in ("reward", "behavior_logprob", "weight"):
            column = batch.column(name).cast(pa.float32()).to_numpy(zero_copy_only=False)
            getattr(out, name)[row : row + k] = torch.from_numpy(column)
        row += k
    if row != n:
        raise RuntimeError(f"export read {row} rows, expected {n}")
    return out
