"""Sessions (issue 11): return-to-go and episode links of the training rows, in SQL.

Two SQL files compute, for every row of a window, its position in its episode and the row that
follows it (sql/window_sessions.sql, one sort of the window) and, when asked, its discounted
return-to-go (sql/window_returns.sql), over the warehouse (``build_sessions``) or over Parquet
logs read into Arrow (``load_training_logs``, the path of ``drpo lab train``): one source of
truth for both.

Definitions (also in the SQL file's header):

* **Episode** = the window's rows with one ``episode_id``, ordered by ``step``, then
  ``event_id`` (a tie in step keeps a fixed order). Rows of the episode outside the window (a
  session across the window's end) are not part of it: the return is what the training data
  holds, and a run's data does not change when later days arrive.
* **Discount by position, not by step value**: the rows at steps 0, 2, 7 are positions 0, 1, 2.
  A gap in step numbers is a row the window does not hold (dropped, quarantined): it costs no
  discount, since no reward of it is summed.
* **Return-to-go** G_t = sum_{j >= t} gamma^(j - t) r_j over the episode's positions. Exact for
  sessions of any length: the positions are cut into blocks (``block_size``) inside which every
  weight is >= 1e-150, and the blocks are joined by their head returns; the terms left out weigh
  less than 1e-450, which is zero in double. gamma = 0 gives G_t = r_t exactly.
* **Links**: ``next_row_id`` the next position's row (the row itself on the last), ``done`` =
  1.0 on the episode's last row, else 0.0. A one-step session has done = 1 and G = r: the
  bandit case.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import replace
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import torch

import sql
from drpo_core.data import TrainingData, read_training_table, table_to_training_data
from drpo_core.objectives.base import DataNeeds
from drpo_core.warehouse.connection import Warehouse

#: the rows window_sessions.sql links, by source: an allow-list, never a value
SESSION_ROWS = {
    "window": ("SELECT rowid AS row_id, episode_id, step, event_id, reward FROM interactions "
               "WHERE event_date BETWEEN $start AND $end"),
    "arrow": "SELECT row_id, episode_id, step, event_id, reward FROM session_rows_arrow",
}
#: the contract columns the links are computed from
SESSION_COLUMNS = ("event_id", "episode_id", "step")
#: smallest in-block weight gamma^off (a normal double, with room for any reward's magnitude)
MIN_BLOCK_WEIGHT = 1e-150


def check_gamma(gamma: float) -> float:
    gamma = float(gamma)
    if not 0.0 <= gamma < 1.0:
        raise ValueError(f"gamma must be in [0, 1), got {gamma}")
    return gamma


def block_size(gamma: float) -> int:
    """Positions per block of window_returns.sql: B = floor(150 / -log10 gamma) + 1, the most
    with gamma^(B - 1) >= 1e-150 (1 for gamma = 0). Then B > 150 / -log10 gamma, so the terms the
    SQL leaves out, more than 3 B positions ahead, weigh gamma^(3 B + 1) < 1e-450."""
    gamma = check_gamma(gamma)
    if gamma == 0.0:
        return 1
    block = math.floor(150.0 / -math.log10(gamma)) + 1
    while block > 1 and gamma ** (block - 1) < MIN_BLOCK_WEIGHT:  # rounding of the log
        block -= 1
    return block


def needs_sessions(needs: DataNeeds) -> bool:
    """Whether ``needs`` asks for anything window_sessions.sql / window_returns.sql compute."""
    return needs.return_gamma is not None or needs.transitions


def _run_sessions(wh: Warehouse, rows: str, gamma: float | None, params: dict) -> None:
    script = sql.load("window_sessions").replace("{rows}", SESSION_ROWS[rows])
    wh.run_text(script, params, "window_sessions")
    if gamma is not None:
        wh.run("window_returns", {"gamma": gamma, "block": block_size(gamma)})


def build_sessions(wh: Warehouse, start: dt.date, end: dt.date, gamma: float | None = None
                   ) -> None:
    """On this connection, over the window's rows: TEMP TABLE window_sessions (row_id =
    interactions.rowid, episode_id, reward, episode_pos, next_row_id, done) and, with a
    ``gamma``, TEMP TABLE window_returns (row_id, return_to_go)."""
    _run_sessions(wh, "window", None if gamma is None else check_gamma(gamma),
                  {"start": start, "end": end})


def session_arrays(episode: pa.Table, gamma: float = 0.0
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(return_to_go, next_row, done) of rows given in memory, by their index in ``episode``
    (columns event_id, episode_id, step, reward); next_row is the row's own index where done."""
    n = episode.num_rows
    rows = episode.select(["event_id", "episode_id", "step", "reward"]).append_column(
        "row_id", pa.array(np.arange(n, dtype=np.int64)))
    con = duckdb.connect()
    try:
        wh = Warehouse(con, Path(":memory:"), False)
        con.register("session_rows_arrow", rows)
        _run_sessions(wh, "arrow", check_gamma(gamma), {})
        out = con.sql("SELECT s.row_id, r.return_to_go, s.next_row_id, s.done "
                      "FROM window_sessions s JOIN window_returns r USING (row_id) "
                      "ORDER BY s.row_id").to_arrow_table()
    finally:
        con.close()
    if out.num_rows != n:
        raise RuntimeError(f"window_sessions.sql linked {out.num_rows} rows, expected {n}")
    next_row = out.column("next_row_id").to_numpy().astype(np.int64)
    done = out.column("done").to_numpy().astype(np.float32)
    return out.column("return_to_go").to_numpy(), next_row, done


def load_training_logs(path: Path, start: dt.date | None = None, end: dt.date | None = None,
                       needs: DataNeeds | None = None) -> TrainingData:
    """``drpo_core.data.load_training_data`` plus what ``needs`` asks for: the return-to-go in
    the reward column (``return_gamma``) and next_state / done (``transitions``), computed by
    window_sessions.sql and window_returns.sql over the logs' rows in the date range."""
    needs = needs or DataNeeds()
    if not needs_sessions(needs):
        return table_to_training_data(read_training_table(path, start, end))
    table = read_training_table(path, start, end, SESSION_COLUMNS)
    gamma = 0.0 if needs.return_gamma is None else needs.return_gamma
    return with_session_columns(table_to_training_data(table), needs,
                                session_arrays(table, gamma))


def with_session_columns(data: TrainingData, needs: DataNeeds,
                         arrays: tuple[np.ndarray, np.ndarray, np.ndarray]) -> TrainingData:
    """``data`` with what ``needs`` asks for, from ``session_arrays``' (return_to_go, next_row,
    done) of the same rows: the return-to-go in the reward column, next_state and done."""
    returns, next_row, done = arrays
    if needs.return_gamma is not None:
        data = replace(data, reward=torch.from_numpy(returns.astype(np.float32)),
                       return_gamma=needs.return_gamma)
    if needs.transitions:
        data = replace(data, next_state=data.state[torch.from_numpy(next_row)],
                       done=torch.from_numpy(done))
    return data
