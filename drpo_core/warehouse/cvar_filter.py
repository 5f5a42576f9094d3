"""The dataset-level top-kappa filter in SQL (Theorem 4.1; sql/cvar_filter.sql).

``cvar_filter`` computes, per partition of the window, the threshold nu, the weights of the kept
rows and the upper-tail CVaR, records one ``filter_runs`` row per partition (lineage) and leaves
the kept rows with their weights in the temp table ``filter_weights`` for the export.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import sql
from drpo_core.warehouse.connection import Warehouse

#: partition_by values and the SQL expression each stands for (the allow-list).
PARTITION_KEYS = {
    "none": "'all'",
    "event_date": "CAST(event_date AS VARCHAR)",
    "segment": "CAST(hash(user_id) % $n_segments AS VARCHAR)",
}


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
    script = sql.load("cvar_filter").replace("{partition_key}", PARTITION_KEYS[partition_by])
    params = {"start": start, "end": end, "kappa": kappa, "n_segments": n_segments}
    wh.run_text(script, params)
    rows = wh.query(
        "SELECT partition_value, rows_in, rows_kept, nu, boundary_fraction, "
        "(rows_above + boundary_fraction * rows_at) / rows_in, "
        "(reward_above + boundary_fraction * rows_at * cut) / ($kappa * rows_in) "
        "FROM filter_thresholds ORDER BY partition_value", {"kappa": kappa})
    if not rows:
        raise ValueError(f"no interactions between {start} and {end}")
    report = FilterReport(uuid.uuid4().hex[:12], start, end, kappa, partition_by,
                          [PartitionThreshold(*r) for r in rows], sql.sql_hash("cvar_filter"))
    wh.con.executemany(
        "INSERT INTO filter_runs (filter_id, window_start, window_end, kappa, partition_by, "
        "partition_value, rows_in, rows_kept, nu, boundary_fraction, kept_share, cvar, "
        "sql_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(report.filter_id, start, end, kappa, partition_by, p.partition_value, p.rows_in,
          p.rows_kept, p.nu, p.boundary_fraction, p.kept_share, p.cvar, report.sql_hash)
         for p in report.partitions],
    )
    return report
