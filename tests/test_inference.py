"""The numpy adapter and the eager policy of a finished run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from drpo_core.data import TrainingData
from drpo_core.export import load_policy
from drpo_core.inference import load_run_policy, numpy_policy
from drpo_core.trainer import TrainConfig
from drpo_core.training_run import run_training


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    g = torch.Generator().manual_seed(0)
    n = 400
    data = TrainingData(torch.randn(n, 4, generator=g), torch.randn(n, 3, generator=g),
                        torch.rand(n, generator=g), torch.zeros(n))
    out = tmp_path_factory.mktemp("run") / "r"
    run_training(TrainConfig(algorithm="bc", steps=20, batch_size=32, log_every=10,
                             checkpoint_every=10), data, out, progress=False)
    return out


def test_run_policy_acts_like_its_torchscript_export(run_dir: Path) -> None:
    states = np.random.default_rng(0).normal(size=(7, 4)).astype(np.float32)
    eager = numpy_policy(load_run_policy(run_dir))(states)
    scripted = numpy_policy(load_policy(run_dir / "policy.pt"))(states)
    assert eager.shape == (7, 3) and eager.dtype == np.float32
    np.testing.assert_allclose(eager, scripted, atol=1e-6)
    assert np.abs(eager).sum() > 0


def test_wrong_state_dimension_is_one_clear_error(run_dir: Path) -> None:
    act = numpy_policy(load_run_policy(run_dir))
    with pytest.raises(ValueError, match=r"does not accept states of shape \(2, 5\)"):
        act(np.zeros((2, 5), dtype=np.float32))


def test_unfinished_or_corrupt_run_is_refused(run_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="did not finish"):
        load_run_policy(tmp_path)
    (tmp_path / "policy_state.pt").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="is not a policy state"):
        load_run_policy(tmp_path)
