"""The validation gate: a Great Expectations 1.x suite on one day's partition.

The day is pulled from DuckDB into pandas (GX has no DuckDB dialect; no GX internals are
patched): every scalar column of the log contract plus the vector dimensions. Day statistics -
quarantine share and drift of reward quantiles against the trailing window - are computed in
SQL (sql/validation_stats.sql; GX's quantile expectation breaks ``ValidationDefinition.run``)
and checked by a second suite. Each expectation carries ``meta.severity``: a failed
``critical`` expectation fails the day, a failed ``warning`` is reported only.

Results go to the ``validation_runs`` table, to ``<out_dir>/<date>.json``, and Data Docs HTML is
built in the file-backed GX project under ``gx_root``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from drpo_core.schema import COLUMNS, SIMULATOR_LOGGING_POLICIES
from drpo_core.warehouse.connection import Warehouse

CRITICAL, WARNING = "critical", "warning"


class ValidationConfig(BaseModel):
    """What a valid day looks like. Defaults fit the simulator's logs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reward_min: float | None = Field(0.0, description="declared lower bound of reward")
    reward_max: float | None = Field(1.0, description="declared upper bound of reward")
    logging_policies: tuple[str, ...] = Field(SIMULATOR_LOGGING_POLICIES,
                                              description="allowed logging_policy values")
    logprob_nullable: bool = Field(False, description="behavior_logprob may be null")
    min_rows: int = Field(1, ge=0, description="fewest rows a day may have")
    max_rows: int = Field(50_000_000, ge=1, description="most rows a day may have")
    max_quarantine_share: float = Field(0.05, ge=0.0, le=1.0,
                                        description="critical: share of rows quarantined")
    max_quantile_drift: float = Field(0.1, ge=0.0,
                                      description="warning: |reward quantile - trailing| limit")
    trailing_days: int = Field(7, gt=0, description="days before the day used for drift")


@dataclass(frozen=True)
class ValidationOutcome:
    event_date: dt.date
    success: bool
    critical_failures: list[str]
    warnings: list[str]
    result_path: Path
    data_docs: Path | None
    statistics: dict[str, Any]


def _expectations(config: ValidationConfig, d_state: int, d_action: int
                  ) -> tuple[list[Any], list[Any]]:
    import great_expectations.expectations as gxe

    crit, warn = {"severity": CRITICAL}, {"severity": WARNING}
    day_columns = [c for c in COLUMNS if c not in ("state", "action")] + ["state_dim",
                                                                          "action_dim"]
    day = [
        gxe.ExpectTableColumnsToMatchSet(column_set=day_columns, exact_match=True, meta=crit),
        gxe.ExpectTableRowCountToBeBetween(min_value=config.min_rows, max_value=config.max_rows,
                                           meta=crit),
        gxe.ExpectColumnValuesToBeUnique(column="event_id", meta=crit),
        gxe.ExpectColumnValuesToBeInSet(column="logging_policy",
                                        value_set=list(config.logging_policies), meta=crit),
        gxe.ExpectColumnValuesToBeInSet(column="state_dim", value_set=[d_state], meta=crit),
        gxe.ExpectColumnValuesToBeInSet(column="action_dim", value_set=[d_action], meta=crit),
        gxe.ExpectColumnValuesToBeBetween(column="behavior_logprob", max_value=0.0, meta=crit),
        gxe.ExpectColumnValuesToBeBetween(column="step", min_value=0, meta=crit),
    ]
    if config.reward_min is not None or config.reward_max is not None:
        day.append(gxe.ExpectColumnValuesToBeBetween(
            column="reward", min_value=config.reward_min, max_value=config.reward_max,
            meta=crit))
    for column in day_columns:
        if column == "behavior_logprob" and config.logprob_nullable:
            continue
        day.append(gxe.ExpectColumnValuesToNotBeNull(column=column, meta=crit))
    stats = [gxe.ExpectColumnValuesToBeBetween(column="quarantine_share",
                                               max_value=config.max_quarantine_share,
                                               meta=crit)]
    for q in ("p50", "p90", "p99"):
        stats.append(gxe.ExpectColumnValuesToBeBetween(
            column=f"reward_{q}_drift", min_value=-config.max_quantile_drift,
            max_value=config.max_quantile_drift, meta=warn))
    return day, stats


def _gx_context(gx_root: Path) -> Any:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    gx_root.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    ctx = gx.get_context(mode="file", project_root_dir=str(gx_root))
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    return ctx


def _run_suite(ctx: Any, name: str, expectations: list[Any], frame: Any) -> Any:
    import great_expectations as gx

    source = ctx.data_sources.add_or_update_pandas("drpo")
    asset = (source.get_asset(name) if name in [a.name for a in source.assets]
             else source.add_dataframe_asset(name))
    batch = next((b for b in asset.batch_definitions if b.name == "whole"), None) or \
        asset.add_batch_definition_whole_dataframe("whole")
    suite = gx.ExpectationSuite(name=name, expectations=expectations)
    suite = ctx.suites.add_or_update(suite)
    vd = ctx.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=name, data=batch, suite=suite))
    return vd.run(batch_parameters={"dataframe": frame}, result_format="SUMMARY")


def describe_failure(result: Any) -> str:
    cfg = result.expectation_config
    kwargs = {k: v for k, v in cfg.kwargs.items() if k not in ("batch_id",)}
    observed = result.result.get("observed_value", result.result.get("unexpected_count"))
    return f"{cfg.type}({json.dumps(kwargs, default=str)}) observed {observed}"


def validate_day(wh: Warehouse, event_date: dt.date, config: ValidationConfig,
                 gx_root: Path, out_dir: Path) -> ValidationOutcome:
    """Run both suites on ``event_date``; store and return the outcome."""
    dims = wh.dims()
    if dims is None:
        raise ValueError(f"database {wh.path} has no interactions yet")
    day = wh.con.sql(
        "SELECT * EXCLUDE (state, action, ingest_id), len(state) AS state_dim, "
        "len(action) AS action_dim FROM interactions WHERE event_date = $d",
        params={"d": event_date}).to_arrow_table().to_pandas()
    stats = wh.run("validation_stats", {"event_date": event_date,
                                        "trailing_days": config.trailing_days})[-1].df()
    day_expectations, stats_expectations = _expectations(config, *dims)
    ctx = _gx_context(gx_root)
    results = [_run_suite(ctx, "interactions_day", day_expectations, day),
               _run_suite(ctx, "interactions_day_stats", stats_expectations, stats)]
    critical, warnings = [], []
    for res in results:
        for r in res.results:
            if r.success:
                continue
            target = critical if r.expectation_config.meta.get("severity") == CRITICAL \
                else warnings
            target.append(describe_failure(r))
    sites = ctx.build_data_docs()  # {site name: file:// URL of its index.html}
    index = next((Path(url.removeprefix("file://")) for url in sites.values()), None)
    statistics = {k: (None if v != v else v) for k, v in stats.iloc[0].to_dict().items()}
    payload = {"event_date": event_date.isoformat(), "success": not critical,
               "critical_failures": critical, "warnings": warnings, "statistics": statistics,
               "results": [r.to_json_dict() for r in results]}
    text = json.dumps(payload, indent=2, default=str)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{event_date.isoformat()}.json"
    path.write_text(text + "\n")
    wh.con.execute("INSERT INTO validation_runs (event_date, success, critical_failures, "
                   "warnings, result) VALUES ($d, $s, $c, $w, $r)",
                   {"d": event_date, "s": not critical, "c": critical, "w": warnings,
                    "r": text})
    return ValidationOutcome(event_date, not critical, critical, warnings, path, index,
                             statistics)
