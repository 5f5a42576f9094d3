"""The dataset-level top-kappa filter in SQL (Theorem 4.1; sql/cvar_filter*.sql).

``cvar_filter`` computes, per partition of the window, the threshold nu, the weights of the kept
rows and the upper-tail CVaR, records one ``filter_runs`` row per partition (lineage) and leaves
the kept rows with their weights in the temp table ``filter_weights`` for the export.
The three SQL steps: bracket every partition's cut from a sample (cvar_filter.sql), find the
exact cut inside the bracket (cvar_filter_band.sql, run again for partitions the sample missed),
write the kept rows' weights (cvar_filter_weights.sql).

``quality`` (issue 11) chooses the value ranked: ``reward`` (the paper's, the rows of
``interactions`` as they are), ``return`` (the session's return-to-go with ``gamma``) or
``advantage`` (that value minus its mean over the user's rows in the partition); the last two are
written first to the temp table ``filter_signal`` (cvar_filter_signal.sql; definitions there and
in drpo_core/warehouse/sessions.py), which the three steps then read. ``q`` needs a learned
critic, which the SQL does not have: with kappa < 1 it is refused; kappa = 1 keeps every row
(weight 1) and the trainer filters each batch by q. The choice is recorded in ``filter_runs``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from dataclasses import dataclass

import sql
from drpo_core.warehouse.connection import Warehouse, WarehouseError
from drpo_core.warehouse.sessions import build_sessions, check_gamma

#: partition_by values and the SQL expression each stands for (the allow-list). Native types:
#: a VARCHAR cast of every row's key would cost the filter a third of its time.
PARTITION_KEYS = {
    "none": "'all'",
    "event_date": "event_date",
    # UBIGINT modulus: a modulus of the parameter's own type made the scan 20x slower
    "segment": "hash(user_id) % CAST($n_segments AS UBIGINT)",
}
SQL_FILES = ("cvar_filter", "cvar_filter_band", "cvar_filter_weights")
#: the quality signals the filter knows (issue 11); the SQL ranks all but q
QUALITIES = ("reward", "return", "advantage", "q")
#: what the steps read for a signal written to filter_signal: (rows, its interactions rowid)
SIGNAL_ROWS = ("filter_signal", "row_id")
REWARD_ROWS = ("interactions", "rowid")
SESSIONS_JOIN = "JOIN window_returns s ON s.row_id = i.rowid"


class EmptyWindowError(WarehouseError):
    """The window holds no interactions (before the first day of data, or a gap)."""


@dataclass(frozen=True)
class PartitionThreshold:
    partition_value: str
    rows_in: int
    rows_kept: int
    nu: float
    boundary_fraction: float
    kept_share: float
    cvar: float


@dataclass(frozen=True)
class FilterReport:
    filter_id: str
    window_start: dt.date
    window_end: dt.date
    kappa: float
    partition_by: str
    partitions: list[PartitionThreshold]
    sql_hash: str
    quality: str = "reward"
    gamma: float = 0.0

    @property
    def rows_in(self) -> int:
        return sum(p.rows_in for p in self.partitions)

    @property
    def rows_kept(self) -> int:
        return sum(p.rows_kept for p in self.partitions)


def check_kappa(kappa: float) -> float:
    kappa = float(kappa)
    if not 0.0 < kappa <= 1.0:
        raise ValueError(f"kappa must be in (0, 1], got {kappa}")
    return kappa


def check_quality(quality: str, kappa: float) -> str:
    """Refuse, in one line, a signal the SQL filter cannot rank by."""
    if quality not in QUALITIES:
        raise ValueError(f"quality must be one of {', '.join(QUALITIES)}, got {quality!r}")
    if quality == "q" and kappa < 1.0:
        raise ValueError(f"quality q needs a learned critic, which the SQL filter does not have: "
                         f"kappa={kappa:g} < 1 cannot rank by it; use kappa = 1 (every row kept, "
                         "the trainer filters each batch by q) or quality reward, return or "
                         "advantage")
    return quality


def signal_expression(quality: str, gamma: float) -> tuple[str, str] | None:
    """(the ranked value's SQL, the join it needs) for filter_signal; None: rank the logged
    reward of interactions as it is (quality reward or q, or return at gamma = 0)."""
    value, join = ("i.reward", "") if gamma == 0.0 else ("s.return_to_go", SESSIONS_JOIN)
    if quality == "return" and gamma > 0.0:
        return value, join
    if quality == "advantage":
        return f"{value} - avg({value}) OVER (PARTITION BY i.user_id, {{partition_key}})", join
    return None


@dataclass(frozen=True)
class FilterSteps:
    """The three SQL steps of one filter run over a window, in order: ``bracket``, ``settle``,
    ``weigh``. ``cvar_filter`` runs them all; tests run them one by one to reach the middle."""

    wh: Warehouse
    start: dt.date
    end: dt.date
    kappa: float
    partition_by: str = "none"
    n_segments: int = 16
    quality: str = "reward"
    gamma: float = 0.0

    @property
    def _signal(self) -> tuple[str, str] | None:
        return signal_expression(self.quality, self.gamma)

    def _run(self, name: str, fields: dict[str, str] | None = None) -> None:
        rows, row_id = REWARD_ROWS if self._signal is None else SIGNAL_ROWS
        script = sql.load(name)
        for key, value in (fields or {}).items():  # allow-listed SQL, never values
            script = script.replace("{" + key + "}", value)
        script = (script.replace("{partition_key}", PARTITION_KEYS[self.partition_by])
                  .replace("{rows}", rows).replace("{row_id}", row_id))
        params = {"start": self.start, "end": self.end, "kappa": self.kappa,
                  "n_segments": self.n_segments}
        self.wh.run_text(script, params, name)

    def bracket(self) -> None:
        """filter_cuts: rows per partition and a sampled bracket around each cut (first the
        ranked signal, filter_signal, unless it is the logged reward)."""
        if (signal := self._signal) is not None:
            if signal[1]:
                build_sessions(self.wh, self.start, self.end, self.gamma)
            self._run("cvar_filter_signal", {"signal": signal[0], "sessions": signal[1]})
        self._run("cvar_filter")

    def settle(self) -> int:
        """filter_thresholds: the exact cut of every partition; returns the passes it took."""
        for passes in (1, 2):  # the second pass opens the brackets the sample missed
            self._run("cvar_filter_band")
            if not self.wh.fetch("cvar_filter_pending")[0][0]:
                return passes
        raise RuntimeError("cvar_filter_band.sql left partitions without a cut")

    def weigh(self) -> None:
        """filter_weights: the kept rows and their density-ratio weights."""
        self._run("cvar_filter_weights")


def cvar_filter(wh: Warehouse, start: dt.date, end: dt.date, kappa: float,
                partition_by: str = "none", n_segments: int = 16, quality: str = "reward",
                gamma: float = 0.0) -> FilterReport:
    """The top kappa of ``quality`` (with ``gamma``) in every partition of the window."""
    kappa = check_kappa(kappa)
    quality = check_quality(quality, kappa)
    gamma = check_gamma(gamma)
    if partition_by not in PARTITION_KEYS:
        raise ValueError(f"partition_by must be one of {', '.join(PARTITION_KEYS)}, "
                         f"got {partition_by!r}")
    if start > end:
        raise ValueError(f"window start {start} is after its end {end}")
    if n_segments <= 0:
        raise ValueError(f"n_segments must be positive, got {n_segments}")
    check_window(wh, start, end)
    steps = FilterSteps(wh, start, end, kappa, partition_by, n_segments, quality, gamma)
    steps.bracket()
    steps.settle()
    steps.weigh()
    return record_filter_run(steps)


def check_window(wh: Warehouse, start: dt.date, end: dt.date) -> None:
    """Refuse, in one line, a window without rows (the filter's SQL finds no cut there)."""
    if wh.dims() is None:
        raise EmptyWindowError(f"no interactions between {start} and {end}: database "
                               f"{wh.path} holds no interactions yet")
    rows, first, last = wh.fetch("cvar_filter_window", {"start": start, "end": end})[0]
    if rows == 0:
        held = f"it holds {first} to {last}" if first is not None else "it holds none"
        raise EmptyWindowError(f"no interactions between {start} and {end} in {wh.path} "
                               f"({held}); expected a window with at least one ingested day")


def record_filter_run(steps: FilterSteps) -> FilterReport:
    """The report of a finished filter run, also written to ``filter_runs`` (lineage)."""
    wh, start, end, kappa = steps.wh, steps.start, steps.end, steps.kappa
    rows = wh.fetch("cvar_filter_report", {"kappa": kappa})
    if not rows:
        raise EmptyWindowError(f"no interactions between {start} and {end}")
    report = FilterReport(uuid.uuid4().hex[:12], start, end, kappa, steps.partition_by,
                          [PartitionThreshold(*r) for r in rows], sql.lineage_hash(),
                          steps.quality, steps.gamma)
    wh.run("cvar_filter_record", {
        "filter_id": report.filter_id, "start": start, "end": end, "kappa": kappa,
        "partition_by": report.partition_by, "sql_hash": report.sql_hash,
        "partitions": [dataclasses.asdict(p) for p in report.partitions],
        "quality": report.quality, "gamma": report.gamma})
    return report
