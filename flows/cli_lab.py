"""``drpo lab``: the research commands, apart from the production ones: simulate logs, train
and evaluate a policy without Prefect or MLflow, reproduce the paper's study."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from drpo_core.warehouse.ingest import parse_date
from flows.cli_support import fail, parse_overrides, user_errors
from flows.params import train_config
from flows.settings import drpo_home

QualityOption = Annotated[str | None, typer.Option(
    help="what the filter ranks (drpo, drpo_exp, adaptive_bc, filtered_bc): reward | advantage "
    "| q | return; default: the objective's (reward)")]
GammaOption = Annotated[float | None, typer.Option(
    help="discount of return, and of the critics' targets (advantage, q, iql, crr); 0 = the "
    "bandit case")]

lab = typer.Typer(name="lab", no_args_is_help=True, add_completion=False,
                  help="Research commands: simulate, train, evaluate, reproduce.")


@lab.command()
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
    from drpo_core.sim import LogSimulator

    config = _sim_config(scenario, seed, mixture, parse_overrides(set_ or []))
    target = out if out is not None else drpo_home() / "logs" / config.scenario
    result = LogSimulator(config).write(target, parse_date(start_date, "start_date"), days,
                                        rows_per_day, progress=progress)
    verb = "reused identical simulation in" if result.skipped else "wrote"
    typer.echo(f"{verb} {result.out}: {result.rows:,} rows, {len(result.dates)} days "
               f"{result.dates[0]}..{result.dates[-1]} (scenario {config.scenario}, "
               f"seed {seed})")


def _sim_config(scenario: str, seed: int, mixture: str | None, overrides: dict) -> Any:
    """A named scenario, or a custom one from ``expert,popular,random`` shares."""
    from drpo_core.sim import LoggingMixture, SimConfig, scenario_config

    overrides = overrides | {"seed": seed}
    if mixture is None:
        return scenario_config(scenario, **overrides)
    parts = mixture.split(",")
    if len(parts) != 3:
        raise ValueError(f"mixture: expected three comma-separated shares, got {mixture!r}")
    try:
        e, p, r = (float(x) for x in parts)
    except ValueError:
        raise ValueError(f"mixture: shares must be numbers, got {mixture!r}") from None
    overrides = {"scenario": "custom"} | overrides
    return SimConfig(**overrides, mixture=LoggingMixture(expert=e, popular=p, random=r))


@lab.command()
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
    quality: QualityOption = None,
    gamma: GammaOption = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="objective field key=value (e.g. --set temperature=0.1)"),
    ] = None,
    resume: Annotated[bool, typer.Option(help="continue from output/checkpoint.pt")] = False,
    overwrite: Annotated[bool, typer.Option(help="replace an earlier run in output")] = False,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
) -> None:
    """Train a policy from logs with one algorithm (no Prefect, no MLflow)."""
    from drpo_core.trainer import CheckpointError, NonFiniteLossError
    from drpo_core.training_run import run_training

    named = {k: v for k, v in (("quality", quality), ("gamma", gamma)) if v is not None}
    config = train_config(algorithm, steps, batch_size, seed, device=device,
                          objective=parse_overrides(set_ or []) | named)
    window = _load_logs(data, start_date, end_date, config.data_needs())
    _cap_threads()
    try:
        out = run_training(config, window, output, resume=resume, overwrite=overwrite,
                           progress=progress)
    except (CheckpointError, NonFiniteLossError) as err:
        fail(str(err))
    if out.result.steps and out.policy_path.exists():
        shown = ", ".join(f"{k}={v:.4g}" for k, v in out.result.final_metrics.items())
        typer.echo(f"trained {algorithm} on {window.n_rows:,} rows for {out.result.steps} "
                   f"steps -> {out.policy_path}\n  {shown}")


def _cap_threads() -> None:
    """One process on this machine: no more torch threads than cores (torchrun sets its own)."""
    import torch

    if os.environ.get("WORLD_SIZE") is None:
        torch.set_num_threads(max(1, min(torch.get_num_threads(), os.cpu_count() or 1)))


def _load_logs(data: Path, start_date: str | None, end_date: str | None,
               needs: Any = None) -> Any:
    """The logs' rows as tensors (plus the return-to-go or episode links ``needs`` asks for),
    their dimensions checked against the Parquet metadata."""
    from drpo_core.data import log_metadata
    from drpo_core.warehouse.sessions import load_training_logs

    (d_state, d_action), _ = log_metadata(data)
    window = load_training_logs(data, start_date and parse_date(start_date, "start_date"),
                                end_date and parse_date(end_date, "end_date"), needs)
    for name, meta, actual in (("state", d_state, window.d_state),
                               ("action", d_action, window.d_action)):
        if meta is not None and meta != actual:
            raise ValueError(f"{name} dimension is {actual} in the data but {meta} in its "
                             "Parquet metadata")
    return window


@lab.command()
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
    from drpo_core.data import log_metadata
    from drpo_core.evaluation.online import eval_users, evaluate_policy
    from drpo_core.export import load_policy
    from drpo_core.inference import numpy_policy
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
    result = evaluate_policy(world, numpy_policy(module), users).as_dict()
    text = json.dumps(result, indent=2)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text + "\n")
    typer.echo(text)
    typer.echo(f"score {result['score']:.1f} (0 = random item, 100 = oracle), "
               f"reward {result['mean_reward']:.4f}, eCPM {result['ecpm']:.3f}")


@lab.command()
@user_errors
def reproduce(
    output: Annotated[Path, typer.Option(help="folder for results.json, tables.md, PNGs")],
    quick: Annotated[bool, typer.Option(help="the small study (CI): about three minutes")] = False,
    only: Annotated[
        list[str] | None,
        typer.Option(help="only these parts (merged into OUTPUT/results.json when it holds a "
                          "study of the same size): table1, rq1, noise, ablation, "
                          "fixed_ratios, online, kappa_sweep, investigation, conditions, quality"),
    ] = None,
    jobs: Annotated[int | None, typer.Option(
        min=1, help="parts run in parallel processes (default: 2 for the full study)")] = None,
) -> None:
    """Reproduce the paper's tables and figures on the simulator (multi-seed, 95% CIs)."""
    from drpo_core.experiments.runner import reproduce as run_study

    result = run_study(output, quick=quick, only=only, jobs=jobs)
    typer.echo((output / "tables.md").read_text())
    typer.echo(f"wrote {output / 'results.json'} in "
               f"{sum(result['seconds'].values()):.0f} s")
