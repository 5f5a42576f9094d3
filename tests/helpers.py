"""Small synthetic data sets shared by the tests."""

from __future__ import annotations

import torch

from drpo_core.data import TrainingData


def easy_task(n: int = 2048, d_state: int = 4, d_action: int = 3, seed: int = 0,
              good_share: float = 0.3) -> TrainingData:
    """A bandit where good rows act close to tanh(W s) and score high; the rest are noise."""
    g = torch.Generator().manual_seed(seed)
    state = torch.randn(n, d_state, generator=g)
    w = torch.randn(d_state, d_action, generator=g)
    target = torch.tanh(state @ w)
    good = torch.rand(n, generator=g) < good_share
    action = torch.where(good[:, None], target + 0.1 * torch.randn(n, d_action, generator=g),
                         torch.randn(n, d_action, generator=g))
    reward = torch.exp(-((action - target) ** 2).sum(dim=1)) + 0.05 * torch.randn(n, generator=g)
    return TrainingData(state, action, reward.clamp(0, 1), torch.full((n,), -3.0))
