"""Registry faults (issue 13 items 6 and 8): kill -9 of a registering process at the worst
moments, two concurrent registrations of one run_key, an unreachable tracking server with a
password in its URI.

The registering processes are real children (``python -m tests.flows.test_registry_support``)
on a real MLflow SQLite store; the kill is a SIGKILL the child sends itself right after MLflow
created the version (or while it logs the model), so nothing in the child can clean up.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.entities import ViewType

from flows import registry

REPO = Path(__file__).resolve().parents[2]
KEY = "feedc0de12345678"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated store, made once (migrations take seconds) and copied for each test."""
    home = tmp_path_factory.mktemp("registry_template")
    mp = pytest.MonkeyPatch()
    mp.setenv("DRPO_HOME", str(home))
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    try:
        registry.configure()
    finally:
        mp.undo()
    return home / "mlflow.db"


@pytest.fixture
def home(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(template, home / "mlflow.db")
    monkeypatch.setenv("DRPO_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return home


def child(home: Path, workdir: Path, *flags: str) -> subprocess.Popen:
    env = {**os.environ, "DRPO_HOME": str(home), "PYTHONPATH": str(REPO)}
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.Popen(
        [sys.executable, "-m", "tests.flows.test_registry_support", KEY, str(workdir), *flags],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=300)
    return proc.returncode, out, err


def state(client) -> tuple[list[tuple[int, str | None]], dict[str, str]]:
    """(version, run_key tag) of every version, and the status of every run."""
    versions = sorted((int(v.version), v.tags.get("run_key")) for v in
                      client.search_model_versions(f"name = '{registry.MODEL_NAME}'"))
    experiment = client.get_experiment_by_name(registry.EXPERIMENT)
    runs = client.search_runs([experiment.experiment_id], run_view_type=ViewType.ALL)
    return versions, {r.info.run_id: r.info.status for r in runs}


@pytest.mark.reliability(
    kind="fault",
    case="kill -9 of the registering process right after MLflow created the version, then a rerun",
    outcome="one version for the run_key, tagged with its checksum; the killed run completed "
            "(FINISHED) by the rerun",
)
def test_kill_right_after_the_version_is_created_then_rerun(home, tmp_path):
    code, _, err = finish(child(home, tmp_path / "w", "--kill-after-version"))
    assert code == -signal.SIGKILL, err[-2000:]
    client = registry.configure()
    versions, runs = state(client)
    assert versions == [(1, KEY)]  # the version exists and already carries its run_key
    assert list(runs.values()) == ["RUNNING"]  # the half: its run never ended

    code, out, err = finish(child(home, tmp_path / "w"))
    assert code == 0, err[-2000:]
    assert "version=1 created=False" in out
    versions, runs = state(client)
    assert versions == [(1, KEY)]
    assert list(runs.values()) == ["FINISHED"]  # completed by the rerun
    mv = client.get_model_version(registry.MODEL_NAME, "1")
    assert len(mv.tags["policy_sha256"]) == 64 and mv.description


@pytest.mark.reliability(
    kind="fault",
    case="kill -9 while the model is being logged, then a rerun",
    outcome="the killed run ended FAILED and tagged interrupted; the rerun creates the one "
            "version",
)
def test_kill_while_logging_the_model_then_rerun(home, tmp_path):
    code, _, err = finish(child(home, tmp_path / "w", "--kill-during-logging"))
    assert code == -signal.SIGKILL, err[-2000:]
    client = registry.configure()
    versions, runs = state(client)
    assert versions == [] and list(runs.values()) == ["RUNNING"]
    killed = next(iter(runs))

    code, out, err = finish(child(home, tmp_path / "w"))
    assert code == 0, err[-2000:]
    assert "version=1 created=True" in out
    versions, runs = state(client)
    assert versions == [(1, KEY)]
    assert runs[killed] == "FAILED" and sorted(runs.values()) == ["FAILED", "FINISHED"]
    assert client.get_run(killed).data.tags["drpo.interrupted"] == "registration killed"


@pytest.mark.reliability(
    kind="fault",
    case="two concurrent registrations of one run_key",
    outcome="one version and one run; the second process finds the first's version",
)
def test_two_concurrent_registrations_of_one_run_key_make_one_version(home, tmp_path):
    start = tmp_path / "start"
    procs = [child(home, tmp_path / f"w{i}", "--wait-for", str(start)) for i in range(2)]
    start.touch()  # both children are importing or waiting; release them together
    results = [finish(p) for p in procs]
    assert all(code == 0 for code, _, _ in results), [err[-2000:] for _, _, err in results]
    outs = sorted(out.strip().splitlines()[-1] for _, out, _ in results)
    assert outs == ["version=1 created=False", "version=1 created=True"]
    versions, runs = state(registry.configure())
    assert versions == [(1, KEY)]
    assert list(runs.values()) == ["FINISHED"]  # the second never started a run


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.reliability(
    kind="fault",
    case="MLflow unreachable (closed port) with a password in MLFLOW_TRACKING_URI, for configure, "
         "alias, promote and download",
    outcome="one line with the password masked and no chained traceback; retries bounded to <= 60 "
            "s",
    guards=("one-line",),
)
def test_an_unreachable_server_fails_with_one_masked_line(monkeypatch):
    port = closed_port()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://alice:s3cr3t-pw@127.0.0.1:{port}")
    for name in registry.HTTP_LIMITS:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(registry.RegistryUnavailableError) as caught:
        registry.configure()
    message = str(caught.value)
    assert "\n" not in message and "s3cr3t-pw" not in message
    assert f"http://alice:***@127.0.0.1:{port}" in message
    assert "connection refused" in message and "configure" in message
    assert caught.value.__suppress_context__  # no chained traceback carrying the password
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "2"  # bounded by configure()
    assert registry.retry_budget_seconds() <= 60

    from mlflow import MlflowClient

    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    for call in (lambda: registry.alias_version(client, registry.CHAMPION),
                 lambda: registry.promote(client, 1),
                 lambda: registry.download_policy(client, 1, Path("unused"))):
        with pytest.raises(registry.RegistryUnavailableError) as caught:
            call()
        assert "s3cr3t-pw" not in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.reliability(
    kind="fault",
    case="a user's own MLflow HTTP retry and timeout settings",
    outcome="kept as set, and the retry budget computed from them",
)
def test_a_users_http_settings_win_and_change_the_budget(monkeypatch, tmp_path):
    monkeypatch.setenv("DRPO_HOME", str(tmp_path))
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "7")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "120")
    registry.configure()
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "7"
    # 8 attempts x 120 s + backoff 2+4+...+64 s and 6 x 1 s jitter: MLflow's own defaults
    assert registry.retry_budget_seconds() == 8 * 120 + (2 + 4 + 8 + 16 + 32 + 64) + 6


@pytest.mark.parametrize(("text", "expected"), [
    ("http://u:pw@host:5000/api", "http://u:***@host:5000/api"),
    ("API request to https://bob:p%40ss@mlflow.example/ajax failed",
     "API request to https://bob:***@mlflow.example/ajax failed"),
    ("postgresql://drpo:secret@postgres:5432/mlflow and http://x:y@z",
     "postgresql://drpo:***@postgres:5432/mlflow and http://x:***@z"),
    ("http://host:5000 has no credentials", "http://host:5000 has no credentials"),
    ("token: abc-token-123", "token: ***"),
])
@pytest.mark.reliability(
    kind="security",
    case="credentials in a message: `{text}`",
    outcome="printed as `{expected}`",
)
def test_mask_credentials(monkeypatch, text, expected):
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "abc-token-123")
    assert registry.mask_credentials(text) == expected
