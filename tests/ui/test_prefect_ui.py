"""User story: a manual backfill started from the Prefect UI's Custom run form.

A real Prefect server and `drpo serve` are started by the test; Debian's Chromium is driven by
Node playwright-core (tests/ui/drive.js, never a browser download). Screenshots are kept in
tests/ui/artifacts/. Needs: `apt-get install chromium` and `npm ci --prefix tests/ui`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from drpo_core.warehouse import open_warehouse

UI_DIR = Path(__file__).parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PLAYWRIGHT = UI_DIR / "node_modules" / "playwright-core"

pytestmark = [
    pytest.mark.ui,
    pytest.mark.skipif(
        CHROMIUM is None or shutil.which("node") is None or not PLAYWRIGHT.exists(),
        reason="no browser: run `apt-get install chromium` and `npm ci --prefix tests/ui`",
    ),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"timed out waiting for {what}")


@pytest.fixture
def servers(home: Path, tmp_path: Path):
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = os.environ | {
        "PREFECT_HOME": str(tmp_path / "prefect-server"),
        "PREFECT_API_DATABASE_CONNECTION_URL":
            f"sqlite+aiosqlite:///{tmp_path / 'prefect.db'}",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_STATIC_DIRECTORY": str(tmp_path / "ui-static"),
        "PREFECT_API_URL": api,
        "DRPO_HOME": str(home),
        "DRPO_LOGS": str(home / "logs" / "live"),
    }
    bin_dir = Path(sys.executable).parent
    logs = {name: open(tmp_path / f"{name}.log", "w") for name in ("server", "serve")}  # noqa: SIM115
    server = subprocess.Popen([str(bin_dir / "prefect"), "server", "start", "--host",
                               "127.0.0.1", "--port", str(port)], env=env,
                              stdout=logs["server"], stderr=subprocess.STDOUT)
    procs = [server]
    try:
        wait_for(lambda: httpx.get(f"{api}/health", timeout=2).json() is True, 90,
                 "the Prefect server")
        procs.append(subprocess.Popen([str(bin_dir / "drpo"), "serve"], env=env,
                                      stdout=logs["serve"], stderr=subprocess.STDOUT))
        wait_for(lambda: httpx.post(f"{api}/deployments/filter", json={
            "deployments": {"name": {"any_": ["backfill"]}}}, timeout=5).json(), 90,
            "the backfill deployment")
        yield api, home, tmp_path / "serve.log"
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        for f in logs.values():
            f.close()


def test_manual_backfill_from_the_prefect_ui(servers) -> None:
    api, home, serve_log = servers
    shots = UI_DIR / "artifacts"
    shots.mkdir(exist_ok=True)
    base = api.removesuffix("/api")
    drive = subprocess.run(
        ["node", str(UI_DIR / "drive.js"), base, "2026-01-01", "2026-01-02", "last",
         str(shots)], capture_output=True, text=True, timeout=180,
        env=os.environ | {"CHROMIUM": CHROMIUM or ""})
    assert drive.returncode == 0, drive.stderr[-2000:]
    submitted = json.loads(drive.stdout.strip().splitlines()[-1])
    assert submitted["status"] == 201
    run_id = submitted["flow_run_id"]

    def finished():
        run = httpx.get(f"{api}/flow_runs/{run_id}", timeout=5).json()
        return run if run["state_type"] in ("COMPLETED", "FAILED", "CRASHED") else None

    run = wait_for(finished, 300, "the backfill flow run")
    assert run["state_type"] == "COMPLETED", serve_log.read_text()[-3000:]
    chosen = {k: run["parameters"][k] for k in ("start", "end", "retrain")}
    assert chosen == {"start": "2026-01-01", "end": "2026-01-02", "retrain": "last"}
    with open_warehouse(home / "warehouse.duckdb", read_only=True) as wh:
        days = wh.query("SELECT event_date, count(*) FROM interactions GROUP BY ALL ORDER BY ALL")
    assert days == [(dt.date(2026, 1, 1), 1500), (dt.date(2026, 1, 2), 1500)]
    os.environ["DRPO_HOME"] = str(home)
    from flows import registry

    client = registry.configure()
    versions = client.search_model_versions(f"name = '{registry.MODEL_NAME}'")
    assert [int(v.version) for v in versions] == [1]
    assert int(registry.alias_version(client, registry.CHAMPION).version) == 1
    for name in ("1-deployments.png", "2-custom-run-form.png", "3-filled-form.png"):
        assert (shots / name).stat().st_size > 10_000
