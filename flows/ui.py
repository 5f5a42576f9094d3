"""``drpo ui``: the MLflow UI and a Prefect server (with its UI) on this ``DRPO_HOME``.

Both read the stores the CLI runs write: MLflow the SQLite store ``$DRPO_HOME/mlflow.db``,
Prefect the database under ``$DRPO_HOME/prefect`` (the CLI's temporary API uses the same one),
so past runs, their logs, artifacts and the registry are all there.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from flows.settings import drpo_home

STARTUP_TIMEOUT_S = 120.0


def commands(mlflow_port: int, prefect_port: int) -> dict[str, tuple[list[str], str]]:
    """name -> (command, URL), with the venv's own executables (no activation needed)."""
    bin_dir, home = Path(sys.executable).parent, drpo_home()
    return {
        "MLflow": ([str(bin_dir / "mlflow"), "ui", "--backend-store-uri",
                    f"sqlite:///{home / 'mlflow.db'}", "--host", "127.0.0.1", "--port",
                    str(mlflow_port)], f"http://127.0.0.1:{mlflow_port}"),
        "Prefect": ([str(bin_dir / "prefect"), "server", "start", "--host", "127.0.0.1",
                     "--port", str(prefect_port)], f"http://127.0.0.1:{prefect_port}"),
    }


def start(mlflow_port: int = 5055, prefect_port: int = 4200) -> dict[str, subprocess.Popen]:
    """Start both servers and wait until both answer; the URLs are in ``commands``."""
    home = drpo_home()
    env = {**os.environ, "PREFECT_HOME": os.environ.get("PREFECT_HOME", str(home / "prefect")),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("PREFECT_API_URL", None)
    Path(env["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
    procs = {name: subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, start_new_session=True)
             for name, (cmd, _) in commands(mlflow_port, prefect_port).items()}
    try:
        for name, (_, url) in commands(mlflow_port, prefect_port).items():
            _wait(name, url, procs[name])
    except RuntimeError:
        stop(procs)
        raise
    return procs


def _wait(name: str, url: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the {name} server exited with code {proc.returncode} "
                               f"(is its port already in use?)")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"the {name} server did not answer at {url} within "
                       f"{STARTUP_TIMEOUT_S:g} s")


def stop(procs: dict[str, subprocess.Popen]) -> None:
    for proc in procs.values():
        proc.terminate()
    for proc in procs.values():
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def wait(procs: dict[str, subprocess.Popen]) -> None:
    """Until Ctrl-C or one server exits; then both are stopped."""
    try:
        while all(p.poll() is None for p in procs.values()):
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        stop(procs)
