"""The ``drpo`` command line. Each command is a thin shell over ``drpo_core`` (and later flows).

Errors in user input end the command with one line on stderr naming the field and what was
expected, and exit code 2; nothing is written half-way.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError

from flows.settings import db_path, drpo_home, gx_root, log_root, validation_dir

app = typer.Typer(
    name="drpo",
    help="DRPO training pipeline: simulate logs, train and evaluate recommendation policies.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


def describe_validation_error(err: ValidationError) -> str:
    first = err.errors()[0]
    field = ".".join(str(p) for p in first["loc"])
    msg = first["msg"].removeprefix("Value error, ")
    return f"{field}: {msg}" if field else msg


def user_errors(func: F) -> F:
    """Turn expected input errors into one-line messages with exit code 2."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ValidationError as err:
            fail(describe_validation_error(err))
        except (ValueError, FileNotFoundError, FileExistsError) as err:
            fail(str(err))

    return wrapper  # type: ignore[return-value]


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``key=value`` pairs; values parsed as JSON when possible (numbers, null, lists)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects key=value, got {pair!r}")
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw
    return out


@app.command()
def version() -> None:
    """Print the versions of drpo-pipeline and its main libraries."""
    from importlib.metadata import version as v

    import drpo_core

    typer.echo(f"drpo-pipeline {drpo_core.__version__}")
    for pkg in ("torch", "duckdb", "pyarrow", "prefect", "mlflow", "great-expectations"):
        try:
            typer.echo(f"  {pkg} {v(pkg)}")
        except Exception:  # pragma: no cover - a missing optional package
            typer.echo(f"  {pkg} (not installed)")
    typer.echo(f"  python {sys.version.split()[0]}")


@app.command()
@user_errors
def simulate(
    out: Annotated[
        Path | None, typer.Option(help="output dir (default: $DRPO_HOME/logs/<scenario>)")
    ] = None,
    scenario: Annotated[str, typer.Option(help="logging mixture: medium | extreme")] = "medium",
    days: Annotated[int, typer.Option(help="number of consecutive days")] = 7,
    rows_per_day: Annotated[int, typer.Option(help="logged interactions per day")] = 100_000,
    seed: Annotated[int, typer.Option(help="seed of the world and the logs")] = 0,
    start_date: Annotated[str, typer.Option(help="first event_date, YYYY-MM-DD")] = "2026-01-01",
    mixture: Annotated[
        str | None,
        typer.Option(help="custom expert,popular,random shares summing to 1, e.g. 0.2,0.5,0.3"),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="any simulator field, key=value (e.g. --set d=10)"),
    ] = None,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
) -> None:
    """Simulate logged interactions (RecSim-style, App. H) as hive-partitioned Parquet."""
    from drpo_core.sim import LoggingMixture, LogSimulator, scenario_config

    overrides = parse_overrides(set_ or [])
    overrides["seed"] = seed
    if mixture is not None:
        parts = mixture.split(",")
        if len(parts) != 3:
            raise ValueError(f"mixture: expected three comma-separated shares, got {mixture!r}")
        try:
            e, p, r = (float(x) for x in parts)
        except ValueError:
            raise ValueError(f"mixture: shares must be numbers, got {mixture!r}") from None
        overrides["mixture"] = LoggingMixture(expert=e, popular=p, random=r)
        overrides.setdefault("scenario", "custom")
    try:
        first = dt.date.fromisoformat(start_date)
    except ValueError:
        raise ValueError(f"start_date: expected YYYY-MM-DD, got {start_date!r}") from None
    scenario_name = scenario if "mixture" not in overrides else overrides.pop("scenario", scenario)
    if mixture is None:
        config = scenario_config(scenario, **overrides)
    else:
        from drpo_core.sim import SimConfig

        config = SimConfig(scenario=scenario_name, **overrides)
    target = out if out is not None else drpo_home() / "logs" / config.scenario
    result = LogSimulator(config).write(target, first, days, rows_per_day, progress=progress)
    verb = "reused identical simulation in" if result.skipped else "wrote"
    typer.echo(
        f"{verb} {result.out}: {result.rows:,} rows, {len(result.dates)} days "
        f"{result.dates[0]}..{result.dates[-1]} (scenario {config.scenario}, seed {seed})"
    )


def _parse_date(value: str | None, name: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{name}: expected YYYY-MM-DD, got {value!r}") from None


@app.command()
@user_errors
def train(
    data: Annotated[Path, typer.Option(help="log directory (Parquet in the log contract)")],
    output: Annotated[Path, typer.Option(help="run directory for policy.pt, metrics, plots")],
    algorithm: Annotated[str, typer.Option(help="objective name, e.g. drpo, bc, iql")] = "drpo",
    steps: Annotated[int, typer.Option(help="gradient steps")] = 5000,
    batch_size: Annotated[int, typer.Option(help="global batch size")] = 320,
    seed: Annotated[int, typer.Option(help="seed of weights and sampling")] = 0,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda | cuda:N")] = "auto",
    start_date: Annotated[str | None, typer.Option(help="first event_date used")] = None,
    end_date: Annotated[str | None, typer.Option(help="last event_date used")] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="objective field key=value (e.g. --set temperature=0.1)"),
    ] = None,
    resume: Annotated[bool, typer.Option(help="continue from output/checkpoint.pt")] = False,
    overwrite: Annotated[bool, typer.Option(help="replace an earlier run in output")] = False,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
) -> None:
    """Train a policy from logs with one algorithm (no Prefect, no MLflow)."""
    import torch

    from drpo_core.data import load_training_data, log_metadata
    from drpo_core.trainer import CheckpointError, NonFiniteLossError, TrainConfig
    from drpo_core.training_run import run_training

    log_every = min(100, max(steps, 1))
    config = TrainConfig(algorithm=algorithm, steps=steps, batch_size=batch_size, seed=seed,
                         device=device, objective=parse_overrides(set_ or []),
                         log_every=log_every,
                         checkpoint_every=log_every * max(1, steps // 5 // log_every))
    (d_state, d_action), _ = log_metadata(data)
    window = load_training_data(data, _parse_date(start_date, "start_date"),
                                _parse_date(end_date, "end_date"))
    for name, meta, actual in (("state", d_state, window.d_state),
                               ("action", d_action, window.d_action)):
        if meta is not None and meta != actual:
            raise ValueError(f"{name} dimension is {actual} in the data but {meta} in its "
                             "Parquet metadata")
    if os.environ.get("WORLD_SIZE") is None:
        torch.set_num_threads(max(1, min(torch.get_num_threads(), os.cpu_count() or 1)))
    try:
        out = run_training(config, window, output, resume=resume, overwrite=overwrite,
                           progress=progress)
    except (CheckpointError, NonFiniteLossError) as err:
        fail(str(err))
    final = out.result.final_metrics
    if out.result.steps and out.policy_path.exists():
        shown = ", ".join(f"{k}={v:.4g}" for k, v in final.items())
        typer.echo(f"trained {algorithm} on {window.n_rows:,} rows for {out.result.steps} "
                   f"steps -> {out.policy_path}\n  {shown}")


@app.command()
@user_errors
def evaluate(
    policy: Annotated[Path, typer.Option(help="TorchScript policy.pt")],
    logs: Annotated[
        Path | None, typer.Option(help="simulated logs whose world to evaluate in")
    ] = None,
    scenario: Annotated[str, typer.Option(help="scenario when no --logs is given")] = "medium",
    seed: Annotated[int, typer.Option(help="world seed when no --logs is given")] = 0,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="simulator field key=value (no --logs)")
    ] = None,
    n_users: Annotated[int, typer.Option(help="fresh evaluation users")] = 2000,
    split: Annotated[str, typer.Option(help="validation | test")] = "test",
    day: Annotated[int, typer.Option(help="interest drift day of the users")] = 0,
    output: Annotated[Path | None, typer.Option(help="write the metrics JSON here")] = None,
) -> None:
    """Score a policy online in the simulator (KNN retrieval, noise-free reward)."""
    import numpy as np
    import torch

    from drpo_core.data import log_metadata
    from drpo_core.evaluation.online import eval_users, evaluate_policy
    from drpo_core.export import load_policy
    from drpo_core.sim import SimConfig, World, scenario_config

    if logs is not None:
        _, sim_meta = log_metadata(logs)
        if sim_meta is None:
            raise ValueError(f"logs in {logs} carry no simulator config; use --scenario")
        config = SimConfig.model_validate(sim_meta["config"])
    else:
        config = scenario_config(scenario, seed=seed, **parse_overrides(set_ or []))
    module = load_policy(policy)
    world = World.build(config)
    users = eval_users(world, n_users, split, day)

    def act(states: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            try:
                return module(torch.from_numpy(states)).numpy()
            except RuntimeError as err:
                raise ValueError(
                    f"policy {policy} does not accept states of dimension {states.shape[1]} "
                    f"({str(err).splitlines()[0]})"
                ) from None

    result = evaluate_policy(world, act, users).as_dict()
    text = json.dumps(result, indent=2)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text + "\n")
    typer.echo(text)
    typer.echo(f"score {result['score']:.1f} (0 = random item, 100 = oracle), "
               f"reward {result['mean_reward']:.4f}, eCPM {result['ecpm']:.3f}")


@app.command()
@user_errors
def ingest(
    logs: Annotated[Path, typer.Option(help="log root with event_date=YYYY-MM-DD folders")],
    date: Annotated[str, typer.Option(help="the event_date partition to ingest")],
    db: Annotated[Path | None, typer.Option(help="DuckDB file (default $DRPO_HOME)")] = None,
    force: Annotated[bool, typer.Option(help="re-ingest even if the files are unchanged")] = False,
    timeout: Annotated[float, typer.Option(help="seconds to wait for the writer lock")] = 30.0,
) -> None:
    """Ingest one day of logs into DuckDB; bad rows go to the quarantine table."""
    from drpo_core.warehouse import DatabaseBusyError, open_warehouse
    from drpo_core.warehouse.ingest import IngestError, ingest_partition, parse_date

    day = parse_date(date, "date")
    try:
        with open_warehouse(db or db_path(), timeout=timeout) as wh:
            report = ingest_partition(wh, logs, day, log_root=log_root(), force=force)
    except (IngestError, DatabaseBusyError) as err:
        fail(str(err))
    if report.status == "skipped_unchanged":
        typer.echo(f"{day}: unchanged since its last ingest, skipped ({report.rows_kept:,} rows)")
        return
    rules = ", ".join(f"{k}={v}" for k, v in report.quarantined_by_rule.items()) or "none"
    typer.echo(f"{day}: {report.rows_in:,} rows read, {report.rows_kept:,} kept, "
               f"{report.rows_quarantined:,} quarantined ({rules})")


@app.command()
@user_errors
def validate(
    date: Annotated[str, typer.Option(help="the event_date to validate")],
    db: Annotated[Path | None, typer.Option(help="DuckDB file (default $DRPO_HOME)")] = None,
    max_quarantine_share: Annotated[float, typer.Option(help="critical limit")] = 0.05,
    reward_max: Annotated[float | None, typer.Option(help="declared reward maximum")] = 1.0,
    timeout: Annotated[float, typer.Option(help="seconds to wait for the writer lock")] = 30.0,
) -> None:
    """Validate one day with Great Expectations; exit 1 if a critical expectation fails."""
    from drpo_core.warehouse import DatabaseBusyError, open_warehouse
    from drpo_core.warehouse.ingest import parse_date
    from flows.validation import ValidationConfig, validate_day

    day = parse_date(date, "date")
    config = ValidationConfig(max_quarantine_share=max_quarantine_share, reward_max=reward_max)
    try:
        with open_warehouse(db or db_path(), timeout=timeout) as wh:
            outcome = validate_day(wh, day, config, gx_root(), validation_dir())
    except DatabaseBusyError as err:
        fail(str(err))
    for w in outcome.warnings:
        typer.echo(f"warning: {w}")
    for c in outcome.critical_failures:
        typer.echo(f"critical: {c}", err=True)
    typer.echo(f"{day}: {'passed' if outcome.success else 'FAILED'} "
               f"(result {outcome.result_path}, data docs {outcome.data_docs})")
    if not outcome.success:
        raise typer.Exit(code=1)


@app.command(name="filter")
@user_errors
def filter_window(
    start: Annotated[str, typer.Option(help="first event_date of the window")],
    end: Annotated[str, typer.Option(help="last event_date of the window")],
    kappa: Annotated[float, typer.Option(help="kept probability mass, in (0, 1]")] = 0.5,
    partition_by: Annotated[str, typer.Option(help="none | event_date | segment")] = "none",
    db: Annotated[Path | None, typer.Option(help="DuckDB file (default $DRPO_HOME)")] = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait for the writer lock")] = 30.0,
) -> None:
    """Theorem 4.1 in SQL: the top-kappa threshold nu, kept share and CVaR per partition."""
    from drpo_core.warehouse import DatabaseBusyError, open_warehouse
    from drpo_core.warehouse.cvar_filter import cvar_filter
    from drpo_core.warehouse.ingest import parse_date

    first, last = parse_date(start, "start"), parse_date(end, "end")
    try:
        with open_warehouse(db or db_path(), timeout=timeout) as wh:
            report = cvar_filter(wh, first, last, kappa, partition_by)
    except DatabaseBusyError as err:
        fail(str(err))
    typer.echo(f"filter {report.filter_id}: {first}..{last}, kappa={kappa:g}, "
               f"partition_by={partition_by}, {report.rows_kept:,} of {report.rows_in:,} rows")
    typer.echo(f"{'partition':<14}{'rows':>10}{'kept':>10}{'nu':>10}{'kept share':>12}"
               f"{'CVaR':>10}")
    for p in report.partitions:
        typer.echo(f"{p.partition_value:<14}{p.rows_in:>10,}{p.rows_kept:>10,}{p.nu:>10.4f}"
                   f"{p.kept_share:>12.4f}{p.cvar:>10.4f}")


def _pipeline():  # imported late: Prefect's home must be set first
    from flows.settings import embedded_environment

    embedded_environment()
    from flows import pipeline

    return pipeline


@app.command()
@user_errors
def run(
    date: Annotated[str | None, typer.Option(help="logical date (default: yesterday)")] = None,
    logs: Annotated[Path | None, typer.Option(help="log root (default $DRPO_LOGS)")] = None,
    window_days: Annotated[int, typer.Option(help="training days before the date")] = 7,
    kappa: Annotated[float, typer.Option(help="SQL pre-filter kept mass (1 = none)")] = 1.0,
    algorithm: Annotated[str, typer.Option(help="objective name")] = "drpo",
    train_steps: Annotated[int, typer.Option(help="gradient steps")] = 3000,
    eval_users: Annotated[int, typer.Option(help="simulator evaluation users")] = 2000,
) -> None:
    """Run the nightly flow once for a logical date (Prefect's embedded API)."""
    from drpo_core.warehouse.ingest import parse_date

    day = parse_date(date, "date") if date else None
    result = _pipeline().nightly_retrain(
        logical_date=day, logs=str(logs) if logs else None, window_days=window_days,
        kappa=kappa, algorithm=algorithm, train_steps=train_steps, eval_users=eval_users)
    _print_run(result)


@app.command()
@user_errors
def backfill(
    start: Annotated[str, typer.Option(help="first date, YYYY-MM-DD")],
    end: Annotated[str, typer.Option(help="last date, YYYY-MM-DD")],
    retrain: Annotated[str, typer.Option(help="last | each | none")] = "last",
    logs: Annotated[Path | None, typer.Option(help="log root (default $DRPO_LOGS)")] = None,
    window_days: Annotated[int, typer.Option(help="training days before each date")] = 7,
    kappa: Annotated[float, typer.Option(help="SQL pre-filter kept mass (1 = none)")] = 1.0,
    algorithm: Annotated[str, typer.Option(help="objective name")] = "drpo",
    train_steps: Annotated[int, typer.Option(help="gradient steps")] = 3000,
    eval_users: Annotated[int, typer.Option(help="simulator evaluation users")] = 2000,
) -> None:
    """Ingest and validate a date range in order, then retrain (Prefect's embedded API)."""
    from drpo_core.warehouse.ingest import parse_date

    if retrain not in ("last", "each", "none"):
        raise ValueError(f"retrain must be last, each or none, got {retrain!r}")
    first, last = parse_date(start, "start"), parse_date(end, "end")
    pipeline = _pipeline()
    pipeline.check_range(first, last)
    result = pipeline.backfill(
        start=first, end=last, retrain=retrain, logs=str(logs) if logs else None,
        window_days=window_days, kappa=kappa, algorithm=algorithm, train_steps=train_steps,
        eval_users=eval_users)
    typer.echo(f"backfill {first}..{last}: {result['days']} days, {result['rows']:,} rows")
    for r in result["retrained"]:
        _print_run(r)


def _print_run(result: dict) -> None:
    gate = result["gate"]
    online = (result["evaluation"].get("online") or {})
    typer.echo(
        f"{result['logical_date']}: version {result['version']} "
        f"({'new' if result['created'] else 'reused'}), online reward "
        f"{online.get('mean_reward', float('nan')):.4f}, DR "
        f"{result['evaluation']['off_policy']['dr']:.4f}; gate: "
        f"{'promoted' if gate['promoted'] else 'not promoted'} ({gate['reason']}); "
        f"champion: version {gate.get('champion')}")


@app.command()
@user_errors
def promote(version: Annotated[int, typer.Option(help="model version to make champion")]) -> None:
    """Move the champion alias to a registered version by hand."""
    from flows import registry

    client = registry.configure()
    previous = registry.promote(client, version, reason="manual (drpo promote)")
    typer.echo(f"champion: version {version} (was {previous})")


@app.command()
@user_errors
def rollback() -> None:
    """Move the champion alias back to the previous champion."""
    from flows import registry

    client = registry.configure()
    current, previous = registry.rollback(client)
    typer.echo(f"champion: version {previous} (rolled back from {current})")


@app.command()
@user_errors
def champion() -> None:
    """Show the champion version, its metrics, and how to open the UIs."""
    from flows import registry

    client = registry.configure()
    mv = registry.alias_version(client, registry.CHAMPION)
    if mv is None:
        fail(f"{registry.MODEL_NAME} has no champion yet")
    typer.echo(f"champion: {registry.MODEL_NAME} version {mv.version} "
               f"(logical date {mv.tags.get('logical_date')}, algorithm "
               f"{mv.tags.get('algorithm')}, data {mv.tags.get('data_hash')})")
    for key, value in sorted(mv.tags.items()):
        if key.startswith("eval."):
            typer.echo(f"  {key.removeprefix('eval.')}: {value}")
    home = drpo_home()
    typer.echo("open the UIs:")
    typer.echo(f"  mlflow ui --backend-store-uri sqlite:///{home / 'mlflow.db'} --port 5055")
    typer.echo(f"  PREFECT_HOME={home / 'prefect'} prefect server start --port 4200")


@app.command()
@user_errors
def serve(
    timezone: Annotated[str, typer.Option(help="time zone of the nightly cron")] = "UTC",
    cron: Annotated[str, typer.Option(help="nightly schedule")] = "0 2 * * *",
    limit: Annotated[int, typer.Option(help="flow runs at once (one DuckDB writer)")] = 1,
) -> None:
    """Serve the nightly (cron) and backfill deployments; needs PREFECT_API_URL."""
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(timezone)
    except zoneinfo.ZoneInfoNotFoundError:
        raise ValueError(f"timezone: unknown time zone {timezone!r}") from None
    _pipeline()
    from flows.serve import serve_all

    typer.echo(f"serving nightly_retrain/nightly ({cron}, {timezone}) and backfill/backfill")
    serve_all(timezone, cron, limit)


@app.command()
@user_errors
def reproduce(
    output: Annotated[Path, typer.Option(help="folder for results.json, tables.md, PNGs")],
    quick: Annotated[bool, typer.Option(help="the small study (CI): about three minutes")] = False,
    only: Annotated[
        list[str] | None,
        typer.Option(help="only these parts (merged into OUTPUT/results.json when it holds a "
                          "study of the same size): table1, rq1, noise, ablation, "
                          "fixed_ratios, online, kappa_sweep, investigation"),
    ] = None,
) -> None:
    """Reproduce the paper's tables and figures on the simulator (multi-seed, 95% CIs)."""
    from drpo_core.experiments.runner import reproduce as run_study

    result = run_study(output, quick=quick, only=only)
    typer.echo((output / "tables.md").read_text())
    typer.echo(f"wrote {output / 'results.json'} in "
               f"{sum(result['seconds'].values()):.0f} s")


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
