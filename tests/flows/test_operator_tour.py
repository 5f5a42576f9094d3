"""The operator's tour on a fresh DRPO_HOME: make run's commands (backfill, nightly, champion)
through the CLI, then what an operator reads back through the real APIs: INFO logs with the
training progress in Prefect, a described version with its dataset input and real metric times
in MLflow, and the served champion answering item ids over HTTP."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from flows import registry
from flows.cli import app
from tests.flows.conftest import FIRST_DAY
from tests.flows.test_registry_serve import free_port, post, wait_until_up

FAST = ["--train-steps", "200", "--batch-size", "64", "--eval-users", "300",
        "--window-days", "2"]


def drpo(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


async def flow_run_logs() -> dict[str, list[str]]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    async with get_client() as client:
        runs = await client.read_flow_runs()
        out = {}
        for run in runs:
            logs = await client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(
                any_=[run.id])))
            out[run.name] = [f"{logging.getLevelName(log.level)} {log.message}" for log in logs]
        return out


@pytest.fixture
def info_logs():
    """The suite runs Prefect at WARNING; an operator's runs log at INFO (Makefile)."""
    from prefect.logging.configuration import setup_logging
    from prefect.settings import PREFECT_LOGGING_LEVEL, temporary_settings

    with temporary_settings(updates={PREFECT_LOGGING_LEVEL: "INFO"}):
        setup_logging(incremental=True)
        yield
    setup_logging(incremental=True)


@pytest.mark.slow
def test_make_run_commands_then_logs_registry_and_serving(prefect_api, home, tmp_path,
                                                          info_logs):
    logs = str(home / "logs" / "live")
    day2, day3 = FIRST_DAY + dt.timedelta(days=1), FIRST_DAY + dt.timedelta(days=2)
    backfill = drpo("backfill", "--start", FIRST_DAY.isoformat(), "--end", day2.isoformat(),
                    "--logs", logs, "--retrain", "last", *FAST)
    assert "2026-01-02: version 1 (new)" in backfill
    drpo("run", "--date", day3.isoformat(), "--logs", logs, *FAST)
    assert "champion: drpo-policy version" in drpo("champion")

    for handler in logging.getLogger("prefect.flow_runs").handlers:
        handler.flush()  # logs go to the API in batches from a background worker
    by_run = asyncio.run(flow_run_logs())
    nightly = by_run[f"nightly-{day3.isoformat()}"]
    assert any(line.startswith("INFO train step 200/200: loss") for line in nightly), nightly
    assert any(line.startswith("INFO ingest 2026-01-03") for line in nightly)
    backfill_logs = by_run[f"backfill-{FIRST_DAY.isoformat()}-{day2.isoformat()}"]
    assert any(line.startswith("INFO train step") for line in backfill_logs)
    assert any("1 of 2 window days have no logs: 2025-12-31" in line
               for line in backfill_logs)  # the first day's window reaches before the data

    client = registry.configure()
    mv = client.get_model_version(registry.MODEL_NAME, "2")
    assert "2026-01-03" in mv.description and "Gate:" in mv.description
    assert client.get_registered_model(registry.MODEL_NAME).description
    run = client.get_run(mv.run_id)
    digests = [i.dataset.digest for i in run.inputs.dataset_inputs]
    assert digests == [mv.tags["data_hash"]]
    history = client.get_metric_history(mv.run_id, "losses/total")
    assert history and min(m.timestamp for m in history) > 1_600_000_000_000  # ms, not 1970

    port = free_port()
    bin_dir = str(Path(sys.executable).parent)
    server = subprocess.Popen(
        [str(Path(bin_dir) / "mlflow"), "models", "serve", "-m",
         f"models:/{registry.MODEL_NAME}@champion", "--env-manager", "local", "--host",
         "127.0.0.1", "--port", str(port)],
        env={**os.environ, "MLFLOW_TRACKING_URI": registry.tracking_uri(),
             "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"},
        stdout=(tmp_path / "serve.log").open("w"), stderr=subprocess.STDOUT,
        start_new_session=True)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/ping", server, tmp_path / "serve.log")
        d_state = int(mv.tags.get("d_state", 8))
        states = np.random.default_rng(0).normal(size=(4, d_state)).astype(np.float32)
        answer = post(f"http://127.0.0.1:{port}/invocations", {"inputs": states.tolist()})
        rows = answer["predictions"]
        assert len(rows) == 4 and all(len(r) == len(rows[0]) > 0 for r in rows)
        assert all(isinstance(i, str) for r in rows for i in r)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
