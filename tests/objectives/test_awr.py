"""AWR with normalised advantages is scale-free: multiplying every reward by c leaves the
advantage weights unchanged (the value network is taken at the same weights both times)."""

from __future__ import annotations

import pytest
import torch

from drpo_core.objectives import make_objective
from drpo_core.objectives.base import Batch
from drpo_core.policy import GaussianPolicy


def weight_mean(reward: torch.Tensor, normalize: bool, scale: float) -> float:
    torch.manual_seed(0)
    policy = GaussianPolicy(4, 3)
    awr = make_objective("awr", policy, {"normalize_advantage": normalize,
                                         "temperature": 0.5})
    with torch.no_grad():  # V = 0, so A = r and the scale reaches the weights
        for p in awr.value.parameters():
            p.zero_()
    g = torch.Generator().manual_seed(1)
    state, action = torch.randn(64, 4, generator=g), torch.randn(64, 3, generator=g)
    batch = Batch(state=state, action=action, reward=scale * reward,
                  behavior_logprob=torch.zeros(64), reward_all=scale * reward)
    return float(awr.loss(batch, 0).metrics["awr/weight_mean"])


def test_normalised_advantages_are_scale_free_and_raw_ones_are_not() -> None:
    reward = torch.rand(64, generator=torch.Generator().manual_seed(2))
    assert weight_mean(reward, True, 1.0) == pytest.approx(weight_mean(reward, True, 7.0),
                                                           rel=1e-6)
    raw = weight_mean(reward, False, 1.0), weight_mean(reward, False, 7.0)
    assert raw[1] > 2 * raw[0]  # exp(7 r / beta) clips far more often than exp(r / beta)
