"""Deployments: ``nightly`` on a cron schedule and ``backfill`` on demand, served together.

    drpo serve                       # needs PREFECT_API_URL pointing at a Prefect server
    prefect deployment run 'backfill/backfill' --param start=2026-01-01 --param end=2026-01-07

``prefect.yaml`` at the repository root describes the same two deployments for work pools.
"""

from __future__ import annotations

from prefect import serve
from prefect.schedules import Cron

from flows.pipeline import backfill, nightly_retrain, yesterday

NIGHTLY_CRON = "0 2 * * *"


def deployments(timezone: str = "UTC", cron: str = NIGHTLY_CRON) -> list:
    yesterday(timezone)  # an unknown time zone is refused here, before anything is served
    return [
        nightly_retrain.to_deployment(
            name="nightly", schedules=[Cron(cron, timezone=timezone)],
            parameters={"timezone": timezone}, tags=["drpo", "nightly"],
            description="Retrain on the window before yesterday's logs; gate and promote."),
        backfill.to_deployment(
            name="backfill", tags=["drpo", "backfill"],
            description="Ingest and validate a date range, then retrain as asked."),
    ]


def serve_all(timezone: str = "UTC", cron: str = NIGHTLY_CRON, limit: int = 1) -> None:
    """Block and run both deployments' flow runs in this process. Stopping it leaves the
    schedules active: the next ``drpo serve`` (or a worker) picks the nightly runs up again."""
    serve(*deployments(timezone, cron), limit=limit, pause_on_shutdown=False)
