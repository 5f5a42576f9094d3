"""The validation gate: a Great Expectations 1.x suite on one day's statistics.

The log contract's row rules live once, in SQL (sql/ingest_rules.sql): ingest quarantines every
row that breaks one, so GX does not check them again. GX checks what no single row shows, on
the day's statistics computed in SQL (sql/validation_day_stats.sql, read through
``drpo_core.warehouse.validation_store``): the row count, the share quarantined, the reward's
declared range, the drift of reward quantiles and of the volume against the trailing window,
and the calibration of the logged propensities. Each expectation carries ``meta.severity``: a
failed ``critical`` expectation fails the day, a failed ``warning`` is reported only.

Results go to the ``validation_runs`` table and ``<out_dir>/<date>.json``; Data Docs HTML is
built in the file-backed GX project under ``gx_root``, one page per suite and date (the run is
named after the date).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from drpo_core.warehouse.connection import Warehouse
from drpo_core.warehouse.validation_store import day_statistics, record_validation

CRITICAL, WARNING = "critical", "warning"
SUITE = "interactions_day"


class ValidationConfig(BaseModel):
    """What a valid day looks like. Defaults fit the simulator's logs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reward_min: float | None = Field(0.0, description="critical: declared lower bound of reward")
    reward_max: float | None = Field(None, description="critical: declared upper bound of reward "
                                                       "(none: eCPM-like rewards are unbounded)")
    min_rows: int = Field(1, ge=0, description="critical: fewest rows a day may have")
    max_rows: int = Field(50_000_000, ge=1, description="critical: most rows a day may have")
    max_quarantine_share: float = Field(0.05, ge=0.0, le=1.0,
                                        description="critical: share of rows quarantined")
    max_quantile_drift: float = Field(0.1, ge=0.0,
                                      description="warning: |reward quantile - trailing| limit")
    max_volume_change: float = Field(1.0, ge=0.0, description="warning: rows / trailing daily "
                                                              "mean within [1/(1+x), 1+x]")
    max_propensity_miscalibration: float = Field(
        0.25, ge=0.0, description="warning: |E_b[1 / (n_items p_b)] - 1| limit")
    trailing_days: int = Field(7, gt=0, description="days before the day used for drift")


@dataclass(frozen=True)
class ValidationOutcome:
    event_date: dt.date
    success: bool
    critical_failures: list[str]
    warnings: list[str]
    result_path: Path
    data_docs: Path | None  # the Data Docs page of this date's validation
    statistics: dict[str, Any]


def _expectations(config: ValidationConfig) -> list[Any]:
    import great_expectations.expectations as gxe

    crit, warn = {"severity": CRITICAL}, {"severity": WARNING}
    between = gxe.ExpectColumnValuesToBeBetween
    expectations = [
        between(column="rows_kept", min_value=config.min_rows, max_value=config.max_rows,
                meta=crit),
        between(column="quarantine_share", max_value=config.max_quarantine_share, meta=crit),
        between(column="volume_ratio", min_value=1.0 / (1.0 + config.max_volume_change),
                max_value=1.0 + config.max_volume_change, meta=warn),
        between(column="propensity_calibration",
                min_value=1.0 - config.max_propensity_miscalibration,
                max_value=1.0 + config.max_propensity_miscalibration, meta=warn),
    ]
    if config.reward_min is not None:
        expectations.append(between(column="reward_min", min_value=config.reward_min,
                                    meta=crit))
    if config.reward_max is not None:
        expectations.append(between(column="reward_max", max_value=config.reward_max,
                                    meta=crit))
    for q in ("p50", "p90", "p99"):
        expectations.append(between(column=f"reward_{q}_drift",
                                    min_value=-config.max_quantile_drift,
                                    max_value=config.max_quantile_drift, meta=warn))
    return expectations


def _gx_context(gx_root: Path) -> Any:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    gx_root.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    ctx = gx.get_context(mode="file", project_root_dir=str(gx_root))
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    return ctx


def _run_suite(ctx: Any, expectations: list[Any], frame: pd.DataFrame, run_name: str) -> Any:
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier

    source = ctx.data_sources.add_or_update_pandas("drpo")
    asset = (source.get_asset(SUITE) if SUITE in [a.name for a in source.assets]
             else source.add_dataframe_asset(SUITE))
    batch = next((b for b in asset.batch_definitions if b.name == "whole"), None) or \
        asset.add_batch_definition_whole_dataframe("whole")
    suite = ctx.suites.add_or_update(gx.ExpectationSuite(name=SUITE, expectations=expectations))
    vd = ctx.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=SUITE, data=batch, suite=suite))
    return vd.run(batch_parameters={"dataframe": frame}, result_format="SUMMARY",
                  run_id=RunIdentifier(run_name=run_name))


def describe_failure(result: Any) -> str:
    cfg = result.expectation_config
    kwargs = {k: v for k, v in cfg.kwargs.items() if k not in ("batch_id",)}
    observed = result.result.get("observed_value", result.result.get("partial_unexpected_list"))
    return f"{cfg.type}({json.dumps(kwargs, default=str)}) observed {observed}"


def _split(result: Any) -> tuple[list[str], list[str]]:
    critical, warnings = [], []
    for r in result.results:
        if not r.success:
            severity = r.expectation_config.meta.get("severity")
            (critical if severity == CRITICAL else warnings).append(describe_failure(r))
    return critical, warnings


def validate_day(wh: Warehouse, event_date: dt.date, config: ValidationConfig,
                 gx_root: Path, out_dir: Path) -> ValidationOutcome:
    """Run the suite on ``event_date``'s statistics; store and return the outcome."""
    statistics = day_statistics(wh, event_date, config.trailing_days)
    ctx = _gx_context(gx_root)
    result = _run_suite(ctx, _expectations(config), pd.DataFrame([statistics]),
                        f"{SUITE}-{event_date.isoformat()}")
    critical, warnings = _split(result)
    sites = ctx.build_data_docs()  # {site name: file:// URL of its index.html}
    index = next((Path(url.removeprefix("file://")) for url in sites.values()), None)
    page = _date_page(index, f"{SUITE}-{event_date.isoformat()}")
    text = json.dumps({"event_date": event_date.isoformat(), "success": not critical,
                       "critical_failures": critical, "warnings": warnings,
                       "statistics": statistics, "results": result.to_json_dict()},
                      indent=2, default=str)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{event_date.isoformat()}.json"
    path.write_text(text + "\n")
    record_validation(wh, event_date, not critical, critical, warnings, text)
    return ValidationOutcome(event_date, not critical, critical, warnings, path, page,
                             statistics)


def _date_page(index: Path | None, run_name: str) -> Path | None:
    """The Data Docs page of this date's latest validation (one folder per run name, one
    sub-folder per run time), else the site's index."""
    if index is None:
        return None
    pages = sorted((index.parent / "validations" / SUITE / run_name).glob("*/*.html"))
    return pages[-1] if pages else index
