"""Data parallel training through torchrun (Gloo on CPU) equals one process."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import pytest
import torch

from drpo_core.export import load_policy
from drpo_core.sim import LogSimulator, scenario_config


@pytest.mark.parametrize("algorithm", ["drpo", pytest.param("iql", marks=pytest.mark.slow)])
def test_two_process_gloo_run_equals_one_process(tmp_path, algorithm: str) -> None:
    logs = tmp_path / "logs"
    LogSimulator(scenario_config("medium", d=10, n_items=300, n_users=200)).write(
        logs, dt.date(2026, 1, 1), days=1, rows_per_day=2000, progress=False)
    args = ["train", "--data", str(logs), "--algorithm", algorithm, "--steps", "40",
            "--batch-size", "64", "--device", "cpu", "--no-progress"]
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    single = subprocess.run([sys.executable, "-m", "flows.cli", *args,
                             "--output", str(tmp_path / "one")],
                            capture_output=True, text=True, env=env, timeout=300)
    assert single.returncode == 0, single.stderr
    double = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "flows.cli", *args, "--output", str(tmp_path / "two")],
        capture_output=True, text=True, env=env, timeout=300)
    assert double.returncode == 0, double.stderr[-3000:]
    one = load_policy(tmp_path / "one" / "policy.pt")
    two = load_policy(tmp_path / "two" / "policy.pt")
    x = torch.randn(64, 10)
    torch.testing.assert_close(two(x), one(x), rtol=1e-4, atol=1e-5)
    assert not torch.equal(one(x), torch.zeros_like(one(x)))
