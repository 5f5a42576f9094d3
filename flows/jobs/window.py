"""The training window of a logical date: its days checked (validated, present), the SQL
top-kappa filter, then the training sample drawn out of core (``steps x batch`` rows in
proportion to the filter's weights): memory is bounded by the sample, never by the window.

A distributed backfill splits this in two: the flow's process checks the days and records the
filter (``prepare_window(..., draw=False)``: the one DuckDB writer), and the worker that trains
the date draws the same sample on a read-only connection (``draw_sample``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from drpo_core.data import DrawnSample
from drpo_core.warehouse import Warehouse, open_warehouse
from drpo_core.warehouse.cvar_filter import FilterReport, cvar_filter
from drpo_core.warehouse.days import DayStatus, unvalidated_days, window_days
from drpo_core.warehouse.sample import draw_training_sample, weigh_window, window_fingerprint
from flows.params import RunParameters
from flows.settings import db_path


class WindowRefusedError(ValueError):
    """The window has a day it must not train on (unvalidated, or missing when refused)."""


class WindowChangedError(RuntimeError):
    """The warehouse changed between the filter's record and a worker's draw of the sample."""


@dataclass(frozen=True)
class SampleFacts:
    """What the registry records of a drawn sample, once a worker trained on it and its
    tensors stayed there: draws, state width and the draw's identity."""

    n_rows: int
    d_state: int
    sample_fingerprint: str

    def fingerprint(self) -> str:
        return self.sample_fingerprint

    @classmethod
    def of(cls, sample: DrawnSample | SampleFacts | None) -> SampleFacts:
        if sample is None:
            raise ValueError("the window's sample was not drawn")
        return cls(sample.n_rows, sample.d_state, sample.fingerprint())


@dataclass
class Window:
    #: the training sample, consumed in order by the trainer; only its facts once a worker
    #: trained on it; None until a worker draws it (``prepare_window(..., draw=False)``)
    data: DrawnSample | SampleFacts | None
    report: FilterReport
    fingerprint: str  # content hash of the filtered window (its rows and weights), from SQL
    days: list[DayStatus] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def summary(self) -> dict[str, Any]:
        """The filter's lineage record: window, kappa, rows, cut per partition, SQL hash."""
        r = self.report
        return {"filter_id": r.filter_id, "window_start": r.window_start.isoformat(),
                "window_end": r.window_end.isoformat(), "kappa": r.kappa,
                "quality": r.quality, "gamma": r.gamma,
                "partition_by": r.partition_by, "rows_in": r.rows_in,
                "rows_kept": r.rows_kept, "sql_hash": r.sql_hash,
                "partitions": [asdict(p) for p in r.partitions]}

    @property
    def coverage_tags(self) -> dict[str, str]:
        """Which days the version was trained on, for its tags."""
        missing = [d.event_date.isoformat() for d in self.days if d.missing]
        unvalidated = [d.isoformat() for d in unvalidated_days(self.days)
                       if d.isoformat() not in missing]
        return {"window_coverage": f"{len(self.days) - len(missing)}/{len(self.days)}",
                "window_missing_days": ",".join(missing) or "none",
                "window_unvalidated_days": ",".join(unvalidated) or "none"}


def check_days(days: list[DayStatus], params: RunParameters) -> list[str]:
    """Refuse unvalidated days (unless allowed) and, if asked, missing days; else warnings."""
    present = [d for d in days if not d.missing]
    unvalidated = unvalidated_days(present)
    missing = [d.event_date.isoformat() for d in days if d.missing]
    if unvalidated and not params.allow_unvalidated:
        raise WindowRefusedError(
            "the window has days that did not pass validation: "
            + ", ".join(d.isoformat() for d in unvalidated)
            + " (validate them, or pass --allow-unvalidated to train anyway)")
    if missing and params.missing_days == "refuse":
        raise WindowRefusedError(f"the window has days without logs: {', '.join(missing)}")
    warnings = [f"{len(missing)} of {len(days)} window days have no logs: {', '.join(missing)}"
                ] if missing else []
    if unvalidated:
        warnings.append("training on days that did not pass validation (allowed): "
                        + ", ".join(d.isoformat() for d in unvalidated))
    return warnings


def prepare_window(logical_date: dt.date, params: RunParameters, draw: bool = True) -> Window:
    """Check the window's days, record the filter (lineage) and draw the training sample
    (``draw=False``: leave the draw to ``draw_sample`` on a backfill worker)."""
    start, end = params.window(logical_date)
    with open_warehouse(db_path()) as wh:
        days = window_days(wh, start, end)
        warnings = check_days(days, params)
        report = cvar_filter(wh, start, end, params.kappa, params.partition_by,
                             quality=params.quality, gamma=params.gamma)
        sample = _draw(wh, logical_date, params) if draw else None
        fingerprint = window_fingerprint(wh, start, end, needs=params.train_config().data_needs())
    return Window(sample, report, fingerprint, days, warnings)


def draw_sample(logical_date: dt.date, params: RunParameters, window: Window) -> Window:
    """``window`` with its training sample, drawn on a read-only connection: the filter's
    weights computed again (no lineage row: the flow recorded it) and the same seeded draw,
    so the same sample as ``prepare_window``'s. Refused if the window's rows changed since."""
    start, end = params.window(logical_date)
    with open_warehouse(db_path(), read_only=True) as wh:
        weigh_window(wh, start, end, params.kappa, params.partition_by,
                     quality=params.quality, gamma=params.gamma)
        needs = params.train_config().data_needs()
        if window_fingerprint(wh, start, end, needs=needs) != window.fingerprint:
            raise WindowChangedError(f"the window {start}..{end} of {logical_date} changed "
                                     "after its filter was recorded: run the date again")
        return replace(window, data=_draw(wh, logical_date, params))


def _draw(wh: Warehouse, logical_date: dt.date, params: RunParameters) -> DrawnSample:
    """The training sample from the weights of the last filter on ``wh``."""
    start, end = params.window(logical_date)
    config = params.train_config()
    return draw_training_sample(wh, start, end, steps=config.steps,
                                batch_size=config.batch_size, seed=config.seed,
                                dataset_kappa=config.dataset_kappa(), needs=config.data_needs())
