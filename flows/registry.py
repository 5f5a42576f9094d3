"""MLflow: tracking of training runs and the ``drpo-policy`` model registry with aliases.

Defaults are embedded: tracking and registry on ``sqlite:///$DRPO_HOME/mlflow.db`` with a local
artifact root; ``MLFLOW_TRACKING_URI`` points everything at a server instead.

Registration is keyed by ``run_key`` (hash of logical date, data and config) and is atomic and
idempotent:

- a lock per ``run_key`` (a file lock under ``$DRPO_HOME/locks``, released by the kernel when
  its holder dies, so a kill -9 leaves no stale lease) serialises registrations of one key;
  two processes on other hosts that share only the tracking server are reconciled after the
  fact: the lowest version of a key wins and a later duplicate is deleted;
- the version is created with its tags (``run_key``, lineage, ``policy_sha256``) and its
  description in one call, the last step inside the MLflow run; a kill -9 can therefore leave
  a run without a version (ended FAILED by the next registration of the key) or a version
  whose run is still RUNNING (ended FINISHED by the next registration), never an untagged
  version;
- a registration that raises ends its MLflow run FAILED.

Promotion moves the ``champion`` alias and records the previous champion in the new champion's
``previous_champion`` tag. ``rollback`` moves it back along that chain, skipping blocked
versions, and tags the rolled-back version ``blocked=rolled_back``: automatic promotion
refuses it (the gate sees ``blocked_reason``), a manual ``promote(..., manual=True)`` clears it.

Failures are bounded: ``configure`` caps MLflow's HTTP retries and timeout (unless the user set
them), so an unreachable server fails within ``retry_budget_seconds()`` with one
``RegistryUnavailableError`` line; every message this module produces passes through
``mask_credentials``.

The registered model is the pyfunc of ``flows/recommender.py`` (states -> top-k item ids) when
the catalogue is given; without one, the policy alone is logged with MLflow's pytorch flavour
(states -> mean action), as before.

Metrics: the training history is sent after training in batches of 1000 through
``log_batch``, with the wall-clock time of logging as timestamp; an MLflow outage must not stop
a training run, whose checkpoint and policy stay on disk until registration succeeds.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from flows.settings import drpo_home

MODEL_NAME = "drpo-policy"
EXPERIMENT = "drpo-training"
CHAMPION, CHALLENGER = "champion", "challenger"
BLOCKED_TAG, ROLLED_BACK = "blocked", "rolled_back"
CHECKSUM_TAG = "policy_sha256"
DEFAULT_K = 10
LOCK_TIMEOUT_S = 900.0  # a registration takes seconds; a held lock longer than this is a bug
MODEL_DESCRIPTION = (
    "DRPO recommendation policy (arXiv 2602.10430) trained nightly on the logged interactions "
    "of a window of days. Each version maps a batch of user states (float32, n x d_state) to "
    "the top-k item ids of its catalogue: the policy's mean action is matched to the item "
    "embeddings by cosine similarity. Aliases: champion (served), challenger (newest healthy "
    "version). Tags carry the lineage (logical_date, window, kappa, data_hash, sql_hash, "
    "git_sha) and the gate's outcome.")

# Bounded HTTP behaviour (mlflow.environment_variables, MLflow 3.17); a user's setting wins.
HTTP_LIMITS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "1.0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "15",
}

_T = TypeVar("_T")


def file_sha256(path: str | Path) -> str:
    """The SHA-256 the recommender checks too (flows/recommender.py, which imports mlflow)."""
    from flows.recommender import file_sha256 as sha256

    return sha256(path)


class RegistryUnavailableError(RuntimeError):
    """The tracking server cannot be reached or refuses us; the message is one masked line."""


class PolicyChecksumError(ValueError):
    """A downloaded ``policy.pt`` does not match the SHA-256 recorded on its version."""


class BlockedVersionError(ValueError):
    """Automatic promotion of a version that carries a ``blocked`` tag."""


# --- credentials and bounded failures -------------------------------------------------------

_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):[^@/\s]*@")


def mask_credentials(text: str) -> str:
    """Hide the password of every ``scheme://user:password@host`` and the values of
    ``MLFLOW_TRACKING_PASSWORD`` / ``MLFLOW_TRACKING_TOKEN`` in ``text``."""
    masked = _USERINFO.sub(r"\g<scheme>\g<user>:***@", str(text))
    for name in ("MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
        secret = os.environ.get(name)
        if secret and len(secret) >= 3:
            masked = masked.replace(secret, "***")
    return masked


def retry_budget_seconds() -> float:
    """Worst case of one MLflow HTTP call under the current settings: every attempt times out,
    then urllib3's backoff (factor * 2^(i-1) for the i-th retry after the first, plus jitter)."""
    env = {k: os.environ.get(k, v) for k, v in HTTP_LIMITS.items()}
    retries = int(env["MLFLOW_HTTP_REQUEST_MAX_RETRIES"])
    factor = float(env["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"])
    jitter = float(env["MLFLOW_HTTP_REQUEST_BACKOFF_JITTER"])
    timeout = float(env["MLFLOW_HTTP_REQUEST_TIMEOUT"])
    backoff = sum(factor * 2 ** (i - 1) + jitter for i in range(2, retries + 1))
    return (retries + 1) * timeout + backoff


def _one_line(err: BaseException) -> str:
    text = mask_credentials(str(err))
    for needle, short in (("Connection refused", "connection refused"),
                          ("timed out", "timed out"), ("Timeout", "timed out"),
                          ("Name or service not known", "unknown host"),
                          ("Failed to resolve", "unknown host"),
                          ("Invalid Host header", "403 Invalid Host header (allowed hosts)")):
        if needle in text:
            return short
    code = re.search(r"error code (\d{3})", text)
    if code:
        return f"HTTP {code.group(1)}"
    return " ".join(text.split())[:200]


def _is_transport_failure(err: BaseException) -> bool:
    """MLflow's REST client wraps connection errors, timeouts and non-JSON HTTP errors in an
    MlflowException whose message starts with "API request to"."""
    import requests

    return (isinstance(err, requests.exceptions.RequestException)
            or str(err).startswith("API request to"))


def _bounded(fn: Callable[..., _T]) -> Callable[..., _T]:
    """Turn an unreachable or refusing tracking server into one RegistryUnavailableError."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> _T:
        try:
            return fn(*args, **kwargs)
        except RegistryUnavailableError:
            raise
        except Exception as err:
            if not _is_transport_failure(err):
                raise
            raise RegistryUnavailableError(
                f"MLflow at {mask_credentials(tracking_uri())} is unavailable "
                f"({_one_line(err)}) during {fn.__name__}") from None

    return wrapper


# --- store ----------------------------------------------------------------------------------

def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI when the user set it, else the SQLite store under DRPO_HOME."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{drpo_home() / 'mlflow.db'}"


@_bounded
def configure() -> Any:
    """Point MLflow at the tracking store and return a client (creates the experiment)."""
    import mlflow
    from mlflow import MlflowClient

    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for name, value in HTTP_LIMITS.items():
        os.environ.setdefault(name, value)
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
        with contextlib.suppress(Exception):  # a concurrent configure() created it first
            client.create_experiment(EXPERIMENT, artifact_location=location)
    mlflow.set_experiment(EXPERIMENT)
    return client


# --- lock per run_key ------------------------------------------------------------------------

_locks: dict[Path, Any] = {}
_locks_guard = threading.Lock()


@contextlib.contextmanager
def registration_lock(run_key: str, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Exclusive lease on ``run_key`` across processes sharing DRPO_HOME (re-entrant within a
    process, so a caller may hold it around training and registration)."""
    from filelock import FileLock, Timeout

    _check_key(run_key)
    path = drpo_home() / "locks" / f"register-{run_key}.lock"
    with _locks_guard:
        if path not in _locks:
            path.parent.mkdir(parents=True, exist_ok=True)
            _locks[path] = FileLock(str(path), thread_local=False)
        lock = _locks[path]
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        raise RuntimeError(f"another process holds the registration lock of run_key "
                           f"{run_key} for more than {timeout:g} s") from None
    try:
        yield
    finally:
        lock.release()


def _check_key(run_key: str) -> None:
    if not run_key or not all(c in "0123456789abcdef" for c in run_key):
        raise ValueError(f"run_key must be a hex digest, got {run_key!r}")


# --- versions --------------------------------------------------------------------------------

@dataclass(frozen=True)
class RegisteredVersion:
    version: int
    run_id: str
    created: bool  # False: an existing version with the same run_key was reused
    policy_sha256: str | None = None
    recovered: tuple[str, ...] = ()  # what the registration found and repaired


@dataclass(frozen=True)
class WindowInput:
    """The training window as an MLflow dataset input: its digest is the window's data hash."""

    name: str
    digest: str
    source: str
    summary: list[dict[str, Any]] = field(default_factory=list)  # one row per day/partition


def find_versions(client: Any, run_key: str) -> list[Any]:
    """Every version tagged with ``run_key``, oldest first."""
    _check_key(run_key)
    found = client.search_model_versions(
        f"name = '{MODEL_NAME}' and tags.run_key = '{run_key}'")
    return sorted(found, key=lambda v: int(v.version))


@_bounded
def find_version(client: Any, run_key: str) -> Any | None:
    """The version registered for ``run_key`` (the lowest, should a race have made two)."""
    found = find_versions(client, run_key)
    return found[0] if found else None


def flatten(prefix: str, tree: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(f"{name}.", value))
        else:
            out[name] = value
    return out


def _recover(client: Any, run_key: str) -> tuple[Any | None, tuple[str, ...]]:
    """Finish what a killed registration of ``run_key`` left: a version whose run is still
    RUNNING gets its run ended FINISHED; a RUNNING run without a version is ended FAILED."""
    from mlflow.entities import ViewType

    versions = find_versions(client, run_key)
    keep = versions[0] if versions else None
    done: list[str] = []
    experiment = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs([experiment.experiment_id], f"tags.run_key = '{run_key}'",
                              run_view_type=ViewType.ALL) if experiment else []
    for run in runs:
        if run.info.status not in ("RUNNING", "SCHEDULED"):
            continue
        if keep is not None and run.info.run_id == keep.run_id:
            client.set_terminated(run.info.run_id, "FINISHED")
            done.append(f"ended run {run.info.run_id} of version {keep.version} FINISHED")
        else:
            client.set_tag(run.info.run_id, "drpo.interrupted", "registration killed")
            client.set_terminated(run.info.run_id, "FAILED")
            done.append(f"ended interrupted run {run.info.run_id} FAILED")
    for extra in versions[1:]:  # a race between hosts: the lowest version wins
        client.delete_model_version(MODEL_NAME, extra.version)
        done.append(f"deleted duplicate version {extra.version}")
    return keep, tuple(done)


def _history_metrics(history: Iterable[dict[str, float]]) -> list[Any]:
    """Every logged step as an MLflow Metric with a real timestamp (ms): the row's own
    ``timestamp``/``time`` (seconds) when the trainer recorded one, else now."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    out = []
    for row in history:
        stamp = row.get("timestamp", row.get("time"))
        ms = int(float(stamp) * 1000) if stamp is not None else now
        out.extend(Metric(k, float(v), ms, int(row["step"])) for k, v in row.items()
                   if k not in ("step", "timestamp", "time"))
    return out


def _window_input(tags: dict[str, str], json_artifacts: dict[str, Any]) -> WindowInput | None:
    """A dataset input from the lineage the pipeline already passes (tags and manifest)."""
    digest, window = tags.get("data_hash"), tags.get("window")
    if not digest or not window:
        return None
    manifest = json_artifacts.get("data_manifest.json") or {}
    summary = [{"window": window, "rows": manifest.get("rows"), "data_hash": digest}]
    partitions = (manifest.get("window") or {}).get("partitions")
    if partitions:
        summary = [{k: v for k, v in p.items() if isinstance(v, int | float | str)}
                   for p in partitions]
    from flows.settings import db_path

    return WindowInput(f"window {window}", digest, str(db_path()), summary)


def _log_window(window: WindowInput) -> None:
    import warnings

    import mlflow
    import pandas as pd

    frame = pd.DataFrame(window.summary or [{"digest": window.digest}])
    with warnings.catch_warnings():  # the path source is resolved, int columns can't be null
        warnings.simplefilter("ignore")
        dataset = mlflow.data.from_pandas(frame, source=window.source, name=window.name,
                                          digest=window.digest)
        mlflow.log_input(dataset, context="training")


def version_description(tags: dict[str, str], k: int | None, n_items: int | None) -> str:
    parts = [f"DRPO policy ({tags.get('algorithm', 'unknown algorithm')}) for logical date "
             f"{tags.get('logical_date', '?')}, trained on the window {tags.get('window', '?')}"
             f" (kappa {tags.get('kappa', '?')}, data {tags.get('data_hash', '?')})."]
    if n_items:
        parts.append(f"Predicts the top-{k} item ids of a {n_items}-item catalogue for a batch "
                     "of states (cosine between the policy's mean action and the item "
                     "embeddings).")
    else:
        parts.append("Predicts the policy's mean action embedding for a batch of states.")
    return " ".join(parts)


@_bounded
def log_and_register(
    client: Any, *, run_key: str, run_name: str, params: dict[str, Any],
    history: Iterable[dict[str, float]], metrics: dict[str, float], artifacts: Iterable[Path],
    json_artifacts: dict[str, Any], policy_module: Any, torchscript_path: Path, d_state: int,
    tags: dict[str, str], catalogue_ids: list[str] | None = None,
    catalogue_embeddings: np.ndarray | None = None, k: int = DEFAULT_K,
    window_input: WindowInput | None = None, description: str | None = None,
) -> RegisteredVersion:
    """One MLflow run per training, its model registered as a new ``drpo-policy`` version;
    a ``run_key`` that already has a version returns it (after repairing a killed attempt)."""
    with registration_lock(run_key):
        existing, recovered = _recover(client, run_key)
        if existing is not None:
            return RegisteredVersion(int(existing.version), existing.run_id, False,
                                     existing.tags.get(CHECKSUM_TAG), recovered)
        mv = _register_new(
            client, run_key=run_key, run_name=run_name, params=params, history=history,
            metrics=metrics, artifacts=artifacts, json_artifacts=json_artifacts,
            policy_module=policy_module, torchscript_path=Path(torchscript_path),
            d_state=d_state, tags=tags, catalogue_ids=catalogue_ids,
            catalogue_embeddings=catalogue_embeddings, k=k,
            window_input=window_input or _window_input(tags, json_artifacts),
            description=description)
        winner = find_versions(client, run_key)[0]  # another host may have won the race
        if int(winner.version) != int(mv.version):
            client.delete_model_version(MODEL_NAME, mv.version)
            return RegisteredVersion(int(winner.version), winner.run_id, False,
                                     winner.tags.get(CHECKSUM_TAG),
                                     (*recovered, f"deleted duplicate version {mv.version}"))
        return RegisteredVersion(int(mv.version), mv.run_id, True, mv.tags.get(CHECKSUM_TAG),
                                 recovered)


def _register_new(client: Any, *, run_key: str, run_name: str, params: dict[str, Any],
                  history: Iterable[dict[str, float]], metrics: dict[str, float],
                  artifacts: Iterable[Path], json_artifacts: dict[str, Any],
                  policy_module: Any, torchscript_path: Path, d_state: int,
                  tags: dict[str, str], catalogue_ids: list[str] | None,
                  catalogue_embeddings: np.ndarray | None, k: int,
                  window_input: WindowInput | None, description: str | None) -> Any:
    import mlflow

    if (catalogue_ids is None) != (catalogue_embeddings is None):
        raise ValueError("catalogue_ids and catalogue_embeddings go together")
    sha = file_sha256(torchscript_path)
    version_tags = {**{k_: str(v) for k_, v in tags.items()}, "run_key": run_key,
                    CHECKSUM_TAG: sha}
    n_items = None if catalogue_ids is None else len(catalogue_ids)
    # ``with start_run`` ends the run FAILED when anything below raises
    with mlflow.start_run(run_name=run_name, tags={**tags, "run_key": run_key}) as run:
        run_id = run.info.run_id
        _log_run(client, run_id, params, history, metrics, window_input, artifacts)
        with tempfile.TemporaryDirectory() as tmp:
            for name, payload in json_artifacts.items():
                target = Path(tmp) / name
                target.write_text(json.dumps(payload, indent=2, default=str))
                mlflow.log_artifact(str(target))
            mlflow.log_artifact(str(torchscript_path))
            if catalogue_ids is not None and catalogue_embeddings is not None:
                info = _log_recommender(Path(tmp), torchscript_path, sha, d_state,
                                        catalogue_ids, catalogue_embeddings, k,
                                        getattr(policy_module, "out_dim", None))
            else:
                info = _log_pytorch(policy_module, d_state)
        _ensure_registered_model(client)
        mv = client.create_model_version(
            MODEL_NAME, source=info.model_uri, run_id=run_id, tags=version_tags,
            description=description or version_description(tags, k, n_items),
            model_id=info.model_id)
        with contextlib.suppress(Exception):  # the UI's link from the model to its version
            client.set_logged_model_tags(info.model_id, {"mlflow.modelVersions": json.dumps(
                [{"name": MODEL_NAME, "version": mv.version}])})
        return mv


def _log_run(client: Any, run_id: str, params: dict[str, Any],
             history: Iterable[dict[str, float]], metrics: dict[str, float],
             window_input: WindowInput | None, artifacts: Iterable[Path]) -> None:
    """The active run's params, metric history (batched), final metrics, dataset input and
    files."""
    import mlflow

    mlflow.log_params({k: str(v)[:500] for k, v in flatten("", params).items()})
    batch = _history_metrics(history)
    for i in range(0, len(batch), 1000):
        client.log_batch(run_id, metrics=batch[i : i + 1000])
    mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
    if window_input is not None:
        _log_window(window_input)
    for path in artifacts:
        if Path(path).exists():
            mlflow.log_artifact(str(path))


def _log_recommender(tmp: Path, policy: Path, sha: str, d_state: int, ids: list[str],
                     embeddings: np.ndarray, k: int, d_action: int | None) -> Any:
    import mlflow
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema, TensorSpec

    from flows.recommender import CATALOGUE_ARTIFACT, POLICY_ARTIFACT

    embeddings = np.asarray(embeddings, dtype=np.float32)
    if embeddings.ndim != 2 or len(embeddings) != len(ids):
        raise ValueError(f"catalogue_embeddings must be (n_items={len(ids)}, d_action), got "
                         f"{embeddings.shape}")
    if d_action is not None and embeddings.shape[1] != d_action:
        raise ValueError(f"catalogue_embeddings have {embeddings.shape[1]} columns, the "
                         f"policy's actions {d_action}")
    if not np.isfinite(embeddings).all():
        raise ValueError("catalogue_embeddings must be finite")
    if not 1 <= k <= len(ids):
        raise ValueError(f"k must be between 1 and the catalogue size {len(ids)}, got {k}")
    catalogue = tmp / "catalogue.npz"
    np.savez(catalogue, ids=np.asarray([str(i) for i in ids]), embeddings=embeddings)
    signature = ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, d_state))]),
        outputs=Schema([ColSpec("string", f"item_{r + 1}") for r in range(k)]),
        params=ParamSchema([ParamSpec("k", "long", k)]))
    return mlflow.pyfunc.log_model(
        name="recommender", python_model=str(Path(__file__).with_name("recommender.py")),
        artifacts={POLICY_ARTIFACT: str(policy), CATALOGUE_ARTIFACT: str(catalogue)},
        model_config={"k": k, "policy_sha256": sha}, signature=signature,
        input_example=np.zeros((2, d_state), dtype=np.float32),
        pip_requirements=[f"torch=={_torch_version()}", f"numpy=={np.__version__}"])


def _log_pytorch(policy_module: Any, d_state: int) -> Any:
    import mlflow.pytorch
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    signature = ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, d_state))]),
        outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, policy_module.out_dim))]),
    )
    return mlflow.pytorch.log_model(
        policy_module, name="policy", signature=signature,
        input_example=np.zeros((2, d_state), dtype=np.float32),
        pip_requirements=[f"torch=={_torch_version()}"])


def _torch_version() -> str:
    import torch

    return torch.__version__.split("+")[0]


def _ensure_registered_model(client: Any) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(MODEL_NAME, description=MODEL_DESCRIPTION)
    except MlflowException as err:
        if err.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
            raise
        if not client.get_registered_model(MODEL_NAME).description:
            client.update_registered_model(MODEL_NAME, description=MODEL_DESCRIPTION)


@_bounded
def annotate_version(client: Any, version: int, *, tags: dict[str, Any] | None = None,
                     description_line: str | None = None) -> None:
    """Add tags (e.g. the gate's outcome and interval) and a line to a version's description."""
    for key, value in (tags or {}).items():
        client.set_model_version_tag(MODEL_NAME, str(version), key, str(value))
    if description_line:
        mv = client.get_model_version(MODEL_NAME, str(version))
        text = f"{mv.description}\n\n{description_line}" if mv.description else description_line
        client.update_model_version(MODEL_NAME, str(version), description=text)


# --- aliases ---------------------------------------------------------------------------------

@_bounded
def alias_version(client: Any, alias: str) -> Any | None:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(MODEL_NAME, alias)
    except MlflowException as err:  # absent alias or model: RESOURCE_DOES_NOT_EXIST / 404
        if _is_transport_failure(err):
            raise
        return None


@_bounded
def set_challenger(client: Any, version: int) -> None:
    client.set_registered_model_alias(MODEL_NAME, CHALLENGER, str(version))


def _get_version(client: Any, version: int | str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version(MODEL_NAME, str(version))
    except MlflowException as err:
        if _is_transport_failure(err):
            raise
        raise ValueError(f"{MODEL_NAME} has no version {version}") from None


@_bounded
def blocked_reason(client: Any, version: int) -> str | None:
    """Why automatic promotion must skip ``version`` (e.g. ``rolled_back``), or None."""
    return _get_version(client, version).tags.get(BLOCKED_TAG)


@_bounded
def promote(client: Any, version: int, reason: str = "manual", *, manual: bool = False
            ) -> int | None:
    """Move ``champion`` to ``version``; returns the previous champion's version.

    A blocked version (rolled back) is refused unless ``manual`` (``drpo promote``), which
    clears the block and records who lifted it."""
    mv = _get_version(client, version)
    blocked = mv.tags.get(BLOCKED_TAG)
    if blocked and not manual:
        raise BlockedVersionError(f"version {version} is blocked ({blocked}); only a manual "
                                  "`drpo promote --version` may promote it")
    previous = alias_version(client, CHAMPION)
    prev = int(previous.version) if previous is not None else None
    if blocked:
        client.delete_model_version_tag(MODEL_NAME, str(version), BLOCKED_TAG)
        client.set_model_version_tag(MODEL_NAME, str(version), "unblocked", reason)
    if prev == version:
        return prev
    if prev is not None:
        client.set_model_version_tag(MODEL_NAME, str(version), "previous_champion", str(prev))
    client.set_model_version_tag(MODEL_NAME, str(version), "promotion", reason)
    client.set_registered_model_alias(MODEL_NAME, CHAMPION, str(version))
    return prev


@_bounded
def rollback(client: Any) -> tuple[int, int]:
    """Move ``champion`` back along the ``previous_champion`` chain to the newest version that
    is not blocked; the rolled-back version is tagged ``blocked=rolled_back``."""
    current = alias_version(client, CHAMPION)
    if current is None:
        raise ValueError(f"{MODEL_NAME} has no champion to roll back")
    seen = {str(current.version)}
    candidate = current.tags.get("previous_champion")
    while candidate is not None and candidate not in seen:
        seen.add(candidate)
        mv = _get_version(client, candidate)
        if not mv.tags.get(BLOCKED_TAG):
            break
        candidate = mv.tags.get("previous_champion")
    else:
        raise ValueError(f"champion version {current.version} has no earlier champion that is "
                         "not blocked to roll back to")
    client.set_model_version_tag(MODEL_NAME, current.version, BLOCKED_TAG, ROLLED_BACK)
    client.set_model_version_tag(MODEL_NAME, current.version, "rolled_back", "true")
    client.set_registered_model_alias(MODEL_NAME, CHAMPION, candidate)
    return int(current.version), int(candidate)


# --- artifacts -------------------------------------------------------------------------------

@_bounded
def download_policy(client: Any, version: int, dst: Path, *, allow_unverified: bool = False
                    ) -> Path:
    """The TorchScript ``policy.pt`` of a registered version, verified against the SHA-256
    recorded on the version before anyone loads it (a mismatch deletes the download)."""
    mv = _get_version(client, version)
    expected = mv.tags.get(CHECKSUM_TAG)
    if expected is None and not allow_unverified:
        raise PolicyChecksumError(f"version {version} records no {CHECKSUM_TAG}; refusing to "
                                  "load an unverified policy")
    dst.mkdir(parents=True, exist_ok=True)
    path = Path(client.download_artifacts(mv.run_id, "policy.pt", str(dst)))
    actual = file_sha256(path)
    if expected is not None and actual != expected:
        path.unlink(missing_ok=True)
        raise PolicyChecksumError(f"policy.pt of version {version} has SHA-256 {actual}, the "
                                  f"version records {expected}: the artifact was altered")
    return path
