"""DRPO (paper Sec. 4, App. G Algorithm 1) and its two siblings that share the filter.

Algorithm 1, per step on a batch of N rewards r:
  K = N P;  B_top = the top K mass of r, ties at the cut share it (filtering.py) (step 3)
  P <- min(1, 1.02 P) if std(r_top) < 0.5 std(r) else max(0.05, 0.98 P)  (step 4, App. G)
  nu = min(r_top);  A_j = r_j - nu >= 0;  Ã = A / (std(A) + eps)         (step 5, no centring)
  L = -(1/K) sum_{j in B_top} m_j Ã_j log pi(a_j | s_j)                  (step 6)
  (m_j = the row's kept mass: 1, or the tie share at the cut; std and means are m-weighted)

r is the batch's quality signal (``quality``, objectives/critic.py): the logged reward by default
(the paper's), or the session's return-to-go, the advantage r - V(s), or Q(s, a) (DRPO-Q).

This is the truncated regression J = kappa^-1 E[(R - nu*)_+ log pi] of the CVaR dual (Sec. 4.2,
App. F.2): every kept weight is >= 0, so no repulsive gradient ever reaches the policy.

* ``drpo_exp`` ("hard cut, soft focus", Sec. 4.4, App. J): w = exp((r - mean(r_top)) / beta),
  beta = 0.05, clipped at EXP_WEIGHT_MAX (the paper does not say whether it clips; with rewards
  in [0, 1] and beta = 0.05 unclipped weights reach e^20, so we clip as AWR does).
* ``adaptive_bc`` (App. I): the same filter and controller, uniform weights on the kept rows.

Choices where the paper is silent or contradicts itself (digest §10.3-10.4, §13):
* The controller is App. G's ratio rule (the only concrete specification), not the main text's
  "kappa ∝ Var(R)".
* std is the population std (correction 0), so K = 1 stays finite; eps = 1e-8.
* All-equal kept rewards give A = 0: that step contributes no gradient (by design, no crash).
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import numpy as np
import torch
from pydantic import Field

from drpo_core.filtering import (
    ControllerConfig,
    HostTopFilter,
    TopFilter,
    VarianceFeedbackController,
    batch_std_host,
    masked_std,
    on_host,
    top_kappa_host,
)
from drpo_core.objectives.base import (
    Batch,
    DataNeeds,
    LossOutput,
    Objective,
    ObjectiveConfig,
    exp_weights,
    host_rows_loss,
    weighted_log_likelihood_loss,
)
from drpo_core.objectives.critic import QualityConfig, make_critic, quality_data_needs
from drpo_core.policy import GaussianPolicy


class DRPOConfig(QualityConfig):
    """DRPO: App. J table defaults."""

    controller: ControllerConfig = Field(default_factory=ControllerConfig,
                                         description="variance feedback control of P")
    eps: float = Field(1e-8, gt=0.0, description="epsilon of the advantage normalisation")
    baseline: Literal["min_top", "mean_top"] = Field(
        "min_top",
        description="nu = min(r_top) (Algorithm 1) or the ablation's plain advantage "
        "r - mean(r_top), whose kept rows can be negative (Table 2, row 1)")


class DRPOExpConfig(DRPOConfig):
    temperature: float = Field(0.05, gt=0.0, description="beta of exp((r - mean(r_top))/beta)")
    max_weight: float = Field(20.0, gt=0.0, description="clip of the exponential weights")


class _FilteredObjective(Objective):
    """Shared part: top-P filter on the global batch + controller update + metrics.

    The filter, the controller and the weights act on the batch's quality signal (``quality``,
    objectives/critic.py: the reward by default); with a learned one (advantage, q) the critic's
    loss is added to the policy's and reported as ``critic/loss``.
    The loss runs the policy on the kept rows only (on CPU: gathered, the about P N rows at or
    above the cut; on an accelerator the whole shard under the weights, which needs no host
    synchronisation). Both give L = -(1/K) sum_j w_j log pi(a_j | s_j) (step 6).
    On the CPU the selection (steps 3-5) runs in numpy on the signal's view (``_host_loss``):
    after the cut only the kept rows (about N P) are touched, and tensors are made only for
    them, their weights and the metrics.
    """

    def __init__(self, policy: GaussianPolicy, config: DRPOConfig) -> None:
        super().__init__(policy, config)
        self.controller = VarianceFeedbackController(config.controller)
        self.critic = make_critic(config, policy)

    @classmethod
    def data_needs_of(cls, config: ObjectiveConfig) -> DataNeeds:
        assert isinstance(config, QualityConfig)
        return quality_data_needs(config)

    def weights(self, reward: torch.Tensor, kept: TopFilter,
                sigma_top: torch.Tensor | None = None) -> torch.Tensor:
        """Per-row loss weights w_j of the global batch (0 outside the kept set);
        ``sigma_top`` = the kept rewards' std when the caller has it already."""
        raise NotImplementedError

    def weights_host(self, kept: HostTopFilter, sigma_top: np.floating) -> np.ndarray:
        """``weights`` in numpy on the kept rows only (``kept.rows``; every other row's weight
        is 0), in the rewards' dtype (the host path)."""
        raise NotImplementedError

    def loss(self, batch: Batch, step: int) -> LossOutput:
        quality, critic_loss = self.quality_signal(batch)
        if on_host(quality):
            loss, metrics = self._host_loss(batch, quality.numpy())
        else:
            loss, metrics = self._device_loss(batch, quality)
        if critic_loss is not None:
            loss = loss + critic_loss
            metrics["critic/loss"] = critic_loss.detach()
        return LossOutput(loss, metrics)

    def _device_loss(self, batch: Batch, quality: torch.Tensor
                     ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Tensor operations only: no host synchronisation."""
        keep_share = self.controller.keep_share.clone()
        kept = self.controller.filter(quality)
        sigma_top = masked_std(quality, kept.weight, kept.count)
        ratio = self.controller.update(quality, kept, sigma_top)  # the new P: from the next step
        w_all = self.weights(quality, kept, sigma_top)
        loss = weighted_log_likelihood_loss(self.policy, batch, w_all, kept.count)
        return loss, {"filter/keep_share": keep_share, "filter/nu": kept.nu,
                      "filter/sigma_ratio": ratio, "filter/kept": kept.count}

    def _host_loss(self, batch: Batch, r: np.ndarray
                   ) -> tuple[torch.Tensor, dict[str, torch.Tensor | float]]:
        """Steps 3-5 in numpy, on the kept rows after the cut, then their loss (step 6).
        The metrics are host floats (no tensor per metric and step)."""
        keep_share = self.controller.keep_share_host()
        sigma_batch = batch_std_host(r)  # std(r): finite unless a reward is NaN or inf
        kept = top_kappa_host(r, keep_share, finite=math.isfinite(sigma_batch))  # step 3
        sigma_top = kept.std()  # std(r_top)
        ratio = self.controller.update_host(sigma_top, sigma_batch)  # step 4: P, next step
        rows, w = _this_shard(kept.rows, self.weights_host(kept, sigma_top), batch.shard, len(r))
        # the kept rows reach the network, the cut's (weight 0 under min_top) too: one row
        # more is cheaper than a selection, and the accelerator path runs every row anyway
        count = float(kept.count)
        loss = host_rows_loss(self.policy, batch, rows, w, count)  # step 6
        return loss, {"filter/keep_share": keep_share, "filter/nu": float(kept.nu),
                      "filter/sigma_ratio": float(ratio), "filter/kept": count}

    def quality_signal(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The global batch's quality (detached) and the critic's loss (None without one)."""
        if self.critic is None:  # reward, or return-to-go exported in the reward column
            return batch.reward_all, None
        return self.critic(batch)

    def needs_after_step(self) -> bool:
        return self.critic is not None  # the critic's target network; none on reward / return

    @torch.no_grad()
    def after_step(self, step: int) -> None:
        if self.critic is not None:
            self.critic.after_step()


def _kept_mean(x: torch.Tensor, kept: TopFilter) -> torch.Tensor:
    return (x * kept.weight).sum() / kept.count  # count = kappa N > 0


def _kept_mean_host(kept: HostTopFilter) -> np.floating:
    return np.dot(kept.top, kept.weight) / kept.count


def _this_shard(rows: np.ndarray, w: np.ndarray, shard: slice, n: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """The kept rows of the global batch that fall in this rank's shard, as shard positions."""
    start, stop, _ = shard.indices(n)
    if (start, stop) == (0, n):
        return rows, w
    lo, hi = np.searchsorted(rows, (start, stop))
    return rows[lo:hi] - start, w[lo:hi]


class DRPO(_FilteredObjective):
    name: ClassVar[str] = "drpo"
    Config: ClassVar[type[ObjectiveConfig]] = DRPOConfig
    config: DRPOConfig

    def weights(self, reward: torch.Tensor, kept: TopFilter,
                sigma_top: torch.Tensor | None = None) -> torch.Tensor:
        nu = kept.nu
        if self.config.baseline == "mean_top":  # ablation only: centred, repulsive terms back
            nu = _kept_mean(reward, kept)
        advantage = torch.where(kept.mask, reward - nu, 0.0)  # >= 0 (step 5)
        # std of A over the kept rows = that of r (A is r shifted by nu there): sigma_top
        std = masked_std(reward, kept.weight, kept.count) if sigma_top is None else sigma_top
        return kept.weight * advantage / (std + self.config.eps)  # scale only, no centring

    def weights_host(self, kept: HostTopFilter, sigma_top: np.floating) -> np.ndarray:
        scale = sigma_top + kept.top.dtype.type(self.config.eps)
        if self.config.baseline == "min_top":  # A = r - nu >= 0 on the kept rows (step 5);
            # every mass is 1 above the cut and A = 0 at it, so m A = A exactly (a NaN
            # reward's batch has a NaN std: every weight is NaN either way)
            return kept.excess / scale
        return kept.weight * (kept.top - _kept_mean_host(kept)) / scale


class DRPOExp(_FilteredObjective):
    name: ClassVar[str] = "drpo_exp"
    Config: ClassVar[type[ObjectiveConfig]] = DRPOExpConfig
    config: DRPOExpConfig

    def weights(self, reward: torch.Tensor, kept: TopFilter,
                sigma_top: torch.Tensor | None = None) -> torch.Tensor:
        w = exp_weights(reward - _kept_mean(reward, kept), self.config.temperature,
                        self.config.max_weight)
        return w * kept.weight

    def weights_host(self, kept: HostTopFilter, sigma_top: np.floating) -> np.ndarray:
        real, c = kept.top.dtype.type, self.config
        scaled = (kept.top - _kept_mean_host(kept)) / real(c.temperature)
        return np.exp(np.minimum(scaled, real(math.log(c.max_weight)))) * kept.weight


class AdaptiveBC(_FilteredObjective):
    name: ClassVar[str] = "adaptive_bc"
    Config: ClassVar[type[ObjectiveConfig]] = DRPOConfig

    def weights(self, reward: torch.Tensor, kept: TopFilter,
                sigma_top: torch.Tensor | None = None) -> torch.Tensor:
        return kept.weight

    def weights_host(self, kept: HostTopFilter, sigma_top: np.floating) -> np.ndarray:
        return kept.weight
