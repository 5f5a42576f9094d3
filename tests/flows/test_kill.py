"""kill -9 of ``drpo run`` at each stage, then a rerun; and two concurrent runs of one date.

Every case ends with: exactly one registered version per run_key, the aliases on registered
versions, no MLflow run left RUNNING, no Prefect flow run left RUNNING, and no temporary
Prefect server left behind by the killed process.
"""

from __future__ import annotations

import ast
import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from drpo_core.sim import LogSimulator, scenario_config
from tests.flows.conftest import FIRST_DAY, SMALL_WORLD

DRPO = str(Path(sys.executable).parent / "drpo")
DAY3 = FIRST_DAY + dt.timedelta(days=2)
RUN = ["--window-days", "2", "--batch-size", "64", "--eval-users", "300"]
#: the stderr line after which the run is killed, per stage
TRIGGERS = {
    "ingest": "Beginning flow run",
    "train": "train step 100/",
    "evaluate": "Task run 'train-",
    "register": "Task run 'evaluate-",
    "gate": "Task run 'register-",
}


def env(home: Path) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items()
           if not k.startswith(("DRPO_", "MLFLOW_", "PREFECT_"))}
    return out | {"DRPO_HOME": str(home), "PREFECT_LOGGING_LEVEL": "INFO",
                  "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


def drpo(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([DRPO, *args], env=env(home), capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with two days backfilled and a champion (version 1)."""
    home = tmp_path_factory.mktemp("prepared") / "home"
    LogSimulator(scenario_config("medium", **SMALL_WORLD)).write(
        home / "logs" / "live", FIRST_DAY, days=3, rows_per_day=1500, progress=False)
    result = drpo(home, "backfill", "--start", FIRST_DAY.isoformat(), "--end",
                  (FIRST_DAY + dt.timedelta(days=1)).isoformat(), "--train-steps", "200", *RUN)
    assert result.returncode == 0, result.stderr[-3000:]
    return home


def children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def running(pid: int) -> bool:
    """The process exists and is not a zombie (exited, waiting to be reaped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def kill_at(home: Path, trigger: str) -> list[int]:
    """Start the nightly for DAY3, SIGKILL it once ``trigger`` is printed; its children."""
    child = subprocess.Popen([DRPO, "run", "--date", DAY3.isoformat(), "--train-steps", "3000",
                              *RUN], env=env(home), stderr=subprocess.PIPE, text=True)
    assert child.stderr is not None
    deadline = time.monotonic() + 300
    seen = []
    for line in child.stderr:
        seen.append(line)
        if trigger in line and ("Finished in state Completed" in line
                                or not trigger.startswith("Task run")):
            break
        assert time.monotonic() < deadline, "".join(seen[-20:])
    else:
        pytest.fail("the run ended before the trigger: " + "".join(seen[-20:]))
    servers = children(child.pid)
    child.send_signal(signal.SIGKILL)
    child.wait()
    return servers


def registry_state(home: Path, monkeypatch: pytest.MonkeyPatch
                   ) -> tuple[Counter, dict[str, int | None], list[str]]:
    monkeypatch.setenv("DRPO_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    from flows import registry

    client = registry.configure()
    versions = client.search_model_versions(f"name = '{registry.MODEL_NAME}'")
    per_key = Counter(v.tags.get("run_key") for v in versions)
    aliases = {a: (None if (mv := registry.alias_version(client, a)) is None else
                   int(mv.version)) for a in (registry.CHAMPION, registry.CHALLENGER)}
    running = [r.info.run_id for r in client.search_runs(
        [client.get_experiment_by_name(registry.EXPERIMENT).experiment_id],
        "attributes.status = 'RUNNING'")]
    return per_key, aliases, running


def running_flow_runs(home: Path) -> list[str]:
    script = ("import asyncio\nfrom flows.settings import embedded_environment\n"
              "embedded_environment()\nfrom flows.embedded import cli_api\n"
              "from prefect.client.orchestration import get_client\n"
              "async def main():\n    async with get_client() as c:\n"
              "        runs = await c.read_flow_runs()\n"
              "        print([r.name for r in runs if r.state and r.state.is_running()])\n"
              "with cli_api():\n    asyncio.run(main())\n")
    out = subprocess.run([sys.executable, "-c", script], env=env(home), capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return ast.literal_eval(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("stage", list(TRIGGERS))
def test_kill_at_a_stage_then_rerun(prepared: Path, tmp_path: Path, stage: str,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    shutil.copytree(prepared, home)
    servers = kill_at(home, TRIGGERS[stage])
    deadline = time.monotonic() + 60  # SIGTERM from the kernel, then uvicorn's shutdown
    while any(running(pid) for pid in servers) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert servers and not any(running(pid) for pid in servers), \
        "the killed run's temporary Prefect server is still running"
    rerun = drpo(home, "run", "--date", DAY3.isoformat(), "--train-steps", "3000", *RUN)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "marked Crashed" in rerun.stdout or stage == "ingest"
    per_key, aliases, unfinished = registry_state(home, monkeypatch)
    assert all(n == 1 for n in per_key.values()) and len(per_key) == 2, per_key
    assert aliases["champion"] in (1, 2) and unfinished == []
    assert running_flow_runs(home) == []


@pytest.mark.slow
def test_two_concurrent_runs_of_one_date_register_one_version(
        prepared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    shutil.copytree(prepared, home)
    args = [DRPO, "run", "--date", DAY3.isoformat(), "--train-steps", "1500", *RUN]
    runs = [subprocess.Popen(args, env=env(home), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [run.communicate(timeout=600) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [o[1][-2000:] for o in outputs]
    per_key, _, unfinished = registry_state(home, monkeypatch)
    assert sorted(per_key.values()) == [1, 1] and unfinished == []
    assert sum("(new)" in out for out, _ in outputs) == 1  # the other run reused its version
