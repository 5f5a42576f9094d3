"""No container engine runs here: check that the compose file and images are consistent."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml
from typer.main import get_command

from flows.cli import app

DOCKER = Path(__file__).resolve().parents[1] / "docker"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def test_services_volumes_and_health(compose: dict) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", "mlflow", "prefect-server", "worker", "worker-gpu"}
    for name, svc in services.items():
        assert "healthcheck" in svc, name
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith((".", "/", "$")):
                assert source in compose["volumes"], f"{name}: undeclared volume {source}"
    assert set(compose["volumes"]) == {"postgres-data", "mlflow-artifacts", "mlflow-auth",
                                       "drpo-data"}


def test_ports_bind_to_loopback_only(compose: dict) -> None:
    ports = [p for svc in compose["services"].values() for p in svc.get("ports", [])]
    assert ports and all(p.startswith("127.0.0.1:") for p in ports)


def test_services_find_each_other(compose: dict) -> None:
    s = compose["services"]
    assert "@postgres:5432/mlflow" in s["mlflow"]["environment"]["MLFLOW_BACKEND_STORE_URI"]
    assert "@postgres:5432/prefect" in s["prefect-server"]["environment"][
        "PREFECT_API_DATABASE_CONNECTION_URL"]
    assert s["mlflow"]["environment"]["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    worker = s["worker"]["environment"]
    assert worker["PREFECT_API_URL"] == "http://prefect-server:4200/api"
    assert worker["MLFLOW_TRACKING_URI"] == "http://mlflow:5055"
    init = (DOCKER / "postgres-init.sql").read_text()
    assert "CREATE DATABASE mlflow" in init and "CREATE DATABASE prefect" in init
    for dependency in ("prefect-server", "mlflow"):
        assert s["worker"]["depends_on"][dependency]["condition"] == "service_healthy"


def test_entrypoints_are_real_commands(compose: dict) -> None:
    cli = get_command(app)
    worker_command = compose["services"]["worker"]["command"][0]
    assert worker_command in cli.commands  # `drpo serve`
    serve_options = {opt for p in cli.commands["serve"].params for opt in p.opts}
    assert "--timezone" in serve_options
    mlflow_flags = {a for a in compose["services"]["mlflow"]["command"] if a.startswith("--")}
    assert mlflow_flags == {"--host", "--port", "--app-name", "--allowed-hosts",
                            "--artifacts-destination", "--workers"}
    for dockerfile in ("Dockerfile", "Dockerfile.cuda"):
        text = (DOCKER / dockerfile).read_text()
        assert re.search(r'^ENTRYPOINT \["drpo"\]', text, re.M), dockerfile
        for source in re.findall(r"^COPY (\S+)", text, re.M):
            assert (DOCKER.parent / source).exists(), f"{dockerfile}: COPY {source}"
        assert "constraints.txt" in text and "'.[server]'" in text


def test_mlflow_server_accepts_the_compose_flags(compose: dict) -> None:
    from click.testing import CliRunner
    from mlflow.cli import cli as mlflow_cli

    result = CliRunner().invoke(mlflow_cli, ["server", "--help"])
    assert result.exit_code == 0
    for flag in [a for a in compose["services"]["mlflow"]["command"] if a.startswith("--")]:
        assert flag in result.output
    server = mlflow_cli.commands["server"]
    backend = next(p for p in server.params if "--backend-store-uri" in p.opts)
    assert backend.envvar == "MLFLOW_BACKEND_STORE_URI"  # compose passes the URI this way


def test_service_entrypoints_are_installed_executables(compose: dict) -> None:
    bin_dir = Path(sys.executable).parent
    for name, svc in compose["services"].items():
        if "entrypoint" in svc:
            assert (bin_dir / svc["entrypoint"][0]).exists(), name
