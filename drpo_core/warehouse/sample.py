"""The training sample drawn out of core (issue 15): the trainer never holds the whole window.

A run of ``steps`` gradient steps at global batch ``N`` reads exactly ``steps x N`` rows, drawn
with replacement in proportion to the filter's weights (Theorem 4.1's Q*, ``filter_weights`` of
the last ``cvar_filter`` on this connection), or uniformly from the window. DuckDB sorts the
window's (row_id, weight) pairs once (sql/window_sample.sql); one streamed pass accumulates the
weights chunk by chunk and merges the sorted seeded uniforms into them (``_draw_rows``); DuckDB
then fetches only the drawn rows, in draw order. Memory is bounded by the sample, a chunk and
DuckDB's buffer pool, never by the window. (An ASOF join of the uniforms to a window-function
cumulative sum does the same in SQL; it sorted the window twice and was 5-10x slower.)

* Reproducible by seed: the uniforms come from numpy's PCG64 seeded with ``seed``; the
  cumulative weights are summed sequentially in ``row_id`` order (stable while the writer lock
  is held, the same contract as ``filter_weights``), so the same window and seed give the same
  draws, and a sample for more steps starts with the draws of a shorter one.
* Distributed runs: draw j feeds global step j // N at batch position j mod N; rank r holds the
  draws at positions [r N / W, (r + 1) N / W) of every batch (disjoint parts of one seeded
  sample) plus the rewards of every draw, which the top-P filter ranks. The global batches are
  those of the one-process run, so a W-process run equals it (tests/test_ddp.py).
* Memory: the drawn rows are scattered over the whole window, so the fetch reads every block
  of the window's vectors once; DuckDB would keep what it read in its buffer pool up to its
  cap (1.5 GB by default) and the process would grow with the window until the cap. The draw
  therefore runs under a smaller cap, ``DRPO_SAMPLE_MEMORY_LIMIT`` (default 256MB; sorts beyond
  it spill to disk), and the connection's own cap is restored afterwards.
* An objective's dataset-level filter (``Objective.dataset_kappa``: filtered_bc's top kappa)
  must see the whole window, which only the SQL does here: pass ``dataset_kappa`` and the
  draw weights are multiplied by the rule's kept mass (sql/window_sample_kappa.sql), the same
  rows the in-memory trainer keeps with ``prepare``. The trainer refuses a sample drawn
  without it (a cut applied inside a with-replacement sample would rank duplicates).
* Session data (issue 11): ``needs`` (an objective's ``DataNeeds``) puts the return-to-go in the
  reward column (``return_gamma``; the dataset-level top kappa then ranks it too, as the
  in-memory trainer's ``prepare`` ranks the exported reward) and adds next_state / done
  (``transitions``), from the window's episode links (sql/window_sessions.sql), computed over
  the whole window before the draw: a drawn row's next state is its episode's next row.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import torch

import sql
from drpo_core.data import DrawnSample
from drpo_core.filtering import CEIL_SLACK
from drpo_core.objectives.base import DataNeeds
from drpo_core.warehouse.connection import Warehouse, memory_limit
from drpo_core.warehouse.cvar_filter import FilterSteps, check_kappa, check_quality
from drpo_core.warehouse.export import BATCH_ROWS, _view
from drpo_core.warehouse.sessions import build_sessions, check_gamma, needs_sessions

#: the rows a sample is drawn from, as (row_id, weight): an allow-list, never a value
SOURCES = {
    True: "SELECT row_id, weight FROM filter_weights",
    False: ("SELECT rowid AS row_id, 1.0::DOUBLE AS weight FROM interactions "
            "WHERE event_date BETWEEN $start AND $end"),
}
_KAPPA_SOURCE = ("SELECT s.row_id, s.weight * CASE WHEN {reward} > c.cut THEN 1.0 ELSE c.share "
                 "END AS weight FROM ({base}) s JOIN interactions i ON i.rowid = s.row_id"
                 "{sessions}, sample_cut c WHERE {reward} >= c.cut "
                 "AND i.event_date BETWEEN $start AND $end")
#: the joins of the session tables (sessions.build_sessions): returns, links and the next row
_RETURNS_JOIN = " JOIN window_returns wr ON wr.row_id = i.rowid"
_LINKS_JOIN = (" JOIN window_sessions ws ON ws.row_id = i.rowid"
               " JOIN interactions nx ON nx.rowid = ws.next_row_id")  # the row itself if done
#: the sessions' part of the fingerprint when a sample needs them (links, then returns)
FINGERPRINT_SESSIONS = ("SELECT coalesce(sum(CAST(hash(row_id, next_row_id) AS HUGEINT)), 0) "
                        "FROM window_sessions")
FINGERPRINT_RETURNS = ("SELECT coalesce(sum(CAST(hash(row_id, return_to_go) AS HUGEINT)), 0) "
                       "FROM window_returns")
#: the weights' part of the fingerprint (sql/window_fingerprint.sql), by ``filtered``
FINGERPRINT_WEIGHTS = {
    True: ("(SELECT coalesce(sum(CAST(hash(row_id, weight) AS HUGEINT)), 0) "
           "FROM filter_weights)"),
    False: "0",
}
SQL_FILES = ("window_sample", "window_sample_kappa", "window_fingerprint")


def sample_memory_limit() -> str:
    """DuckDB's buffer-pool cap while a sample is drawn: ``DRPO_SAMPLE_MEMORY_LIMIT``."""
    return os.environ.get("DRPO_SAMPLE_MEMORY_LIMIT", "256MB")


@contextmanager
def _capped(wh: Warehouse) -> Iterator[None]:
    wh.con.execute("SET memory_limit = $limit", {"limit": sample_memory_limit()})
    try:
        yield
    finally:
        wh.con.execute("SET memory_limit = $limit", {"limit": memory_limit()})


def _script(name: str, source: str) -> str:
    return sql.load(name).replace("{source}", source)


def _check_filtered(wh: Warehouse, filtered: bool) -> None:
    if filtered and not wh.query("SELECT 1 FROM information_schema.tables "
                                 "WHERE table_name = 'filter_weights'"):
        raise ValueError("no filter_weights on this connection: run cvar_filter first "
                         "(or pass filtered=False)")


def window_fingerprint(wh: Warehouse, start: dt.date, end: dt.date, filtered: bool = True,
                       needs: DataNeeds | None = None) -> str:
    """Content hash of the (filtered) window, computed in SQL (sql/window_fingerprint.sql);
    with session ``needs`` also of its episode links and return-to-go."""
    needs = needs or DataNeeds()
    if needs_sessions(needs):
        build_sessions(wh, start, end, needs.return_gamma)
    return _fingerprint(wh, start, end, filtered, needs)


def _fingerprint(wh: Warehouse, start: dt.date, end: dt.date, filtered: bool,
                 needs: DataNeeds) -> str:
    """window_fingerprint over the session tables already built for ``needs``."""
    _check_filtered(wh, filtered)
    dims = wh.dims()
    script = sql.load("window_fingerprint").replace("{weights}", FINGERPRINT_WEIGHTS[filtered])
    rows, content, weights = _fetchone(wh, script, {"start": start, "end": end})
    key = f"{rows}|{content}|{weights}|{dims}|{start}|{end}|{filtered}"
    if needs_sessions(needs):  # the default key is unchanged (run keys of earlier runs)
        links = _fetchone(wh, FINGERPRINT_SESSIONS, {})[0]
        returns = (None if needs.return_gamma is None
                   else _fetchone(wh, FINGERPRINT_RETURNS, {})[0])
        key += f"|{needs.return_gamma}|{needs.transitions}|{links}|{returns}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def weigh_window(wh: Warehouse, start: dt.date, end: dt.date, kappa: float,
                 partition_by: str = "none", quality: str = "reward", gamma: float = 0.0
                 ) -> None:
    """``filter_weights`` of cvar_filter without its lineage row, on any connection: the ranks
    of a distributed run open the warehouse read-only and each computes the (exact, hence
    identical) weights; the driver's ``cvar_filter`` records the run."""
    kappa = check_kappa(kappa)
    steps = FilterSteps(wh, start, end, kappa, partition_by, 16, check_quality(quality, kappa),
                        check_gamma(gamma))
    steps.bracket()
    steps.settle()
    steps.weigh()


def _fetchone(wh: Warehouse, statement: str, params: dict) -> tuple:
    """One statement's first row, binding only the parameters it names."""
    result = wh.run_text(statement, params)[-1]
    assert result is not None
    return result.fetchone()


def _ranked(script: str, needs: DataNeeds) -> str:
    """``script`` ranking the sample's reward column: the logged reward, or the return-to-go."""
    if needs.return_gamma is None:
        return script.replace("{reward}", "i.reward").replace("{sessions}", "")
    return (script.replace("{reward}", "wr.return_to_go")
            .replace("{sessions}", _RETURNS_JOIN))


def _dataset_cut(wh: Warehouse, params: dict, source: str, kappa: float,
                 needs: DataNeeds) -> None:
    """sample_cut: the cut and tie share of an objective's top kappa over the source rows."""
    n = _fetchone(wh, f"SELECT count(*) FROM ({source}) WHERE weight > 0", params)[0]
    if n == 0:
        raise ValueError(f"no rows to sample between {params['start']} and {params['end']}")
    k = min(max(math.ceil(kappa * n - CEIL_SLACK), 1), n)
    wh.run_text(_ranked(_script("window_sample_kappa", source), needs),
                params | {"kappa": kappa, "k": k}, "window_sample_kappa")


def draw_training_sample(wh: Warehouse, start: dt.date, end: dt.date, *, steps: int,
                         batch_size: int, seed: int, filtered: bool = True,
                         dataset_kappa: float | None = None, rank: int = 0,
                         world_size: int = 1, batch_rows: int = BATCH_ROWS,
                         needs: DataNeeds | None = None) -> DrawnSample:
    """``steps x batch_size`` weighted draws with replacement; this rank's part as tensors
    (with ``needs``: the return-to-go as reward, next_state and done)."""
    if steps <= 0 or batch_size <= 0:
        raise ValueError(f"steps ({steps}) and batch_size ({batch_size}) must be positive")
    if batch_size % world_size or not 0 <= rank < world_size:
        raise ValueError(f"batch_size {batch_size} must split over {world_size} processes "
                         f"and rank {rank} be one of them")
    dims = wh.dims()
    if dims is None:
        raise ValueError(f"database {wh.path} has no interactions yet")
    _check_filtered(wh, filtered)
    if dataset_kappa is not None and not 0.0 < dataset_kappa <= 1.0:
        raise ValueError(f"dataset_kappa must be in (0, 1], got {dataset_kappa}")
    needs = needs or DataNeeds()
    with _capped(wh):
        if needs_sessions(needs):
            build_sessions(wh, start, end, needs.return_gamma)
        return _draw(wh, start, end, steps, batch_size, seed, filtered, dataset_kappa, rank,
                     world_size, batch_rows, dims, needs)


def _draw(wh: Warehouse, start: dt.date, end: dt.date, steps: int, batch_size: int, seed: int,
          filtered: bool, dataset_kappa: float | None, rank: int, world_size: int,
          batch_rows: int, dims: tuple[int, int], needs: DataNeeds) -> DrawnSample:
    params = {"start": start, "end": end}
    source = SOURCES[filtered]
    if dataset_kappa is not None and dataset_kappa < 1.0:
        _dataset_cut(wh, params, source, dataset_kappa, needs)
        source = _ranked(_KAPPA_SOURCE.replace("{base}", source), needs)
    n_draws = steps * batch_size
    wh.run_text(_script("window_sample", source), params, "window_sample")
    row_ids = _draw_rows(wh, np.random.default_rng(seed).random(n_draws), batch_rows)
    if row_ids is None:
        raise ValueError(f"no rows with positive weight to sample between {start} and {end}")
    pos = np.arange(n_draws, dtype=np.int64)
    draws = pa.table({"pos": pa.array(pos), "row_id": pa.array(row_ids)})
    wh.con.register("sample_draws_arrow", draws)
    try:  # the draws stay inspectable on the connection (pos, row_id)
        wh.con.execute("CREATE OR REPLACE TEMP TABLE sample_draws AS "
                       "SELECT * FROM sample_draws_arrow")
    finally:
        wh.con.unregister("sample_draws_arrow")
    shard = batch_size // world_size
    mine = _gather(wh, params, row_ids[(pos % batch_size) // shard == rank],
                   _fetched(dims, needs), batch_rows)
    if world_size == 1:
        reward_all = mine["reward"].clone()
    else:
        reward_all = _gather(wh, params, row_ids, _fetched(dims, needs, rewards_only=True),
                             batch_rows)["reward"]
    fingerprint = _fingerprint(wh, start, end, filtered, needs)
    return DrawnSample(**mine, reward_all=reward_all, batch_size=batch_size, rank=rank,
                       world_size=world_size, dataset_kappa=dataset_kappa,
                       source=f"{fingerprint}|seed={seed}|kappa={dataset_kappa}",
                       return_gamma=needs.return_gamma)


def _weight_chunks(wh: Warehouse, batch_rows: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(row_id, weight) of sample_weights in storage (= row_id) order, chunk by chunk."""
    reader = wh.con.sql("SELECT row_id, weight FROM sample_weights").to_arrow_reader(batch_rows)
    for batch in reader:
        yield (batch.column("row_id").to_numpy(),
               batch.column("weight").to_numpy().astype(np.float64))


def _draw_rows(wh: Warehouse, u: np.ndarray, batch_rows: int) -> np.ndarray | None:
    """Row ids of the draws: draw j takes the row whose cumulative-weight interval holds
    u_j * W. Two streamed passes (W first, then the merge), both summing in the same order,
    so W is exactly the last cumulative weight; None when there is no weight."""
    total = 0.0
    for _, w in _weight_chunks(wh, batch_rows):
        total = float(np.cumsum(np.concatenate([[total], w]))[-1])
    if not total > 0.0:
        return None
    order = np.argsort(u, kind="stable")
    x = u[order] * total  # sorted targets in [0, W)
    rows = np.empty(len(u), dtype=np.int64)
    start, carry, last = 0, 0.0, -1
    for row_id, w in _weight_chunks(wh, batch_rows):
        cum_hi = np.cumsum(np.concatenate([[carry], w]))[1:]
        end = int(np.searchsorted(x, cum_hi[-1], side="left"))  # targets below this chunk's top
        pick = np.searchsorted(cum_hi, x[start:end], side="right")  # first cum_hi > x
        rows[order[start:end]] = row_id[pick]
        start, carry, last = end, float(cum_hi[-1]), int(row_id[-1])
    rows[order[start:]] = last  # x >= W by rounding only: the last row, as the trainer clamps
    return rows


@dataclass(frozen=True)
class Fetched:
    """What a draw fetches: name -> (SQL expression, width; 0 = a scalar), and the joins."""

    columns: dict[str, tuple[str, int]]
    joins: str = ""


def _fetched(dims: tuple[int, int], needs: DataNeeds, rewards_only: bool = False) -> Fetched:
    """The columns of a sample for ``needs`` (the rewards alone: every draw's, for reward_all)."""
    reward = ("i.reward", 0) if needs.return_gamma is None else ("wr.return_to_go AS reward", 0)
    joins = _RETURNS_JOIN if needs.return_gamma is not None else ""
    if rewards_only:
        return Fetched({"reward": reward}, joins)
    columns = {"state": ("i.state", dims[0]), "action": ("i.action", dims[1]), "reward": reward,
               "behavior_logprob": ("i.behavior_logprob", 0)}
    if needs.transitions:
        columns |= {"next_state": ("nx.state AS next_state", dims[0]),
                    "done": ("ws.done", 0)}
        joins += _LINKS_JOIN
    return Fetched(columns, joins)


def _gather(wh: Warehouse, params: dict, row_ids: np.ndarray, fetched: Fetched,
            batch_rows: int) -> dict[str, torch.Tensor]:
    """The rows ``row_ids`` name, in that order (repeats included), as tensors.

    DuckDB returns each distinct row once, in no particular order (a hash join of the distinct
    ids against the window: no sort of wide rows, which would have to fit DuckDB's cap); the
    draw order is restored in numpy. Memory: the distinct rows plus the sample."""
    distinct, inverse = np.unique(row_ids, return_inverse=True)
    widths = {c: w for c, (_, w) in fetched.columns.items()}
    out = {c: torch.empty(len(distinct), max(w, 1)) for c, w in widths.items()}
    script = (sql.load("window_sample_rows").replace("{joins}", fetched.joins)
              .replace("{columns}", ", ".join(e for e, _ in fetched.columns.values())))
    wh.con.register("sample_rows_arrow", pa.table({"row_id": pa.array(distinct)}))
    try:
        seen = 0
        for batch in wh.con.sql(script, params=params).to_arrow_reader(batch_rows):
            at = torch.from_numpy(np.searchsorted(distinct, batch.column("row_id").to_numpy()))
            for c, width in widths.items():
                col = batch.column(c)
                if width:
                    out[c][at] = _view(col.values if col.offset == 0 else col.flatten(), width)
                else:
                    out[c][at, 0] = torch.from_numpy(
                        col.cast(pa.float32()).to_numpy(zero_copy_only=False))
            seen += batch.num_rows
    finally:
        wh.con.unregister("sample_rows_arrow")
    if seen != len(distinct):
        raise RuntimeError(f"sample fetch read {seen} rows, expected {len(distinct)}")
    index = torch.from_numpy(inverse.reshape(-1))
    return {c: out[c][index] if w else out[c][index].squeeze(1) for c, w in widths.items()}
