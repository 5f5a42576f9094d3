"""A run killed during training resumes from its checkpoint when the day is rerun."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time

from flows import steps
from flows.pipeline import _train_config
from tests.flows.conftest import FIRST_DAY

SCRIPT = """
import datetime as dt, sys
from flows import steps
from flows.pipeline import _train_config
day = dt.date.fromisoformat(sys.argv[1])
window = steps.prepare_window(day - dt.timedelta(days=2), day - dt.timedelta(days=1), 1.0, "none")
steps.train(day, window, _train_config("drpo", 3000, 64, 0), progress=False)
"""


def test_killed_training_resumes_from_its_checkpoint(home) -> None:
    day = FIRST_DAY + dt.timedelta(days=2)
    for d in (FIRST_DAY, FIRST_DAY + dt.timedelta(days=1)):
        steps.ingest(home / "logs" / "live", d)
    child = subprocess.Popen([sys.executable, "-c", SCRIPT, day.isoformat()],
                             env=os.environ.copy())
    runs = home / "runs" / day.isoformat()
    deadline = time.monotonic() + 120
    while not list(runs.glob("*/checkpoint.pt")) and time.monotonic() < deadline:
        time.sleep(0.05)
    child.kill()
    child.wait()
    assert list(runs.glob("*/checkpoint.pt")), "the child never wrote a checkpoint"
    assert not list(runs.glob("*/policy.pt"))  # killed before the end
    window = steps.prepare_window(FIRST_DAY, FIRST_DAY + dt.timedelta(days=1), 1.0, "none")
    result = steps.train(day, window, _train_config("drpo", 3000, 64, 0), progress=False)
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    assert metrics["resumed_from"] and metrics["resumed_from"] % 600 == 0
    assert metrics["steps"] == 3000 and (result.run_dir / "policy.pt").exists()
