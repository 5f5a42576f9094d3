"""Training window export: DuckDB -> Arrow record batches -> torch tensors.

Streaming with bounded memory: the row count is read first, the tensors are allocated once,
and each record batch is copied in through zero-copy views of its fixed-size-list child
buffers. Rows come in a deterministic order (event_date, event_id) - the trainer shuffles.

Session data (issue 11, ``DataNeeds``): with ``return_gamma`` the reward column holds the row's
return-to-go, with ``transitions`` the rows carry next_state and done; both come from the
window's episode links (sql/window_sessions.sql, drpo_core/warehouse/sessions.py), computed over
the whole window before any filter, so a kept row's next state is its episode's next row.
"""

from __future__ import annotations

import datetime as dt
import warnings

import pyarrow as pa
import torch

from drpo_core.data import TrainingData
from drpo_core.objectives.base import DataNeeds
from drpo_core.warehouse.connection import Warehouse
from drpo_core.warehouse.sessions import build_sessions, needs_sessions

BATCH_ROWS = 262_144

_COLUMNS = "i.state, i.action, i.reward, i.behavior_logprob"


#: the session columns and joins of ``needs`` (sessions.build_sessions on the same connection)
_RETURN = "i.state, i.action, wr.return_to_go AS reward, i.behavior_logprob"
_LINKS = ", nx.state AS next_state, ws.done"
_RETURNS_JOIN = " JOIN window_returns wr ON wr.row_id = i.rowid"
_LINKS_JOIN = (" JOIN window_sessions ws ON ws.row_id = i.rowid"
               " JOIN interactions nx ON nx.rowid = ws.next_row_id")  # the row itself if done


def window_query(filtered: bool, needs: DataNeeds | None = None) -> str:
    needs = needs or DataNeeds()
    columns, joins = (_COLUMNS, "") if needs.return_gamma is None else (_RETURN, _RETURNS_JOIN)
    if needs.transitions:
        columns, joins = columns + _LINKS, joins + _LINKS_JOIN
    if filtered:  # the rows kept by cvar_filter, with their weights (same connection)
        return (f"SELECT {columns}, f.weight FROM interactions i JOIN filter_weights f "
                f"ON i.rowid = f.row_id{joins} WHERE i.event_date BETWEEN $start AND $end "
                "ORDER BY i.event_date, i.event_id")
    return (f"SELECT {columns}, 1.0 AS weight FROM interactions i{joins} "
            "WHERE i.event_date BETWEEN $start AND $end ORDER BY i.event_date, i.event_id")


def _view(values: pa.Array, dim: int) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(values.to_numpy(zero_copy_only=True)).view(-1, dim)


def export_window(wh: Warehouse, start: dt.date, end: dt.date, filtered: bool = True,
                  batch_rows: int = BATCH_ROWS, needs: DataNeeds | None = None) -> TrainingData:
    """The window as tensors; ``filtered`` uses the last ``cvar_filter`` of this connection;
    ``needs`` adds the return-to-go (in the reward column) and the episode links."""
    dims = wh.dims()
    if dims is None:
        raise ValueError(f"database {wh.path} has no interactions yet")
    needs = needs or DataNeeds()
    if needs_sessions(needs):
        build_sessions(wh, start, end, needs.return_gamma)
    params = {"start": start, "end": end}
    query = window_query(filtered, needs)
    n = wh.con.execute(f"SELECT count(*) FROM ({query})", params).fetchall()[0][0]
    if n == 0:
        raise ValueError(f"no rows to export between {start} and {end}")
    out = _allocate(n, dims, needs)
    reader = wh.con.sql(query, params=params).to_arrow_reader(batch_rows)
    row = 0
    for batch in reader:
        _copy_batch(out, batch, row, dims)
        row += batch.num_rows
    if row != n:
        raise RuntimeError(f"export read {row} rows, expected {n}")
    return out


def _allocate(n: int, dims: tuple[int, int], needs: DataNeeds) -> TrainingData:
    d_state, d_action = dims
    links = (torch.empty(n, d_state), torch.empty(n)) if needs.transitions else (None, None)
    return TrainingData(torch.empty(n, d_state), torch.empty(n, d_action), torch.empty(n),
                        torch.empty(n), torch.empty(n), *links, return_gamma=needs.return_gamma)


def _copy_batch(out: TrainingData, batch: pa.RecordBatch, row: int, dims: tuple[int, int]
                ) -> None:
    """One record batch into the rows [row, row + k) of ``out``."""
    k = batch.num_rows
    vectors = {"state": dims[0], "action": dims[1]}
    scalars = ["reward", "behavior_logprob", "weight"]
    if out.next_state is not None:
        vectors["next_state"] = dims[0]
        scalars.append("done")
    for name, dim in vectors.items():
        col = batch.column(name)
        getattr(out, name)[row : row + k] = _view(col.values if col.offset == 0
                                                  else col.flatten(), dim)
    for name in scalars:
        column = batch.column(name).cast(pa.float32()).to_numpy(zero_copy_only=False)
        getattr(out, name)[row : row + k] = torch.from_numpy(column)
