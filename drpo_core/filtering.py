"""Batch-level top-P filter and the variance feedback controller (paper App. G, Algorithm 1).

Everything here stays on the device: the kept share P is a float64 buffer, K = floor(N * P) is a
tensor, and the kept set is a mask built from one sort. No host synchronisation per step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn


class ControllerConfig(BaseModel):
    """App. G / App. J table: variance feedback control of the kept share P ("top-P")."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    initial_keep_share: float = Field(0.5, gt=0.0, le=1.0, description="P0 (App. J: 0.5)")
    target_ratio: float = Field(0.5, gt=0.0, description="lambda: target sigma_top / sigma_batch")
    relax_factor: float = Field(1.02, gt=1.0, description="gamma_up: P <- min(1, gamma_up * P)")
    tighten_factor: float = Field(0.98, gt=0.0, lt=1.0,
                                  description="gamma_down: P <- max(P_min, gamma_down * P)")
    min_keep_share: float = Field(0.05, gt=0.0, le=1.0, description="lower bound of P")
    max_keep_share: float = Field(1.0, gt=0.0, le=1.0, description="upper bound of P")
    adaptive: bool = Field(True, description="False = fixed P (the ablation's fixed ratio)")


@dataclass(frozen=True)
class TopFilter:
    """The kept set of one batch: mask over the batch, threshold nu, count K."""

    mask: torch.Tensor  # (N,) bool
    nu: torch.Tensor  # () min kept reward, the empirical top-K threshold
    count: torch.Tensor  # () K as float


def top_share_mask(reward: torch.Tensor, keep_share: torch.Tensor) -> TopFilter:
    """Algorithm 1 step 3: K = int(N * P) (at least 1) rows with the largest reward.

    One global ranking over the whole batch; ties at the boundary are broken by sort order
    (the boundary rows get advantage 0 in DRPO either way).
    """
    n = reward.shape[0]
    sorted_r, order = torch.sort(reward, descending=True, stable=True)
    k = torch.clamp(torch.floor(keep_share * n), min=1, max=n).to(torch.long)
    rank = torch.empty_like(order)
    rank[order] = torch.arange(n, device=reward.device)
    mask = rank < k
    nu = sorted_r.gather(0, (k - 1).reshape(1)).squeeze(0)
    return TopFilter(mask, nu, k.to(reward.dtype))


def masked_std(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Population std of x over the rows where mask is true."""
    m = mask.to(x.dtype)
    count = m.sum().clamp(min=1.0)
    mean = (x * m).sum() / count
    return torch.sqrt(((x - mean) ** 2 * m).sum() / count)


class VarianceFeedbackController(nn.Module):
    """Keeps sigma_top / sigma_batch near lambda by moving P multiplicatively (App. G).

    if sigma_top < lambda * sigma_batch:  P <- min(P_max, gamma_up * P)   (subset too homogeneous)
    else:                                  P <- max(P_min, gamma_down * P) (subset too noisy)
    """

    keep_share: torch.Tensor

    def __init__(self, config: ControllerConfig | None = None) -> None:
        super().__init__()
        self.config = config or ControllerConfig()
        self.register_buffer(
            "keep_share", torch.tensor(self.config.initial_keep_share, dtype=torch.float64)
        )

    def filter(self, reward: torch.Tensor) -> TopFilter:
        return top_share_mask(reward, self.keep_share.to(reward.dtype))

    @torch.no_grad()
    def update(self, reward: torch.Tensor, kept: TopFilter) -> torch.Tensor:
        """Algorithm 1 step 4; returns sigma_top / sigma_batch. The new P applies next step."""
        c = self.config
        sigma_batch = reward.std(correction=0)
        sigma_top = masked_std(reward, kept.mask)
        ratio = sigma_top / sigma_batch.clamp(min=1e-12)
        if c.adaptive:
            p = self.keep_share
            relaxed = torch.clamp(p * c.relax_factor, max=c.max_keep_share)
            tightened = torch.clamp(p * c.tighten_factor, min=c.min_keep_share)
            self.keep_share.copy_(torch.where(sigma_top < c.target_ratio * sigma_batch,
                                              relaxed, tightened))
        return ratio
