"""One contract, every registered objective (d3rlpy-style shared harness)."""

from __future__ import annotations

import math

import pytest
import torch

from drpo_core.objectives import REGISTRY
from drpo_core.trainer import TrainConfig, Trainer
from tests.helpers import easy_task

ALGORITHMS = sorted(REGISTRY)


def config(algorithm: str, steps: int, **kw) -> TrainConfig:
    return TrainConfig(algorithm=algorithm, steps=steps, batch_size=64, log_every=10,
                       checkpoint_every=10, policy={"hidden": (32, 32)}, **kw)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_finite_loss_that_decreases_on_an_easy_task(algorithm: str) -> None:
    data = easy_task()
    result = Trainer(config(algorithm, 300), data, progress=False).fit()
    losses = [r["losses/total"] for r in result.history]
    assert all(math.isfinite(v) for v in losses)
    assert sum(losses[-5:]) / 5 < sum(losses[:3]) / 3, losses


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_resume_gives_identical_next_steps(algorithm: str, tmp_path) -> None:
    data = easy_task(n=512)
    straight = Trainer(config(algorithm, 40), data, progress=False).fit()
    first = Trainer(config(algorithm, 20), data, tmp_path, progress=False)
    first.fit()
    resumed = Trainer(config(algorithm, 40), data, tmp_path, progress=False).fit(resume=True)
    assert resumed.resumed_from == 20
    for (name, a), b in zip(straight.objective.state_dict().items(),
                            resumed.objective.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert straight.history == resumed.history
