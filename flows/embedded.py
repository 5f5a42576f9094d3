"""The Prefect API of a CLI run (``drpo run``, ``drpo backfill``) when no server is configured.

Prefect's own temporary server is a child process that outlives a CLI killed with SIGKILL,
and the killed run's flow run stays RUNNING in the database forever. Here:

* the temporary server is started with ``PR_SET_PDEATHSIG``: the kernel stops it when the CLI
  process dies, however it dies (Linux; elsewhere it is stopped on a normal exit only);
* every flow run of a CLI process carries the tag ``drpo-pid:<pid>``; the next CLI run marks
  the RUNNING or PENDING flow runs (and their task runs) whose process is gone ``Crashed``.

With ``PREFECT_API_URL`` set (a real server, or Prefect's test harness) the server is not
started, and orphaned runs are still marked.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

PID_TAG = "drpo-pid:"
STARTUP_TIMEOUT_S = 120.0
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server() -> tuple[subprocess.Popen, str]:
    """The API Prefect's temporary server serves (no UI), as a child that dies with us."""
    import prefect

    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--app-dir", str(Path(prefect.__file__).parent.parent),
         "--factory", "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port",
         str(port), "--log-level", "error", "--lifespan", "on"],
        env={**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1"},
        preexec_fn=_die_with_parent if sys.platform == "linux" else None)
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the temporary Prefect API exited with code {server.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return server, url
        time.sleep(0.2)
    stop_server(server)
    raise RuntimeError(f"the temporary Prefect API did not start within {STARTUP_TIMEOUT_S:g} s")


def stop_server(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def _crash_orphans() -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
        TaskRunFilter,
        TaskRunFilterFlowRunId,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.states import Crashed

    active = FlowRunFilterState(type=FlowRunFilterStateType(
        any_=[StateType.RUNNING, StateType.PENDING]))
    crashed = []
    async with get_client() as client:
        for run in await client.read_flow_runs(flow_run_filter=FlowRunFilter(state=active)):
            pids = [int(t.removeprefix(PID_TAG)) for t in run.tags if t.startswith(PID_TAG)]
            if not pids or _alive(pids[0]):
                continue
            message = f"the drpo process {pids[0]} running it was killed"
            tasks = await client.read_task_runs(task_run_filter=TaskRunFilter(
                flow_run_id=TaskRunFilterFlowRunId(any_=[run.id])))
            for task in tasks:
                if task.state is not None and not task.state.is_final():
                    await client.set_task_run_state(task.id, Crashed(message=message),
                                                    force=True)
            await client.set_flow_run_state(run.id, Crashed(message=message), force=True)
            crashed.append(run.name)
    return crashed


def crash_orphaned_runs() -> list[str]:
    """Mark the active flow runs of dead CLI processes Crashed; their names."""
    return asyncio.run(_crash_orphans())


@contextlib.contextmanager
def cli_api(say: Callable[[str], object] = print) -> Iterator[list[str]]:
    """The API a CLI run uses, its flow runs tagged with this process; yields the names of
    the orphaned runs it marked Crashed."""
    from prefect import tags
    from prefect.settings import PREFECT_API_URL, temporary_settings

    server = None
    if not PREFECT_API_URL.value():
        say("starting a temporary Prefect API for this run (PREFECT_API_URL is not set)")
        server, url = start_server()
    try:
        with temporary_settings(updates={PREFECT_API_URL: url} if server else {}):
            crashed = crash_orphaned_runs()
            with tags(f"{PID_TAG}{os.getpid()}"):
                yield crashed
    finally:
        if server is not None:
            stop_server(server)
