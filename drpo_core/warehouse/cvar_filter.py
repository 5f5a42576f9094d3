"""The dataset-level top-kappa filter in SQL (Theorem 4.1; sql/cvar_filter*.sql).

``cvar_filter`` computes, per partition of the window, the threshold nu, the weights of the kept
rows and the upper-tail CVaR, records one ``filter_runs`` row per partition (lineage) and leaves
the kept rows with their weights in the temp table ``filter_weights`` for the export.
The three SQL steps: bracket every partition's cut from a sample (cvar_filter.sql), find the
exact cut inside the bracket (cvar_filter_band.sql, run again for partitions the sample missed),
write the kept rows' weights (cvar_filter_weights.sql).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from dataclasses import dataclass

import sql
from drpo_core.warehouse.connection import Warehouse, WarehouseError

#: partition_by values and the SQL expression each stands for (the allow-list). Native types:
#: a VARCHAR cast of every row's key would cost the filter a third of its time.
PARTITION_KEYS = {
    "none": "'all'",
    "event_date": "event_date",
    # UBIGINT modulus: a modulus of the parameter's own type made the scan 20x slower
    "segment": "hash(user_id) % CAST($n_segments AS UBIGINT)",
}
SQL_FILES = ("cvar_filter", "cvar_filter_band", "cvar_filter_weights")


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

    def _run(self, name: str) -> None:
        script = sql.load(name).replace("{partition_key}", PARTITION_KEYS[self.partition_by])
        params = {"start": self.start, "end": self.end, "kappa": self.kappa,
                  "n_segments": self.n_segments}
        self.wh.run_text(script, params, name)

    def bracket(self) -> None:
        """filter_cuts: rows per partition and a sampled bracket around each cut."""
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
                partition_by: str = "none", n_segments: int = 16) -> FilterReport:
    kappa = check_kappa(kappa)
    if partition_by not in PARTITION_KEYS:
        raise ValueError(f"partition_by must be one of {', '.join(PARTITION_KEYS)}, "
                         f"got {partition_by!r}")
    if start > end:
        raise ValueError(f"window start {start} is after its end {end}")
    if n_segments <= 0:
        raise ValueError(f"n_segments must be positive, got {n_segments}")
    check_window(wh, start, end)
    steps = FilterSteps(wh, start, end, kappa, partition_by, n_segments)
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
                          [PartitionThreshold(*r) for r in rows], sql.lineage_hash())
    wh.run("cvar_filter_record", {
        "filter_id": report.filter_id, "start": start, "end": end, "kappa": kappa,
        "partition_by": report.partition_by, "sql_hash": report.sql_hash,
        "partitions": [dataclasses.asdict(p) for p in report.partitions]})
    return report
