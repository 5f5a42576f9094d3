"""Helpers for the registry tests (no tests here): a small real policy, its TorchScript file,
a catalogue, and one call of ``registry.log_and_register`` with the pipeline's arguments.

Also runnable as a script, for the kill and concurrency tests (a child process registers):

    python -m tests.flows.test_registry_support RUN_KEY WORKDIR [--kill-after-version]
        [--kill-during-logging] [--wait-for FILE]
"""

from __future__ import annotations

import argparse
import os
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from drpo_core.export import export_torchscript
from drpo_core.policy import GaussianPolicy, MeanActionHead, PolicyConfig

D_STATE, D_ACTION, N_ITEMS = 4, 3, 12


def tiny_policy(workdir: Path, seed: int = 0) -> tuple[MeanActionHead, Path]:
    torch.manual_seed(seed)
    policy = GaussianPolicy(D_STATE, D_ACTION, PolicyConfig(hidden=(8,))).eval()
    path = export_torchscript(policy, workdir / "policy.pt")
    return MeanActionHead(policy).eval(), path


def catalogue(seed: int = 1) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = [f"item-{i:03d}" for i in range(N_ITEMS)]
    return ids, rng.standard_normal((N_ITEMS, D_ACTION)).astype(np.float32)


def register(client: Any, run_key: str, workdir: Path, *, with_catalogue: bool = True,
             k: int = 3, tags: dict[str, str] | None = None, seed: int = 0) -> Any:
    from flows import registry

    workdir.mkdir(parents=True, exist_ok=True)
    head, path = tiny_policy(workdir, seed)
    ids, emb = catalogue()
    extra = {"catalogue_ids": ids, "catalogue_embeddings": emb, "k": k} if with_catalogue \
        else {}
    return registry.log_and_register(
        client, run_key=run_key, run_name=f"test-{run_key}",
        params={"algorithm": "drpo", "policy": {"hidden": [8]}},
        history=[{"step": 100.0, "losses/total": 1.5}, {"step": 200.0, "losses/total": 1.25}],
        metrics={"final/loss": 1.25}, artifacts=[], json_artifacts={
            "data_manifest.json": {"data_hash": "0123456789abcdef", "rows": 3000,
                                   "window": {"partitions": [
                                       {"event_date": "2026-01-01", "rows_kept": 1500},
                                       {"event_date": "2026-01-02", "rows_kept": 1500}]}}},
        policy_module=head, torchscript_path=path, d_state=D_STATE,
        tags=tags or {"logical_date": "2026-01-03", "window": "2026-01-01..2026-01-02",
                      "kappa": "1.0", "data_hash": "0123456789abcdef", "algorithm": "drpo"},
        **extra)


def _main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_key")
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--kill-after-version", action="store_true")
    parser.add_argument("--kill-during-logging", action="store_true")
    parser.add_argument("--wait-for", type=Path)
    args = parser.parse_args()
    from mlflow import MlflowClient

    from flows import registry

    client = registry.configure()
    if args.kill_after_version:  # the worst moment: the version exists, its run is RUNNING
        original = MlflowClient.create_model_version

        def create_then_die(self: Any, *a: Any, **kw: Any) -> Any:
            original(self, *a, **kw)
            os.kill(os.getpid(), signal.SIGKILL)

        MlflowClient.create_model_version = create_then_die
    if args.kill_during_logging:  # the run exists and is RUNNING, no version yet
        import importlib

        def die(*a: Any, **kw: Any) -> None:
            os.kill(os.getpid(), signal.SIGKILL)

        # the module itself, not mlflow's lazy-loading stand-in for it
        importlib.import_module("mlflow.pyfunc").log_model = die
    if args.wait_for is not None:  # start line for the concurrency test
        while not args.wait_for.exists():
            time.sleep(0.01)
    result = register(client, args.run_key, args.workdir)
    print(f"version={result.version} created={result.created}", flush=True)


if __name__ == "__main__":
    _main()
