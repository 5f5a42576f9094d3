"""A run killed during training resumes from its checkpoint when the day is rerun."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time

from flows.jobs import data, train, window
from flows.params import RunParameters
from tests.flows.conftest import FIRST_DAY

PARAMS = RunParameters(window_days=2, train_steps=3000, batch_size=64)
SCRIPT = """
import datetime as dt, sys
from flows.jobs import train, window
from flows.params import RunParameters
params = RunParameters(window_days=2, train_steps=3000, batch_size=64)
day = dt.date.fromisoformat(sys.argv[1])
train.train(day, window.prepare_window(day, params), params.train_config(), progress=False)
"""


def test_killed_training_resumes_from_its_checkpoint(home) -> None:
    day = FIRST_DAY + dt.timedelta(days=2)
    for d in (FIRST_DAY, FIRST_DAY + dt.timedelta(days=1)):
        data.ingest(str(home / "logs" / "live"), d)
        data.require_valid(data.validate(d))
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
    result = train.train(day, window.prepare_window(day, PARAMS), PARAMS.train_config(),
                         progress=False)
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    assert metrics["resumed_from"] and metrics["resumed_from"] % 600 == 0
    assert metrics["steps"] == 3000 and (result.run_dir / "policy.pt").exists()
