"""Data parallel training through torchrun (Gloo on CPU) equals one process: from the logs
in memory, and from a sample drawn out of core by each rank (one node or two "nodes")."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from drpo_core.export import load_policy
from drpo_core.policy import GaussianPolicy, PolicyConfig
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


# ---- training from a sample drawn out of core (issue 15) ------------------------------------
SAMPLE_DAY = dt.date(2026, 1, 1)
SAMPLE_STEPS, SAMPLE_BATCH = 30, 64


def train_from_warehouse(db: str, out: str) -> None:
    """One rank: open the warehouse read-only, weigh the window, draw this rank's part of the
    seeded sample, train; rank 0 saves the policy's weights."""
    from drpo_core.trainer import DistContext, TrainConfig, Trainer
    from drpo_core.warehouse import open_warehouse
    from drpo_core.warehouse.sample import draw_training_sample, weigh_window

    ctx = DistContext.from_env()
    torch.set_num_threads(1)
    with open_warehouse(Path(db), read_only=True) as wh:
        weigh_window(wh, SAMPLE_DAY, SAMPLE_DAY, 0.5)
        sample = draw_training_sample(wh, SAMPLE_DAY, SAMPLE_DAY, steps=SAMPLE_STEPS,
                                      batch_size=SAMPLE_BATCH, seed=5, rank=ctx.rank,
                                      world_size=ctx.world_size)
    cfg = TrainConfig(steps=SAMPLE_STEPS, batch_size=SAMPLE_BATCH, log_every=10,
                      checkpoint_every=10, device="cpu", policy={"hidden": (32,)})
    result = Trainer(cfg, sample, progress=False, dist_context=ctx).fit()
    if ctx.is_main:
        torch.save(result.policy.state_dict(), out)


@pytest.fixture
def sample_warehouse(tmp_path) -> Path:
    from drpo_core.warehouse import open_warehouse
    from drpo_core.warehouse.ingest import ingest_partition

    logs = tmp_path / "logs"
    LogSimulator(scenario_config("medium", d=10, n_items=300, n_users=200)).write(
        logs, SAMPLE_DAY, days=1, rows_per_day=2000, progress=False)
    with open_warehouse(tmp_path / "wh.duckdb") as wh:
        ingest_partition(wh, logs, SAMPLE_DAY)
    return tmp_path / "wh.duckdb"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("layout", [
    pytest.param("one node, two processes", marks=pytest.mark.slow),  # the two-node run covers it
    "two nodes, one process each"])
def test_ranks_drawing_their_own_parts_equal_the_one_process_run(sample_warehouse, tmp_path,
                                                                 layout: str) -> None:
    train_from_warehouse(str(sample_warehouse), str(tmp_path / "one.pt"))
    worker = ["-m", "tests.test_ddp", str(sample_warehouse), str(tmp_path / "two.pt")]
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    run = [sys.executable, "-m", "torch.distributed.run"]
    if layout.startswith("one node"):
        commands = [[*run, "--standalone", "--nproc-per-node", "2", *worker]]
    else:  # rendezvous on 127.0.0.1: two "nodes" on this machine
        endpoint = f"127.0.0.1:{free_port()}"
        commands = [[*run, "--nnodes", "2", "--nproc-per-node", "1", "--node-rank", str(node),
                     "--rdzv-backend", "c10d", "--rdzv-endpoint", endpoint,
                     "--rdzv-id", "drpo-test", *worker] for node in (0, 1)]
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env) for c in commands]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
    one = torch.load(tmp_path / "one.pt")
    two = torch.load(tmp_path / "two.pt")
    for name, value in one.items():
        torch.testing.assert_close(two[name], value, rtol=1e-4, atol=1e-5, msg=name)
    torch.manual_seed(0)  # the trainer's initial weights (seed 0): training moved them
    initial = GaussianPolicy(10, 10, PolicyConfig(hidden=(32,))).state_dict()
    assert not torch.equal(one["mean_head.weight"], initial["mean_head.weight"])


if __name__ == "__main__":
    train_from_warehouse(sys.argv[1], sys.argv[2])
