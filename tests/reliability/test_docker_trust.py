"""The compose stack is secure by default and its worker can register a model (issue 13 item
12, issue 14 item 9). No container engine runs here: the files are checked, and the MLflow
server is started with the compose file's own command and flags on 127.0.0.1 and called with the
Host header the worker sends (``mlflow:5055``)."""

from __future__ import annotations

import base64
import configparser
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
SECRET_VARIABLES = ("POSTGRES_PASSWORD", "MLFLOW_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY",
                    "PREFECT_AUTH_STRING")
WORKER_HOST = "mlflow:5055"  # the worker's MLFLOW_TRACKING_URI is http://mlflow:5055


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def strings(node) -> list[str]:
    if isinstance(node, dict):
        return [s for v in node.values() for s in strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in strings(v)]
    return [str(node)]


@pytest.mark.reliability(
    kind="security",
    case="compose secrets with a default value (Postgres, MLflow admin, Flask key, Prefect auth)",
    outcome="every secret required from docker/.env (`${NAME:?}`); the example file and auth "
            "config hold none",
)
def test_no_default_password_anywhere(compose: dict) -> None:
    text = (DOCKER / "compose.yaml").read_text()
    for name in SECRET_VARIABLES:
        uses = re.findall(r"\$\{" + name + r"(:?[-?])?([^}]*)\}", text)
        assert uses, name
        assert all(op == ":?" for op, _ in uses), f"{name} must be required, never defaulted"
    example = dict(line.split("=", 1) for line in (DOCKER / ".env.example").read_text()
                   .splitlines() if line and not line.startswith("#"))
    assert all(example[name] == "" for name in SECRET_VARIABLES)
    ini = configparser.ConfigParser()
    ini.read(DOCKER / "mlflow-auth.ini")
    assert "admin_password" not in ini["mlflow"]


@pytest.mark.reliability(
    kind="security",
    case="passwords on a service's command line or healthcheck (visible in `ps`)",
    outcome="none: no password, `@postgres` URI or auth string on any command line",
)
def test_no_password_on_a_command_line(compose: dict) -> None:
    for name, svc in compose["services"].items():
        line = " ".join(strings(svc.get("command", [])) + strings(svc.get("entrypoint", [])))
        assert "PASSWORD" not in line and "@postgres" not in line, name
        assert "AUTH_STRING" not in line, name
        health = " ".join(strings(svc.get("healthcheck", {}).get("test", [])))
        assert "PASSWORD" not in health, name


@pytest.mark.reliability(
    kind="security",
    case="MLflow and Prefect servers without authentication",
    outcome="MLflow runs the basic-auth app, Prefect has an auth string, the workers carry both",
)
def test_mlflow_and_prefect_require_credentials(compose: dict) -> None:
    s = compose["services"]
    command = s["mlflow"]["command"]
    assert command[command.index("--app-name") + 1] == "basic-auth"
    env = s["mlflow"]["environment"]
    assert env["MLFLOW_AUTH_ADMIN_PASSWORD"].startswith("${MLFLOW_ADMIN_PASSWORD:?")
    assert env["MLFLOW_AUTH_CONFIG_PATH"] == "/etc/drpo/mlflow-auth.ini"
    assert "./mlflow-auth.ini:/etc/drpo/mlflow-auth.ini:ro" in s["mlflow"]["volumes"]
    assert s["prefect-server"]["environment"]["PREFECT_SERVER_API_AUTH_STRING"].startswith(
        "${PREFECT_AUTH_STRING:?")
    for worker in ("worker", "worker-gpu"):
        env = s[worker]["environment"]
        assert env["PREFECT_API_AUTH_STRING"].startswith("${PREFECT_AUTH_STRING:?")
        assert env["MLFLOW_TRACKING_PASSWORD"].startswith("${MLFLOW_ADMIN_PASSWORD:?")
        assert env["MLFLOW_TRACKING_USERNAME"].startswith("${MLFLOW_ADMIN_USERNAME:?")


@pytest.mark.reliability(
    kind="security",
    case="a misspelt setting in compose (silently ignored, e.g. auth left off)",
    outcome="every auth and runner setting named in compose is one MLflow/Prefect reads",
)
def test_the_settings_named_in_compose_exist(compose: dict) -> None:
    """Prefect and MLflow read exactly these variable names (a misspelt one is ignored)."""
    from mlflow import environment_variables as mlflow_env
    from prefect.settings import Settings

    worker = compose["services"]["worker"]["environment"]
    settings = Settings.model_validate({})
    env = {"PREFECT_RUNNER_SERVER_ENABLE": worker["PREFECT_RUNNER_SERVER_ENABLE"],
           "PREFECT_RUNNER_SERVER_PORT": worker["PREFECT_RUNNER_SERVER_PORT"],
           "PREFECT_RUNNER_SERVER_HOST": worker["PREFECT_RUNNER_SERVER_HOST"],
           "PREFECT_API_AUTH_STRING": "user:pw", "PREFECT_SERVER_API_AUTH_STRING": "user:pw"}
    old = {k: os.environ.get(k) for k in env}
    try:
        os.environ.update(env)
        settings = Settings()
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    assert settings.runner.server.enable is True
    assert settings.runner.server.port == 8080 and settings.runner.server.host == "127.0.0.1"
    assert settings.api.auth_string.get_secret_value() == "user:pw"
    assert settings.server.api.auth_string.get_secret_value() == "user:pw"
    for name in ("MLFLOW_AUTH_CONFIG_PATH", "MLFLOW_AUTH_ADMIN_USERNAME",
                 "MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY"):
        assert any(getattr(v, "name", None) == name for v in vars(mlflow_env).values()), name


@pytest.mark.reliability(
    kind="fault",
    case="a worker healthcheck that passes while the worker cannot work (it probed another "
         "service)",
    outcome="the healthcheck probes the worker's own runner /health",
)
def test_the_worker_healthcheck_checks_the_worker(compose: dict) -> None:
    for name in ("worker", "worker-gpu"):
        svc = compose["services"][name]
        probe = " ".join(svc["healthcheck"]["test"])
        port = svc["environment"]["PREFECT_RUNNER_SERVER_PORT"]
        assert f"http://127.0.0.1:{port}/health" in probe, name
        assert "prefect-server" not in probe and "mlflow" not in probe
        assert svc["environment"]["PREFECT_RUNNER_SERVER_ENABLE"] == "true"


def test_a_gpu_profile_runs_the_worker_on_the_cuda_image(compose: dict) -> None:
    s = compose["services"]
    gpu = s["worker-gpu"]
    assert gpu["profiles"] == ["gpu"]
    assert gpu["build"]["dockerfile"] == "docker/Dockerfile.cuda"
    assert gpu["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    assert gpu["command"] == s["worker"]["command"]
    assert gpu["environment"] == s["worker"]["environment"]
    assert "profiles" not in s["worker"]


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "Dockerfile.cuda"])
@pytest.mark.reliability(
    kind="fault",
    case="a volume folder the runtime user cannot write ({dockerfile})",
    outcome="every mounted /data folder created and owned by the image's USER",
)
def test_every_volume_folder_is_owned_by_the_runtime_user(compose: dict, dockerfile) -> None:
    text = (DOCKER / dockerfile).read_text()
    user = re.search(r"^USER (\S+)", text, re.M).group(1)
    created = re.search(r"mkdir -p ([^&\n]+)", text).group(1).split()
    assert re.search(rf"chown -R {user}(:{user})? /data", text)
    targets = {v.split(":")[1] for name, svc in compose["services"].items()
               if name != "postgres" for v in svc.get("volumes", [])
               if not v.split(":")[0].startswith((".", "/", "$"))}
    assert targets == {"/data/drpo", "/data/mlflow-artifacts", "/data/mlflow-auth"}
    assert targets <= set(created)
    assert all(t.startswith("/data/") for t in targets)
    assert "'mlflow[auth]'" in text  # the basic-auth app needs Flask-WTF


@pytest.mark.reliability(
    kind="security",
    case="secrets (docker/.env), environments and data copied into the image",
    outcome="the build context excludes them, and no COPY names an excluded path",
)
def test_the_build_context_leaves_out_environments_data_and_caches() -> None:
    ignored = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".git", ".venv", ".drpo", "**/__pycache__", ".pytest_cache", "docker/.env"} <= ignored
    for dockerfile in ("Dockerfile", "Dockerfile.cuda"):
        for source in re.findall(r"^COPY (.+) \S+$", (DOCKER / dockerfile).read_text(), re.M):
            for path in source.split():
                assert path.rstrip("/") not in ignored, f"{dockerfile} copies ignored {path}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(port: int, method: str, path: str, body: dict | None = None, host: str = WORKER_HOST,
         auth: tuple[str, str] | None = None) -> tuple[int, dict | str]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode())
    request.add_header("Host", host)
    request.add_header("Content-Type", "application/json")
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read().decode()
            return response.status, json.loads(text) if text.startswith("{") else text
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")
    except urllib.error.URLError as err:  # not listening yet
        return 0, str(err.reason)


@pytest.fixture(scope="module")
def mlflow_server(compose: dict, tmp_path_factory):
    """``mlflow server`` with the compose command, flags and auth config; only the bind address,
    the port, the folders and the backend store (SQLite for PostgreSQL) differ."""
    try:
        import flask_wtf  # noqa: F401 - the basic-auth app's CSRF protection
    except ImportError:
        pytest.fail("the basic-auth app needs Flask-WTF: pip install 'mlflow[auth]'")
    tmp = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    svc = compose["services"]["mlflow"]
    replace = {"0.0.0.0": "127.0.0.1", "5055": str(port),
               "/data/mlflow-artifacts": str(tmp / "artifacts")}
    command = [replace.get(a, a) for a in svc["command"]]
    ini = configparser.ConfigParser()
    ini.read(DOCKER / "mlflow-auth.ini")
    ini["mlflow"]["database_uri"] = f"sqlite:///{tmp / 'basic_auth.db'}"
    with open(tmp / "mlflow-auth.ini", "w") as fh:
        ini.write(fh)
    admin = ("drpo-admin", secrets.token_urlsafe(16))
    env = {**os.environ, "MLFLOW_BACKEND_STORE_URI": f"sqlite:///{tmp / 'mlflow.db'}",
           "MLFLOW_AUTH_CONFIG_PATH": str(tmp / "mlflow-auth.ini"),
           "MLFLOW_AUTH_ADMIN_USERNAME": admin[0], "MLFLOW_AUTH_ADMIN_PASSWORD": admin[1],
           "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_urlsafe(16),
           **{k: v for k, v in svc["environment"].items() if "${" not in v}}
    env["MLFLOW_AUTH_CONFIG_PATH"] = str(tmp / "mlflow-auth.ini")
    executable = Path(sys.executable).parent / svc["entrypoint"][0]
    log = open(tmp / "server.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen([str(executable), *command], env=env, stdout=log,
                              stderr=subprocess.STDOUT, cwd=tmp, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while call(port, "GET", "/health", host=f"127.0.0.1:{port}")[0] != 200:
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail("mlflow server did not start: " + (tmp / "server.log").read_text())
            time.sleep(0.5)
        yield port, admin
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


@pytest.mark.slow
@pytest.mark.reliability(
    kind="fault",
    case="the worker registering through `Host: mlflow:5055` (MLflow answered 403 Invalid Host "
         "header)",
    outcome="the compose command's server accepts the worker's host and registers version 1",
)
def test_the_worker_registers_a_model_through_its_host_header(mlflow_server) -> None:
    port, admin = mlflow_server
    name = "drpo-policy"
    status, body = call(port, "POST", "/api/2.0/mlflow/registered-models/create",
                        {"name": name}, auth=admin)
    assert status == 200, body
    status, body = call(port, "POST", "/api/2.0/mlflow/experiments/create", {"name": "drpo"},
                        auth=admin)
    assert status == 200, body
    status, body = call(port, "POST", "/api/2.0/mlflow/runs/create",
                        {"experiment_id": body["experiment_id"]}, auth=admin)
    assert status == 200, body
    run = body["run"]["info"]
    status, body = call(port, "POST", "/api/2.0/mlflow/model-versions/create",
                        {"name": name, "source": f"{run['artifact_uri']}/policy",
                         "run_id": run["run_id"]}, auth=admin)
    assert status == 200, body
    assert body["model_version"]["version"] == "1"
    status, body = call(port, "GET", f"/api/2.0/mlflow/registered-models/get?name={name}",
                        auth=admin)
    assert status == 200 and body["registered_model"]["latest_versions"][0]["version"] == "1"


@pytest.mark.slow
@pytest.mark.reliability(
    kind="security",
    case="anonymous requests, a wrong password and a foreign Host header to MLflow",
    outcome="401, 401 and 403 Invalid Host header; the admin on an allowed host gets 200",
)
def test_mlflow_refuses_anonymous_requests_and_foreign_hosts(mlflow_server) -> None:
    port, admin = mlflow_server
    path = "/api/2.0/mlflow/registered-models/search"
    assert call(port, "GET", path)[0] == 401
    assert call(port, "GET", path, auth=(admin[0], "wrong"))[0] == 401
    status, body = call(port, "GET", path, host="evil.example:5055", auth=admin)
    assert status == 403 and "Invalid Host header" in body
    assert call(port, "GET", path, host=f"127.0.0.1:{port}", auth=admin)[0] == 200
