"""The pipeline's steps as plain functions: Prefect tasks (flows/pipeline.py) call these, and so
does the orchestration benchmark (the same work without the orchestrator).

Each step is a thin shell over ``drpo_core`` and ``sql``: it opens what it needs (the DuckDB
file, the MLflow client), calls the library and returns plain, serialisable results.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

import sql
from drpo_core.data import TrainingData, log_metadata
from drpo_core.diagnostics import policy_health
from drpo_core.evaluation.off_policy import estimate
from drpo_core.evaluation.online import eval_users, evaluate_policy
from drpo_core.export import load_policy
from drpo_core.policy import MeanActionHead
from drpo_core.schema import simulator_config_from_metadata
from drpo_core.trainer import TrainConfig
from drpo_core.training_run import POLICY_FILE, run_training
from drpo_core.warehouse import open_warehouse
from drpo_core.warehouse.cvar_filter import SQL_FILES, cvar_filter
from drpo_core.warehouse.export import export_window
from drpo_core.warehouse.ingest import ingest_partition
from flows import registry
from flows.gate import GateConfig, GateDecision, Scorecard, decide
from flows.settings import db_path, drpo_home, gx_root, log_root, validation_dir
from flows.validation import ValidationConfig, validate_day

OPE_ROWS = 20_000  # held-out rows used for the off-policy estimate (seeded sample)


class ValidationFailedError(RuntimeError):
    """A critical expectation failed: the run stops before training."""


@dataclass
class WindowResult:
    data: TrainingData
    filter: dict[str, Any]


@dataclass
class TrainStep:
    run_dir: Path
    run_key: str
    history: list[dict[str, float]]
    final: dict[str, float]
    reused: bool
    config: dict[str, Any]
    health: dict[str, Any] = field(default_factory=dict)


def ingest(logs: Path, day: dt.date) -> dict[str, Any]:
    with open_warehouse(db_path()) as wh:
        report = ingest_partition(wh, logs, day, log_root=log_root())
    out = asdict(report)
    out["event_date"] = day.isoformat()
    return out


def validate(day: dt.date, config: ValidationConfig | None = None) -> dict[str, Any]:
    with open_warehouse(db_path()) as wh:
        outcome = validate_day(wh, day, config or ValidationConfig(), gx_root(),
                               validation_dir())
    result = {"event_date": day.isoformat(), "success": outcome.success,
              "critical_failures": outcome.critical_failures, "warnings": outcome.warnings,
              "result_path": str(outcome.result_path), "statistics": outcome.statistics}
    if not outcome.success:
        raise ValidationFailedError(
            f"validation of {day} failed: " + "; ".join(outcome.critical_failures)
            + f" (result: {outcome.result_path})")
    return result


def prepare_window(start: dt.date, end: dt.date, kappa: float, partition_by: str
                   ) -> WindowResult:
    """Theorem 4.1 in SQL over the window, then the kept rows as tensors."""
    with open_warehouse(db_path()) as wh:
        report = cvar_filter(wh, start, end, kappa, partition_by)
        data = export_window(wh, start, end, filtered=True)
    summary = {"filter_id": report.filter_id, "window_start": start.isoformat(),
               "window_end": end.isoformat(), "kappa": kappa, "partition_by": partition_by,
               "rows_in": report.rows_in, "rows_kept": report.rows_kept,
               "sql_hash": report.sql_hash,
               "partitions": [asdict(p) for p in report.partitions]}
    return WindowResult(data, summary)


def run_key(logical_date: dt.date, data: TrainingData, config: TrainConfig) -> str:
    """Same date, data and config => same key => one registered version."""
    h = hashlib.sha256()
    h.update(logical_date.isoformat().encode())
    h.update(data.fingerprint().encode())
    h.update(json.dumps(config.model_dump(mode="json"), sort_keys=True).encode())
    h.update(sql.sql_hash(*SQL_FILES, "ingest_partition").encode())
    return h.hexdigest()[:16]


def train(logical_date: dt.date, window: WindowResult, config: TrainConfig,
          progress: bool = True) -> TrainStep:
    """Train into ``runs/<date>/<run_key>``; a finished run is reused, a killed one resumed."""
    key = run_key(logical_date, window.data, config)
    run_dir = drpo_home() / "runs" / logical_date.isoformat() / key
    metrics_file = run_dir / "metrics.json"
    reused = (run_dir / POLICY_FILE).exists() and metrics_file.exists()
    if not reused:
        resume = (run_dir / "checkpoint.pt").exists()
        run_training(config, window.data, run_dir, resume=resume, overwrite=not resume,
                     progress=progress)
    metrics = json.loads(metrics_file.read_text())
    health = policy_health(metrics["history"], config.policy)
    return TrainStep(run_dir, key, metrics["history"], metrics["final"], reused,
                     config.model_dump(mode="json") | {"objective":
                                                       config.resolved_objective()},
                     asdict(health))


def _heldout(day: dt.date, seed: int) -> dict[str, np.ndarray]:
    """A seeded sample of the held-out day and the catalogue seen in the warehouse."""
    with open_warehouse(db_path(), read_only=True) as wh:
        rows = wh.con.sql(
            "SELECT state, item_id, reward, behavior_logprob FROM interactions "
            "WHERE event_date = $d ORDER BY event_id", params={"d": day}).to_arrow_table()
        items = wh.con.sql("SELECT item_id, any_value(action) AS action FROM interactions "
                           "GROUP BY item_id ORDER BY item_id").to_arrow_table()
    if rows.num_rows == 0:
        raise ValueError(f"no held-out rows on {day}")
    rng = np.random.default_rng(seed)
    take = np.sort(rng.choice(rows.num_rows, size=min(OPE_ROWS, rows.num_rows), replace=False))
    rows = rows.take(take)
    index = {item: k for k, item in enumerate(items.column("item_id").to_pylist())}
    return {
        "states": np.stack(rows.column("state").to_numpy(zero_copy_only=False)).astype(
            np.float32),
        "items": np.array([index[i] for i in rows.column("item_id").to_pylist()]),
        "rewards": rows.column("reward").to_numpy(),
        "logprob": rows.column("behavior_logprob").to_numpy(),
        "catalogue": np.stack(items.column("action").to_numpy(zero_copy_only=False)).astype(
            np.float32),
    }


def evaluate(policy_path: Path, logs: Path, heldout_day: dt.date, eval_users_n: int = 2000,
             seed: int = 0) -> dict[str, Any]:
    """Online score in the simulator (when the logs carry its config) and the off-policy
    estimate on the held-out day, for one TorchScript policy."""
    module = load_policy(policy_path)

    def act(states: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.from_numpy(states)).numpy()

    held = _heldout(heldout_day, seed)
    ope = estimate(held["states"], held["items"], held["rewards"], held["logprob"],
                   act(held["states"]), held["catalogue"], seed=seed)
    result: dict[str, Any] = {"off_policy": ope.as_dict(), "online": None}
    sim = _simulator_meta(logs, heldout_day)
    if sim is not None:
        from drpo_core.sim import SimConfig, World

        world = World.build(SimConfig.model_validate(sim["config"]))
        users = eval_users(world, eval_users_n, "test", int(sim.get("day_index", 0)))
        result["online"] = evaluate_policy(world, act, users).as_dict()
    return result


def _simulator_meta(logs: Path, day: dt.date) -> dict | None:
    folder = Path(logs) / f"event_date={day.isoformat()}"
    if folder.is_dir():
        import pyarrow.parquet as pq

        for f in sorted(folder.glob("*.parquet")):
            return simulator_config_from_metadata(pq.read_schema(f))
    _, meta = log_metadata(logs)
    return meta


def scorecard(evaluation: dict[str, Any], health: dict[str, Any]) -> Scorecard:
    online = evaluation.get("online")
    if online is not None:
        score, tail = online["mean_reward"], online["reward_cvar10"]
    else:
        score, tail = evaluation["off_policy"]["dr"], evaluation["off_policy"]["dr_cvar10"]
    finite = bool(np.isfinite([score, tail]).all())
    reasons = tuple(health.get("reasons", ())) + (() if finite else ("non-finite evaluation",))
    return Scorecard(float(score), float(tail), bool(health.get("healthy")) and finite, reasons)


def register(logical_date: dt.date, train_step: TrainStep, window: WindowResult,
             evaluation: dict[str, Any], validation: dict[str, Any]) -> dict[str, Any]:
    """Log the run to MLflow and register the policy; ``challenger`` alias if healthy."""
    client = registry.configure()
    run_dir = train_step.run_dir
    head = MeanActionHead(_policy_from_run(run_dir, train_step.config))
    online = evaluation.get("online") or {}
    metrics = {**{f"final/{k}": v for k, v in train_step.final.items() if k != "step"},
               **{f"eval/ope_{k}": v for k, v in evaluation["off_policy"].items()},
               **{f"eval/online_{k}": v for k, v in online.items()}}
    tags = {
        "logical_date": logical_date.isoformat(),
        "window": f"{window.filter['window_start']}..{window.filter['window_end']}",
        "kappa": str(window.filter["kappa"]),
        "data_hash": window.data.fingerprint(),
        "sql_hash": window.filter["sql_hash"],
        "git_sha": _git_sha(),
        "validation": "passed" if validation.get("success") else "failed",
        "algorithm": train_step.config["algorithm"],
        "healthy": str(train_step.health.get("healthy")),
        **{k: f"{v:.6g}" for k, v in metrics.items() if k.startswith("eval/")
           and isinstance(v, float)},
    }
    tags = {k.replace("/", "."): v for k, v in tags.items()}
    version = registry.log_and_register(
        client, run_key=train_step.run_key, run_name=f"{train_step.config['algorithm']}-"
        f"{logical_date.isoformat()}", params=train_step.config, history=train_step.history,
        metrics=metrics,
        artifacts=[run_dir / n for n in ("loss.png", "keep_share.png", "sigma.png",
                                         "metrics.json", "config.json")],
        json_artifacts={"filter_run.json": window.filter, "validation.json": validation,
                        "evaluation.json": evaluation,
                        "data_manifest.json": {"data_hash": window.data.fingerprint(),
                                               "rows": window.data.n_rows,
                                               "window": window.filter}},
        policy_module=head, torchscript_path=run_dir / POLICY_FILE,
        d_state=window.data.d_state, tags=tags)
    if train_step.health.get("healthy"):
        registry.set_challenger(client, version.version)
    return {"version": version.version, "run_id": version.run_id, "created": version.created}


def gate(version: int, challenger_eval: dict[str, Any], challenger_health: dict[str, Any],
         logs: Path, heldout_day: dt.date, config: GateConfig, eval_users_n: int = 2000
         ) -> dict[str, Any]:
    """Compare with @champion on the same held-out data; move ``champion`` if it passes."""
    client = registry.configure()
    challenger = scorecard(challenger_eval, challenger_health)
    champion_mv = registry.alias_version(client, registry.CHAMPION)
    champion = None
    champion_eval = None
    if champion_mv is not None and int(champion_mv.version) != version:
        path = registry.download_policy(client, int(champion_mv.version),
                                        drpo_home() / "registry-cache" / str(champion_mv.version))
        champion_eval = evaluate(path, logs, heldout_day, eval_users_n)
        champion = scorecard(champion_eval, {"healthy": True})
    elif champion_mv is not None:
        return {"promoted": False, "reason": f"version {version} already is the champion",
                "champion": version}
    decision: GateDecision = decide(challenger, champion, config)
    if decision.promote:
        registry.promote(client, version, reason=decision.reason)
    current = registry.alias_version(client, registry.CHAMPION)
    return {"promoted": decision.promote, "reason": decision.reason,
            "challenger": asdict(challenger), "champion_scorecard":
            asdict(champion) if champion else None,
            "champion": int(current.version) if current is not None else None}


def _policy_from_run(run_dir: Path, config: dict[str, Any]) -> torch.nn.Module:
    """Rebuild the eager policy from the run's checkpoint (for MLflow's pytorch flavour)."""
    from drpo_core.policy import GaussianPolicy, PolicyConfig

    state = torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=True)
    weights = {k.removeprefix("policy."): v for k, v in state["objective"].items()
               if k.startswith("policy.")}
    d_state = weights["trunk.0.weight"].shape[1] if "trunk.0.weight" in weights else \
        weights["mean_head.weight"].shape[1]
    d_action = weights["mean_head.weight"].shape[0]
    policy = GaussianPolicy(d_state, d_action, PolicyConfig.model_validate(config["policy"]))
    policy.load_state_dict(weights)
    return policy.eval()


def _git_sha() -> str:
    import subprocess

    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=5, cwd=Path(__file__).parent)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"
