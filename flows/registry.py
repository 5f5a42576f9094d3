"""MLflow: tracking of training runs and the ``drpo-policy`` model registry with aliases.

Defaults are embedded: tracking and registry on ``sqlite:///$DRPO_HOME/mlflow.db`` with a local
artifact root; ``MLFLOW_TRACKING_URI`` points everything at a server instead.

Metrics: the training history (every logged step) is sent after training in batches of 1000
through ``log_batch``, not one call per value, and not during training: an MLflow outage must
not stop a training run, whose checkpoint and policy stay on disk until registration succeeds.

Idempotency: every registration carries a ``run_key`` tag (hash of logical date, data and
config); registering a key that already has a version returns that version instead of adding one.
Promotion moves the ``champion`` alias and records the previous champion in the new champion's
``previous_champion`` tag, which ``rollback`` follows.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flows.settings import drpo_home

MODEL_NAME = "drpo-policy"
EXPERIMENT = "drpo-training"
CHAMPION, CHALLENGER = "champion", "challenger"


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI when the user set it, else the SQLite store under DRPO_HOME."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{drpo_home() / 'mlflow.db'}"


def configure() -> Any:
    """Point MLflow at the tracking store and return a client (creates the experiment)."""
    import mlflow
    from mlflow import MlflowClient

    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    if not os.environ.get("DRPO_VERBOSE"):  # registration chatter; the flow prints a summary
        logging.getLogger("mlflow").setLevel(logging.WARNING)
    uri = tracking_uri()
    user_setting = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    # mlflow.set_tracking_uri also exports MLFLOW_TRACKING_URI; undo that, so a later
    # DRPO_HOME (or a child process) does not inherit this store as if a user had chosen it
    if user_setting is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        os.environ.pop("MLFLOW_REGISTRY_URI", None)
    client = MlflowClient(uri, uri)
    if client.get_experiment_by_name(EXPERIMENT) is None:
        artifacts = (drpo_home() / "mlartifacts").resolve()
        location = artifacts.as_uri() if uri.startswith("sqlite") else None
        client.create_experiment(EXPERIMENT, artifact_location=location)
    mlflow.set_experiment(EXPERIMENT)
    return client


@dataclass(frozen=True)
class RegisteredVersion:
    version: int
    run_id: str
    created: bool  # False: an existing version with the same run_key was reused


def find_version(client: Any, run_key: str) -> Any | None:
    if not all(c in "0123456789abcdef" for c in run_key):
        raise ValueError("run_key must be a hex digest")
    found = client.search_model_versions(
        f"name = '{MODEL_NAME}' and tags.run_key = '{run_key}'")
    return max(found, key=lambda v: int(v.version)) if found else None


def flatten(prefix: str, tree: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(f"{name}.", value))
        else:
            out[name] = value
    return out


def log_and_register(
    client: Any,
    *,
    run_key: str,
    run_name: str,
    params: dict[str, Any],
    history: Iterable[dict[str, float]],
    metrics: dict[str, float],
    artifacts: Iterable[Path],
    json_artifacts: dict[str, Any],
    policy_module: Any,
    torchscript_path: Path,
    d_state: int,
    tags: dict[str, str],
) -> RegisteredVersion:
    """One MLflow run per training, its model registered as a new ``drpo-policy`` version."""
    import mlflow
    import mlflow.pytorch
    import numpy as np
    from mlflow.entities import Metric
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    existing = find_version(client, run_key)
    if existing is not None:
        return RegisteredVersion(int(existing.version), existing.run_id, False)
    with mlflow.start_run(run_name=run_name) as run:
        run_id = run.info.run_id
        mlflow.log_params({k: str(v)[:500] for k, v in flatten("", params).items()})
        mlflow.set_tags(tags)
        batch = [Metric(k, float(v), 0, int(r["step"])) for r in history
                 for k, v in r.items() if k != "step"]
        for i in range(0, len(batch), 1000):
            client.log_batch(run_id, metrics=batch[i : i + 1000])
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
        for path in artifacts:
            if Path(path).exists():
                mlflow.log_artifact(str(path))
        with tempfile.TemporaryDirectory() as tmp:
            for name, payload in json_artifacts.items():
                target = Path(tmp) / name
                target.write_text(json.dumps(payload, indent=2, default=str))
                mlflow.log_artifact(str(target))
        mlflow.log_artifact(str(torchscript_path))
        signature = ModelSignature(
            inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, d_state))]),
            outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, policy_module.out_dim))]),
        )
        example = np.zeros((2, d_state), dtype=np.float32)
        info = mlflow.pytorch.log_model(
            policy_module, name="policy", signature=signature, input_example=example,
            pip_requirements=["torch==2.13.0"], registered_model_name=MODEL_NAME)
    version = int(info.registered_model_version)
    for key, value in {**tags, "run_key": run_key}.items():
        client.set_model_version_tag(MODEL_NAME, str(version), key, str(value))
    return RegisteredVersion(version, run_id, True)


def alias_version(client: Any, alias: str) -> Any | None:
    try:
        return client.get_model_version_by_alias(MODEL_NAME, alias)
    except Exception:  # MLflow raises RestException / MlflowException when absent
        return None


def set_challenger(client: Any, version: int) -> None:
    client.set_registered_model_alias(MODEL_NAME, CHALLENGER, str(version))


def promote(client: Any, version: int, reason: str = "manual") -> int | None:
    """Move ``champion`` to ``version``; returns the previous champion's version."""
    client.get_model_version(MODEL_NAME, str(version))  # fails clearly if it does not exist
    previous = alias_version(client, CHAMPION)
    prev = int(previous.version) if previous is not None else None
    if prev == version:
        return prev
    if prev is not None:
        client.set_model_version_tag(MODEL_NAME, str(version), "previous_champion", str(prev))
    client.set_model_version_tag(MODEL_NAME, str(version), "promotion", reason)
    client.set_registered_model_alias(MODEL_NAME, CHAMPION, str(version))
    return prev


def rollback(client: Any) -> tuple[int, int]:
    """Move ``champion`` back to the version recorded in its ``previous_champion`` tag."""
    current = alias_version(client, CHAMPION)
    if current is None:
        raise ValueError(f"{MODEL_NAME} has no champion to roll back")
    previous = current.tags.get("previous_champion")
    if previous is None:
        raise ValueError(f"champion version {current.version} records no previous champion")
    client.set_registered_model_alias(MODEL_NAME, CHAMPION, previous)
    client.set_model_version_tag(MODEL_NAME, current.version, "rolled_back", "true")
    return int(current.version), int(previous)


def download_policy(client: Any, version: int, dst: Path) -> Path:
    """The TorchScript ``policy.pt`` of a registered version."""
    mv = client.get_model_version(MODEL_NAME, str(version))
    dst.mkdir(parents=True, exist_ok=True)
    return Path(client.download_artifacts(mv.run_id, "policy.pt", str(dst)))
