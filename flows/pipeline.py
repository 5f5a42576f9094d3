"""Prefect 3 flows: ``nightly_retrain`` for one logical date and ``backfill`` over a range.

ingest -> validate (hard gate) -> filter (SQL, Theorem 4.1) -> train -> evaluate -> register
(MLflow) -> promotion gate. Tasks are thin shells over flows/steps.py. The logical date is a
parameter (default: yesterday in ``timezone``), never wall-clock "now", so a rerun reproduces a
day. The newest day of the window is held out: the policy trains on the ``window_days`` days
before the logical date and is evaluated on the logical date itself.

Retries: only the MLflow step (transient I/O) retries, with backoff; a failed validation or a
non-finite loss never retries. A failed run moves no alias.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path
from typing import Any, Literal

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from drpo_core.trainer import TrainConfig
from flows import steps
from flows.gate import GateConfig
from flows.settings import logs_dir

Algorithm = Literal["drpo", "drpo_exp", "adaptive_bc", "filtered_bc", "bc", "awr", "crr",
                    "iql", "bppo", "apg", "asymre"]
PartitionBy = Literal["none", "event_date", "segment"]


@task(name="ingest", cache_policy=NO_CACHE)
def ingest_task(logs: str, day: dt.date) -> dict[str, Any]:
    report = steps.ingest(Path(logs), day)
    get_run_logger().info("ingest %s: %s rows kept, %s quarantined (%s)", day,
                          report["rows_kept"], report["rows_quarantined"], report["status"])
    return report


@task(name="validate", cache_policy=NO_CACHE, retries=0)
def validate_task(day: dt.date) -> dict[str, Any]:
    try:
        return steps.validate(day)
    except steps.ValidationFailedError as err:
        create_markdown_artifact(key=f"validation-failed-{day.isoformat()}",
                                 markdown=f"## Validation failed for {day}\n\n{err}\n",
                                 description="critical expectations that failed")
        raise


@task(name="filter", cache_policy=NO_CACHE)
def filter_task(start: dt.date, end: dt.date, kappa: float, partition_by: str
                ) -> steps.WindowResult:
    window = steps.prepare_window(start, end, kappa, partition_by)
    create_table_artifact(key="filter-thresholds", table=window.filter["partitions"],
                          description=f"Theorem 4.1 cut per partition, kappa={kappa}")
    return window


@task(name="train", cache_policy=NO_CACHE)
def train_task(logical_date: dt.date, window: steps.WindowResult, config: TrainConfig
               ) -> steps.TrainStep:
    return steps.train(logical_date, window, config, progress=True)


@task(name="evaluate", cache_policy=NO_CACHE)
def evaluate_task(policy_path: Path, logs: str, heldout_day: dt.date, eval_users: int
                  ) -> dict[str, Any]:
    return steps.evaluate(policy_path, Path(logs), heldout_day, eval_users)


@task(name="register", cache_policy=NO_CACHE, retries=3, retry_delay_seconds=[2, 5, 10])
def register_task(logical_date: dt.date, train_step: steps.TrainStep,
                  window: steps.WindowResult, evaluation: dict[str, Any],
                  validation: dict[str, Any]) -> dict[str, Any]:
    return steps.register(logical_date, train_step, window, evaluation, validation)


@task(name="promote", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 5])
def gate_task(version: int, evaluation: dict[str, Any], health: dict[str, Any], logs: str,
              heldout_day: dt.date, gate: GateConfig, eval_users: int) -> dict[str, Any]:
    return steps.gate(version, evaluation, health, Path(logs), heldout_day, gate, eval_users)


def yesterday(timezone: str) -> dt.date:
    try:
        tz = zoneinfo.ZoneInfo(timezone)
    except zoneinfo.ZoneInfoNotFoundError:
        raise ValueError(f"timezone: unknown time zone {timezone!r}") from None
    return dt.datetime.now(tz).date() - dt.timedelta(days=1)


def _summary(logical_date: dt.date, ingest: dict, window: steps.WindowResult,
             train_step: steps.TrainStep, evaluation: dict, version: dict, decision: dict
             ) -> str:
    online = evaluation.get("online") or {}
    ope = evaluation["off_policy"]
    return "\n".join([
        f"# nightly_retrain {logical_date}",
        "",
        "| | |", "|---|---|",
        f"| rows ingested / quarantined | {ingest['rows_kept']:,} / "
        f"{ingest['rows_quarantined']:,} |",
        f"| window | {window.filter['window_start']} .. {window.filter['window_end']} |",
        f"| kappa, rows kept | {window.filter['kappa']}, {window.filter['rows_kept']:,} of "
        f"{window.filter['rows_in']:,} |",
        f"| nu (first partition) | {window.filter['partitions'][0]['nu']:.4f} |",
        f"| kept share P (Algorithm 1, end) | "
        f"{train_step.final.get('filter/keep_share', float('nan')):.4f} |",
        f"| sigma (end) | {train_step.final.get('policy/sigma', float('nan')):.4g} |",
        f"| online reward / score | {online.get('mean_reward', float('nan')):.4f} / "
        f"{online.get('score', float('nan')):.1f} |",
        f"| off-policy DR / SNIPS | {ope['dr']:.4f} / {ope['snips']:.4f} |",
        f"| registered version | {version['version']} "
        f"({'new' if version['created'] else 'reused'}) |",
        f"| gate | {'PROMOTED' if decision['promoted'] else 'kept champion'}: "
        f"{decision['reason']} |",
        f"| champion | {decision.get('champion')} |",
    ])


def _retrain(logical_date: dt.date, logs: str, window_days: int, kappa: float,
             partition_by: str, config: TrainConfig, gate: GateConfig, eval_users: int,
             ingest: dict[str, Any], validation: dict[str, Any]) -> dict[str, Any]:
    start = logical_date - dt.timedelta(days=window_days)
    end = logical_date - dt.timedelta(days=1)
    window = filter_task(start, end, kappa, partition_by)
    train_step = train_task(logical_date, window, config)
    evaluation = evaluate_task(train_step.run_dir / "policy.pt", logs, logical_date,
                               eval_users)
    version = register_task(logical_date, train_step, window, evaluation, validation)
    decision = gate_task(version["version"], evaluation, train_step.health, logs,
                         logical_date, gate, eval_users)
    create_markdown_artifact(
        key=f"nightly-{logical_date.isoformat()}",
        markdown=_summary(logical_date, ingest, window, train_step, evaluation, version,
                          decision),
        description="rows, kappa, nu, kept share, evaluation, gate decision")
    return {"logical_date": logical_date.isoformat(), "version": version["version"],
            "created": version["created"], "gate": decision,
            "evaluation": evaluation, "run_dir": str(train_step.run_dir)}


def _train_config(algorithm: str, train_steps: int, batch_size: int, seed: int) -> TrainConfig:
    return TrainConfig(algorithm=algorithm, steps=train_steps, batch_size=batch_size, seed=seed,
                       log_every=min(100, train_steps),
                       checkpoint_every=min(100, train_steps) * max(1, train_steps // 5 // 100))


@flow(name="nightly_retrain", flow_run_name="nightly-{logical_date}", log_prints=True)
def nightly_retrain(
    logical_date: dt.date | None = None,
    logs: str | None = None,
    window_days: int = 7,
    kappa: float = 1.0,
    partition_by: PartitionBy = "none",
    algorithm: Algorithm = "drpo",
    train_steps: int = 3000,
    batch_size: int = 320,
    seed: int = 0,
    eval_users: int = 2000,
    min_improvement: float = 0.0,
    tail_tolerance: float = 0.01,
    timezone: str = "UTC",
) -> dict[str, Any]:
    """Ingest and validate the logical date, then retrain on the window before it.

    Args:
        logical_date: the day whose logs arrived (default: yesterday in `timezone`).
        logs: log root with event_date=YYYY-MM-DD folders (default: $DRPO_LOGS).
        window_days: training days before the logical date (the logical date is held out).
        kappa: kept probability mass of the SQL pre-filter (Theorem 4.1); 1 keeps every row.
        partition_by: compute the kappa cut per event_date, per user segment, or globally.
        algorithm: training objective (DRPO is Algorithm 1 of the paper).
        train_steps: gradient steps.
        batch_size: global mini-batch size (the paper's N = 320).
        seed: seed of weights and sampling.
        eval_users: simulator users for the online score.
        min_improvement: score margin a challenger needs over the champion.
        tail_tolerance: allowed drop of the lower-tail CVaR against the champion.
        timezone: time zone that defines "yesterday".
    """
    day = logical_date or yesterday(timezone)
    if window_days <= 0:
        raise ValueError(f"window_days must be positive, got {window_days}")
    logs = logs or str(logs_dir())
    config = _train_config(algorithm, train_steps, batch_size, seed)
    gate = GateConfig(min_improvement=min_improvement, tail_tolerance=tail_tolerance)
    ingest = ingest_task(logs, day)
    validation = validate_task(day)
    return _retrain(day, logs, window_days, kappa, partition_by, config, gate, eval_users,
                    ingest, validation)


def check_range(start: dt.date, end: dt.date, today: dt.date | None = None) -> None:
    if start > end:
        raise ValueError(f"backfill start {start} is after its end {end}")
    today = today or dt.datetime.now(dt.UTC).date()
    if end >= today:
        raise ValueError(f"backfill end {end} is not in the past (today is {today})")


@flow(name="backfill", flow_run_name="backfill-{start}-{end}", log_prints=True)
def backfill(
    start: dt.date,
    end: dt.date,
    retrain: Literal["last", "each", "none"] = "last",
    logs: str | None = None,
    window_days: int = 7,
    kappa: float = 1.0,
    partition_by: PartitionBy = "none",
    algorithm: Algorithm = "drpo",
    train_steps: int = 3000,
    batch_size: int = 320,
    seed: int = 0,
    eval_users: int = 2000,
    min_improvement: float = 0.0,
    tail_tolerance: float = 0.01,
) -> dict[str, Any]:
    """Ingest and validate every date in [start, end] in order, then retrain as asked.

    Args:
        start: first date to ingest and validate.
        end: last date (must be in the past).
        retrain: train for the last date only, for each date, or not at all.
        logs: log root with event_date=YYYY-MM-DD folders (default: $DRPO_LOGS).
        window_days: training days before each retrained date.
        kappa: kept probability mass of the SQL pre-filter (Theorem 4.1); 1 keeps every row.
        partition_by: compute the kappa cut per event_date, per user segment, or globally.
        algorithm: training objective (DRPO is Algorithm 1 of the paper).
        train_steps: gradient steps.
        batch_size: global mini-batch size (the paper's N = 320).
        seed: seed of weights and sampling.
        eval_users: simulator users for the online score.
        min_improvement: score margin a challenger needs over the champion.
        tail_tolerance: allowed drop of the lower-tail CVaR against the champion.
    """
    check_range(start, end)
    logs = logs or str(logs_dir())
    days = [start + dt.timedelta(days=k) for k in range((end - start).days + 1)]
    ingested, validated = {}, {}
    for day in days:  # one DuckDB writer: strictly in order
        ingested[day] = ingest_task(logs, day)
        validated[day] = validate_task(day)
    config = _train_config(algorithm, train_steps, batch_size, seed)
    gate = GateConfig(min_improvement=min_improvement, tail_tolerance=tail_tolerance)
    targets = {"last": days[-1:], "each": days[1:], "none": []}[retrain]
    runs = [_retrain(day, logs, window_days, kappa, partition_by, config, gate, eval_users,
                     ingested[day], validated[day]) for day in targets]
    return {"start": start.isoformat(), "end": end.isoformat(), "days": len(days),
            "rows": sum(r["rows_kept"] for r in ingested.values()), "retrained": runs}
