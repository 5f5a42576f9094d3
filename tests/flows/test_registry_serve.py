"""``mlflow models serve -m models:/drpo-policy@champion`` answers HTTP with item ids.

The server runs with ``--env-manager local`` in this interpreter's environment, but with the
project made unimportable (a ``sitecustomize`` maps ``flows`` and ``drpo_core`` to None), so
the model can only work from what it carries: its own code file, the TorchScript policy and
the catalogue.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from flows import registry
from tests.flows.test_registry_support import D_STATE, catalogue, register

K = 3
SERVER_START_S = 180


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url: str, payload: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def wait_until_up(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"mlflow models serve exited {server.returncode}: "
                        f"{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    pytest.fail(f"mlflow models serve did not answer within {SERVER_START_S} s")


def test_the_served_champion_returns_k_item_ids_per_state(client, tmp_path):
    register(client, "5e7e5e7e5e7e5e7e", tmp_path / "w", k=K)
    registry.promote(client, 1)
    blocker = tmp_path / "no_project"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "import sys\nsys.modules['flows'] = None\nsys.modules['drpo_core'] = None\n")
    bin_dir = str(Path(sys.executable).parent)  # uvicorn is started by name from PATH
    env = {**os.environ, "MLFLOW_TRACKING_URI": registry.tracking_uri(),
           "PYTHONPATH": str(blocker), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    port = free_port()
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "models", "serve", "-m",
             f"models:/{registry.MODEL_NAME}@champion", "--env-manager", "local",
             "-h", "127.0.0.1", "-p", str(port)],
            cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/ping", server, log)
        states = np.random.default_rng(3).standard_normal((5, D_STATE)).round(4)
        url = f"http://127.0.0.1:{port}/invocations"
        answer = post(url, {"inputs": states.tolist()})["predictions"]
        ids = set(catalogue()[0])
        assert len(answer) == 5
        assert all(len(row) == K and len(set(row)) == K and set(row) <= ids for row in answer)
        wider = post(url, {"inputs": states.tolist(), "params": {"k": 6}})["predictions"]
        assert all(len(row) == 6 and row[:K] == top for row, top in zip(wider, answer,
                                                                         strict=True))
        # the same answer as the model loaded in this process (the project's view of it)
        import mlflow

        local = mlflow.pyfunc.load_model(f"models:/{registry.MODEL_NAME}@champion")
        assert local.predict(states.astype(np.float32)).tolist() == answer
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the server and its uvicorn worker
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)
