"""The ``drpo`` command line: it parses and prints, nothing else.

Production commands (ingest, validate, filter, run, backfill, serve, champion, promote,
rollback) call the same jobs (``flows/jobs``) and flows as the Prefect deployments. Research
commands live under ``drpo lab`` (flows/cli_lab.py). Every error ends a command with one line on
stderr: exit 2 for bad input, 1 for a failed run; never a traceback.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.exceptions import TyperException

from drpo_core.warehouse.ingest import parse_date  # the one date parser
from flows.cli_lab import lab
from flows.cli_support import (
    fail,
    pipeline_module,
    run_flow,
    run_parameter_options,
    user_errors,
)
from flows.params import PartitionBy, Retrain, load_parameters

app = typer.Typer(name="drpo", no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False,
                  context_settings={"help_option_names": ["-h", "--help"]},
                  help="DRPO training pipeline: logs -> DuckDB -> CVaR filter -> trainer -> "
                       "MLflow registry.")
app.add_typer(lab, name="lab")
for _command in lab.registered_commands:  # the research commands' old top-level names
    app.command(name=_command.callback.__name__, hidden=True)(_command.callback)

DateOption = Annotated[str, typer.Option(help="YYYY-MM-DD")]
EventDateOption = Annotated[str, typer.Option("--date", "--event-date",
                                              help="the event_date partition, YYYY-MM-DD")]
DbOption = Annotated[Path | None, typer.Option(help="DuckDB file (default $DRPO_DB)")]
ConfigOption = Annotated[Path | None, typer.Option(help="run parameters file (YAML or TOML)")]


def _version(show: bool) -> None:
    if show:
        from drpo_core import __version__

        typer.echo(f"drpo-pipeline {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="print the version and exit")]
        = False) -> None:
    """DRPO training pipeline."""


@app.command()
@user_errors
def ingest(logs: Annotated[str, typer.Option(help="log root: folder or object-store URI")],
           date: EventDateOption, db: DbOption = None,
           force: Annotated[bool, typer.Option(help="re-ingest unchanged files")] = False) -> None:
    """Ingest one event_date of logs into DuckDB; bad rows go to the quarantine table."""
    from flows.jobs import data

    report = data.ingest(logs, parse_date(date, "date"), force=force, db=db)
    if report.status == "skipped_unchanged":
        typer.echo(f"{report.event_date}: unchanged since its last ingest, skipped "
                   f"({report.rows_kept:,} rows)")
        return
    rules = ", ".join(f"{k}={v}" for k, v in report.quarantined_by_rule.items()) or "none"
    typer.echo(f"{report.event_date}: {report.rows_in:,} rows read, {report.rows_kept:,} kept, "
               f"{report.rows_quarantined:,} quarantined ({rules})")


@app.command()
@user_errors
def validate(date: EventDateOption, db: DbOption = None) -> None:
    """Validate one event_date with Great Expectations; exit 1 if a critical check fails."""
    from flows.jobs import data

    outcome = data.validate(parse_date(date, "date"), db=db)
    for w in outcome.warnings:
        typer.echo(f"warning: {w}")
    for c in outcome.critical_failures:
        typer.echo(f"critical: {c}", err=True)
    typer.echo(f"{outcome.event_date}: {'passed' if outcome.success else 'FAILED'} "
               f"(result {outcome.result_path}, data docs {outcome.data_docs})")
    if not outcome.success:
        raise typer.Exit(code=1)


@app.command(name="filter")
@user_errors
def filter_window(start: DateOption, end: DateOption,
                  kappa: Annotated[float, typer.Option(help="kept mass, in (0, 1]")] = 0.5,
                  partition_by: Annotated[PartitionBy, typer.Option()] = "none",
                  db: DbOption = None) -> None:
    """Theorem 4.1 in SQL: the top-kappa cut nu, kept share and CVaR per partition."""
    from flows.jobs import data

    r = data.filter_window(parse_date(start, "start"), parse_date(end, "end"), kappa,
                           partition_by, db=db)
    typer.echo(f"filter {r.filter_id}: {r.window_start}..{r.window_end}, kappa={kappa:g}, "
               f"partition_by={partition_by}, {r.rows_kept:,} of {r.rows_in:,} rows")
    typer.echo(f"{'partition':<14}{'rows':>10}{'kept':>10}{'nu':>10}{'kept share':>12}"
               f"{'CVaR':>10}")
    for p in r.partitions:
        typer.echo(f"{p.partition_value:<14}{p.rows_in:>10,}{p.rows_kept:>10,}{p.nu:>10.4f}"
                   f"{p.kept_share:>12.4f}{p.cvar:>10.4f}")


@app.command()
@user_errors
@run_parameter_options
def run(date: Annotated[str | None, typer.Option(
            "--date", "--logical-date", help="logical date (default: yesterday)")] = None,
        config: ConfigOption = None, *, overrides: dict[str, Any]) -> None:
    """Run the nightly flow once for a logical date (Prefect's embedded API)."""
    params = load_parameters(config, overrides)
    logical_date = parse_date(date, "date") if date else None
    _print_run(run_flow("nightly_retrain", logical_date=logical_date, params=params))


@app.command()
@user_errors
@run_parameter_options
def backfill(start: DateOption, end: DateOption,
             retrain: Annotated[Retrain, typer.Option(help="which dates to retrain")] = "last",
             config: ConfigOption = None, *, overrides: dict[str, Any]) -> None:
    """Ingest and validate a date range in order, then retrain (Prefect's embedded API)."""
    from flows.params import backfill_dates

    params = load_parameters(config, overrides)
    first, last = parse_date(start, "start"), parse_date(end, "end")
    backfill_dates(first, last)  # refused before Prefect starts
    result = run_flow("backfill", start=first, end=last, retrain=retrain, params=params)
    typer.echo(f"backfill {first}..{last}: {result['days']} days, {result['rows']:,} rows")
    for r in result["retrained"]:
        _print_run(r)


def _print_run(result: dict[str, Any]) -> None:
    gate, score = result["gate"], result["evaluation"]["challenger"]
    online = score.get("online") or {}
    typer.echo(
        f"{result['logical_date']}: version {result['version']} "
        f"({'new' if result['created'] else 'reused'}), online reward "
        f"{online.get('mean_reward', float('nan')):.4f}, DR {score['off_policy']['dr']:.4f}; "
        f"gate: {'promoted' if gate['promoted'] else 'not promoted'} ({gate['reason']}); "
        f"champion: version {gate['champion']}")


@app.command()
@user_errors
def promote(version: Annotated[int, typer.Option(help="model version to make champion")]) -> None:
    """Move the champion alias to a registered version by hand."""
    from flows.jobs import promote as jobs

    typer.echo(f"champion: version {version} (was {jobs.promote(version)})")


@app.command()
@user_errors
def rollback() -> None:
    """Move the champion alias back to the previous champion."""
    from flows.jobs import promote as jobs

    current, previous = jobs.rollback()
    typer.echo(f"champion: version {previous} (rolled back from {current})")


@app.command()
@user_errors
def champion() -> None:
    """Show the champion version, its scores, and how to open the UIs."""
    from flows import registry
    from flows.jobs import promote as jobs
    from flows.settings import drpo_home

    mv = jobs.champion()
    typer.echo(f"champion: {registry.MODEL_NAME} version {mv.version} "
               f"(logical date {mv.tags.get('logical_date')}, algorithm "
               f"{mv.tags.get('algorithm')}, data {mv.tags.get('data_hash')})")
    for key, value in sorted(mv.tags.items()):
        if key.startswith(("eval.", "gate.gain_", "window_")) or key == "validation_data_docs":
            typer.echo(f"  {key.removeprefix('eval.')}: {value}")
    typer.echo(f"open the UIs: make ui  (or {Path(sys.executable).parent / 'drpo'} ui; "
               f"DRPO_HOME={drpo_home()})")


@app.command()
@user_errors
def ui(mlflow_port: Annotated[int, typer.Option(help="MLflow UI port")] = 5055,
       prefect_port: Annotated[int, typer.Option(help="Prefect server port")] = 4200) -> None:
    """Start the MLflow UI and a Prefect server on this DRPO_HOME; Ctrl-C stops both."""
    from flows import ui as servers

    procs = servers.start(mlflow_port, prefect_port)
    for name, (_, url) in servers.commands(mlflow_port, prefect_port).items():
        typer.echo(f"{name}: {url}")
    typer.echo("Ctrl-C stops both")
    servers.wait(procs)


@app.command()
@user_errors
def serve(timezone: Annotated[str, typer.Option(help="time zone of the nightly cron")] = "UTC",
          cron: Annotated[str, typer.Option(help="nightly schedule")] = "0 2 * * *",
          limit: Annotated[int, typer.Option(help="flow runs at once (one DuckDB writer)")] = 1
          ) -> None:
    """Serve the nightly (cron) and backfill deployments; needs PREFECT_API_URL."""
    pipeline_module()
    from flows.serve import serve_all

    if not os.environ.get("PREFECT_API_URL"):
        fail("PREFECT_API_URL is not set: start a Prefect server and point it there")
    typer.echo(f"serving nightly_retrain/nightly ({cron}, {timezone}) and backfill/backfill")
    serve_all(timezone, cron, limit)


def main() -> None:
    """The console entry: a usage error (unknown option, bad choice) is one line too."""
    try:
        code = app(standalone_mode=False)
    except typer.Abort:
        code = 1
    except TyperException as err:  # click's usage errors, vendored by typer
        message = err.format_message() if hasattr(err, "format_message") else str(err)
        typer.echo(f"error: {message.replace('Value error, ', '')}", err=True)
        code = getattr(err, "exit_code", 2)
    sys.exit(code or 0)


if __name__ == "__main__":  # pragma: no cover
    main()
