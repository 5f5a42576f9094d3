"""The ``drpo`` command line. Each command is a thin shell over ``drpo_core`` (and later flows).

Errors in user input end the command with one line on stderr naming the field and what was
expected, and exit code 2; nothing is written half-way.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError

from flows.settings import drpo_home

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
    field = ".".join(str(p) for p in first["loc"]) or "config"
    msg = first["msg"].removeprefix("Value error, ")
    return f"{field}: {msg}"


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


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
