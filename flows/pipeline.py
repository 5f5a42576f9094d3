"""Prefect 3 flows: ``nightly_retrain`` for one logical date and ``backfill`` over a range.

ingest -> validate (hard gate) -> filter (SQL, Theorem 4.1) -> train -> evaluate (challenger and
champion on the same held-out units) -> register (MLflow) -> gate. Each task is a shell over one
job of ``flows/jobs``, the same functions the CLI's production commands call. The logical date
is a parameter (default: yesterday in ``timezone``), never wall-clock "now", so a rerun
reproduces a day. The logical date is held out: the policy trains on the ``window_days`` days
before it and is scored on it.

Retries: only the MLflow steps (transient I/O) retry, with backoff; a failed validation or a
non-finite loss never retries. A failed run moves no alias.

A backfill with ``retrain="each"`` and ``params.backfill_workers > 1`` trains its dates at once
on a Dask cluster (prefect-dask's ``DaskTaskRunner``: a local cluster, or the one at
``$DRPO_DASK_ADDRESS``). Ingest, validation and the filter's record stay in date order in the
flow's process (the one DuckDB writer); each worker draws its date's sample read-only and
trains; evaluation, registration and the gate then run in date order in the flow's process, so
every date is scored against the champion the sequential backfill would have had.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from drpo_core.trainer import TrainConfig
from drpo_core.warehouse.ingest import IngestReport
from flows import registry
from flows.gate import GateConfig
from flows.jobs import data, evaluate, promote, register, train, window
from flows.params import Retrain, RunParameters, backfill_dates
from flows.report import run_summary
from flows.settings import dask_address, logs_dir
from flows.validation import ValidationOutcome


def transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry a failed MLflow step unless MLflow was unreachable: the registry already retried
    within its own bound (about a minute), and Prefect's retries would multiply it."""
    try:
        state.result()
    except registry.RegistryUnavailableError:
        return False
    except Exception:
        return True
    return True


@task(name="ingest", cache_policy=NO_CACHE)
def ingest_task(logs: str, event_date: dt.date) -> IngestReport:
    report = data.ingest(logs, event_date)
    get_run_logger().info("ingest %s: %s rows kept, %s quarantined (%s)", event_date,
                          report.rows_kept, report.rows_quarantined, report.status)
    return report


@task(name="validate", cache_policy=NO_CACHE, retries=0)
def validate_task(event_date: dt.date) -> ValidationOutcome:
    outcome = data.validate(event_date)
    if outcome.data_docs is not None:
        create_link_artifact(key=f"data-docs-{event_date.isoformat()}",
                             link=outcome.data_docs.as_uri(),
                             description=f"Great Expectations Data Docs of {event_date}")
    if not outcome.success:
        create_markdown_artifact(
            key=f"validation-failed-{event_date.isoformat()}",
            markdown=f"## Validation failed for {event_date}\n\n"
                     + "\n".join(f"- {c}" for c in outcome.critical_failures) + "\n",
            description="critical expectations that failed")
    return data.require_valid(outcome)


@task(name="filter", cache_policy=NO_CACHE)
def filter_task(logical_date: dt.date, params: RunParameters, draw: bool = True
                ) -> window.Window:
    result = window.prepare_window(logical_date, params, draw=draw)
    for warning in result.warnings:
        get_run_logger().warning("window of %s: %s", logical_date, warning)
    create_table_artifact(key="filter-thresholds", table=result.summary["partitions"],
                          description=f"Theorem 4.1 cut per partition, kappa={params.kappa}")
    return result


@task(name="train", cache_policy=NO_CACHE)
def train_task(logical_date: dt.date, win: window.Window, config: TrainConfig
               ) -> train.TrainStep:
    logger = get_run_logger()
    logger.info("training %s for %d steps on a sample of %s draws from %s window rows",
                config.algorithm, config.steps, f"{win.data.n_rows:,}",
                f"{win.report.rows_kept:,}")
    return train.train(logical_date, win, config, progress=True,
                       callbacks=[train.ProgressLog(logger, config.steps)])


@task(name="train", cache_policy=NO_CACHE)
def worker_train_task(logical_date: dt.date, win: window.Window, params: RunParameters,
                      threads: int | None = None) -> tuple[train.TrainStep, window.Window]:
    """On a Dask worker: draw the date's sample read-only and train on it."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    logger = get_run_logger()
    logger.info("training %s for %d steps on %s (a backfill worker)", params.algorithm,
                params.train_steps, logical_date)
    return train.draw_and_train(logical_date, win, params,
                                callbacks=[train.ProgressLog(logger, params.train_steps)])


@task(name="evaluate", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 5],
      retry_condition_fn=transient)
def evaluate_task(logical_date: dt.date, run_dir: Path, params: RunParameters
                  ) -> evaluate.Evaluation:
    logger = get_run_logger()
    champion = promote.champion_policy()
    logger.info("scoring the new policy%s on %s", "" if champion is None else
                f" and the champion (version {champion[0]})", logical_date)
    return evaluate.evaluate(logical_date, run_dir, params, champion)


@task(name="register", cache_policy=NO_CACHE, retries=3, retry_delay_seconds=[2, 5, 10],
      retry_condition_fn=transient)
def register_task(logical_date: dt.date, step: train.TrainStep, win: window.Window,
                  evaluation: evaluate.Evaluation, validation: ValidationOutcome
                  ) -> register.Registration:
    get_run_logger().info("registering run %s in MLflow (%s)", step.run_key,
                          "a version may exist already" if step.reused else "new training")
    return register.register(logical_date, step, win, evaluation, validation)


@task(name="promote", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 5],
      retry_condition_fn=transient)
def gate_task(version: int, evaluation: evaluate.Evaluation, health: dict[str, Any],
              config: GateConfig) -> promote.GateOutcome:
    outcome = promote.gate(version, evaluation, health, config)
    get_run_logger().info("gate for version %d: %s (%s); champion: version %s", version,
                          "promoted" if outcome.promoted else "not promoted", outcome.reason,
                          outcome.champion)
    return outcome


def retrain_date(logical_date: dt.date, params: RunParameters, ingest: IngestReport,
            validation: ValidationOutcome) -> dict[str, Any]:
    """filter -> train -> evaluate -> register -> gate for one logical date."""
    win = filter_task(logical_date, params)
    step = train_task(logical_date, win, params.train_config())
    return conclude_date(logical_date, params, ingest, validation, win, step)


def conclude_date(logical_date: dt.date, params: RunParameters, ingest: IngestReport,
                  validation: ValidationOutcome, win: window.Window, step: train.TrainStep
                  ) -> dict[str, Any]:
    """evaluate -> register -> gate for a trained date, and its summary artifact."""
    evaluation = evaluate_task(logical_date, step.run_dir, params)
    version = register_task(logical_date, step, win, evaluation, validation)
    decision = gate_task(version.version, evaluation, step.health, params.gate_config())
    create_markdown_artifact(
        key=f"nightly-{logical_date.isoformat()}",
        markdown=run_summary(logical_date, ingest, win, step, evaluation, version, decision),
        description="rows, kappa, nu, kept share, evaluation, gate decision")
    return {"logical_date": logical_date.isoformat(), "version": version.version,
            "created": version.created, "gate": asdict(decision),
            "evaluation": evaluation.as_dict(), "run_dir": str(step.run_dir)}


@contextmanager
def training_cluster(workers: int) -> Iterator[tuple[Any, int | None]]:
    """A started ``DaskTaskRunner`` and the torch threads of each training: the cluster at
    ``$DRPO_DASK_ADDRESS`` (its workers keep their own threads), else a local cluster of
    ``workers`` one-thread processes sharing this process's torch threads."""
    import torch
    from prefect_dask import DaskTaskRunner

    address = dask_address()
    if address:
        runner, threads = DaskTaskRunner(address=address), None
    else:
        runner = DaskTaskRunner(cluster_kwargs={
            "n_workers": workers, "processes": True, "threads_per_worker": 1,
            "dashboard_address": None})
        threads = max(1, torch.get_num_threads() // workers)
    with runner:
        yield runner, threads


def retrain_dates_on_cluster(days: list[dt.date], params: RunParameters,
                             ingested: dict[dt.date, IngestReport],
                             validated: dict[dt.date, ValidationOutcome]) -> list[dict[str, Any]]:
    """``retrain_date`` for many dates, their trainings at once on a Dask cluster."""
    windows = {day: filter_task(day, params, draw=False) for day in days}  # one writer
    runs = []
    with training_cluster(params.backfill_workers) as (runner, threads):
        futures = {day: runner.submit(worker_train_task, {
            "logical_date": day, "win": windows[day], "params": params, "threads": threads})
            for day in days}
        for day in days:  # in date order: each gate sees the sequential run's champion
            step, win = futures[day].result()
            runs.append(conclude_date(day, params, ingested[day], validated[day], win, step))
    return runs


def yesterday(timezone: str) -> dt.date:
    try:
        tz = zoneinfo.ZoneInfo(timezone)
    except zoneinfo.ZoneInfoNotFoundError:
        raise ValueError(f"timezone: unknown time zone {timezone!r}") from None
    return dt.datetime.now(tz).date() - dt.timedelta(days=1)


def nightly_run_name() -> str:
    """``nightly-<logical date>``, with a scheduled run's default (yesterday) resolved."""
    given = flow_run.parameters
    day = given.get("logical_date") or yesterday(given.get("timezone", "UTC"))
    return f"nightly-{day}"


@flow(name="nightly_retrain", flow_run_name=nightly_run_name, log_prints=True)
def nightly_retrain(logical_date: dt.date | None = None,
                    params: RunParameters = RunParameters(),
                    timezone: str = "UTC") -> dict[str, Any]:
    """Ingest and validate the logical date, then retrain on the window before it.

    Args:
        logical_date: the day whose logs arrived (default: yesterday in `timezone`).
        params: how the date is trained, scored and gated (see each field).
        timezone: time zone that defines "yesterday".
    """
    day = logical_date or yesterday(timezone)
    logs = params.logs or logs_dir()
    ingest = ingest_task(logs, day)
    validation = validate_task(day)
    return retrain_date(day, params, ingest, validation)


@flow(name="backfill", flow_run_name="backfill-{start}-{end}", log_prints=True)
def backfill(start: dt.date, end: dt.date, retrain: Retrain = "last",
             params: RunParameters = RunParameters()) -> dict[str, Any]:
    """Ingest and validate every date in [start, end] in order, then retrain as asked.

    Args:
        start: first date to ingest and validate.
        end: last date (must be in the past).
        retrain: train for the last date only, for each date, or not at all.
        params: how each date is trained, scored and gated (see each field);
            ``backfill_workers`` > 1 trains the dates of ``each`` at once on a Dask cluster.
    """
    days = backfill_dates(start, end)
    logs = params.logs or logs_dir()
    ingested, validated = {}, {}
    for day in days:  # one DuckDB writer: strictly in order
        ingested[day] = ingest_task(logs, day)
        validated[day] = validate_task(day)
    targets = {"last": days[-1:], "each": days[1:], "none": []}[retrain]
    if len(targets) > 1 and params.backfill_workers > 1:
        runs = retrain_dates_on_cluster(targets, params, ingested, validated)
    else:
        runs = [retrain_date(day, params, ingested[day], validated[day]) for day in targets]
    return {"start": start.isoformat(), "end": end.isoformat(), "days": len(days),
            "rows": sum(r.rows_kept for r in ingested.values()), "retrained": runs}
