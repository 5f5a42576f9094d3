"""A backfill with ``retrain="each"`` on a 2-worker local Dask cluster (started by the flow, in
this test) registers what the sequential backfill registers: the same versions, tags, params,
metrics and aliases, from two homes holding the same logs."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from drpo_core.inference import POLICY_STATE_FILE
from drpo_core.sim import LogSimulator, scenario_config
from flows import pipeline, registry
from flows.params import RunParameters
from tests.flows.conftest import FIRST_DAY, SMALL_WORLD

LAST_DAY = FIRST_DAY + dt.timedelta(days=3)  # a 4-date backfill: 3 dates have a window
PARAMS = RunParameters(train_steps=100, batch_size=64, eval_users=300, window_days=2, kappa=0.5)


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dask_logs") / "live"
    LogSimulator(scenario_config("medium", **SMALL_WORLD)).write(
        root, FIRST_DAY, days=4, rows_per_day=1500, progress=False)
    return root


def fresh_home(tmp_path: Path, name: str, mlflow_template: Path, logs: Path) -> Path:
    home = tmp_path / name
    shutil.copytree(logs, home / "logs" / "live")
    shutil.copy(mlflow_template, home / "mlflow.db")
    return home


#: values that differ between any two runs: the code's commit (another may land between the
#: two backfills) and the checksum of the saved TorchScript file (each save has its own id);
#: the policy's weights are compared instead
PER_RUN = {"git_sha", "policy_sha256"}


def comparable(home: Path, values: dict[str, str]) -> dict[str, str]:
    """The values without PER_RUN, the home's path and the validation's timestamp."""
    return {k: re.sub(r"/\d{8}T\d{6}\.\d+Z/", "/<time>/", v.replace(str(home), "<home>"))
            for k, v in values.items() if k not in PER_RUN}


def registered(home: Path) -> dict[int, dict[str, Any]]:
    """Every version: its tags, its run's params and metrics, its policy's weights."""
    client = registry.configure()
    out = {}
    for v in client.search_model_versions(f"name = '{registry.MODEL_NAME}'"):
        run = client.get_run(v.run_id).data
        out[int(v.version)] = {"tags": comparable(home, v.tags),
                               "params": comparable(home, run.params), "metrics": run.metrics}
    aliases = {a: int(registry.alias_version(client, a).version)
               for a in ("champion", "challenger")}
    return {**out, 0: {"aliases": aliases}}


def same_weights(a: Path, b: Path) -> bool:
    left, right = (torch.load(d / POLICY_STATE_FILE, weights_only=True)["weights"]
                   for d in (a, b))
    return left.keys() == right.keys() and all(torch.equal(left[k], right[k]) for k in left)


def differences(a: dict[int, dict[str, Any]], b: dict[int, dict[str, Any]]) -> list[str]:
    """What differs between two ``registered`` results, one line per value."""
    return [f"version {v} {part} {key}: {a[v][part].get(key)} != {b[v][part].get(key)}"
            for v in sorted(a.keys() | b.keys()) for part in a.get(v, b.get(v, {}))
            for key in sorted(a.get(v, {}).get(part, {}).keys()
                              | b.get(v, {}).get(part, {}).keys())
            if a.get(v, {}).get(part, {}).get(key) != b.get(v, {}).get(part, {}).get(key)]


def backfill_in(home: Path, monkeypatch: pytest.MonkeyPatch, workers: int
                ) -> tuple[dict[str, Any], dict[int, dict[str, Any]]]:
    monkeypatch.setenv("DRPO_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("DRPO_DASK_ADDRESS", raising=False)
    params = RunParameters.model_validate(PARAMS.model_dump() | {"backfill_workers": workers})
    result = pipeline.backfill(start=FIRST_DAY, end=LAST_DAY, retrain="each", params=params)
    return result, registered(home)


def test_a_backfill_on_two_dask_workers_registers_what_the_sequential_one_does(
        prefect_api, mlflow_template, logs, tmp_path, monkeypatch):
    seq_home = fresh_home(tmp_path, "sequential", mlflow_template, logs)
    dask_home = fresh_home(tmp_path, "dask", mlflow_template, logs)
    sequential, seq_versions = backfill_in(seq_home, monkeypatch, workers=1)
    distributed, dask_versions = backfill_in(dask_home, monkeypatch, workers=2)

    assert [r["version"] for r in distributed["retrained"]] == [1, 2, 3]
    assert sorted(dask_versions) == [0, 1, 2, 3]
    diffs = differences(dask_versions, seq_versions)
    assert not diffs, "\n".join(diffs)
    for seq, par in zip(sequential["retrained"], distributed["retrained"], strict=True):
        assert par["gate"] == seq["gate"] and par["evaluation"] == seq["evaluation"]
        seq_dir, par_dir = Path(seq["run_dir"]), Path(par["run_dir"])
        assert par_dir.relative_to(dask_home) == seq_dir.relative_to(seq_home)  # same run key
        assert same_weights(seq_dir, par_dir)
    assert seq_versions[1]["metrics"]["eval/online_mean_reward"] > 0
