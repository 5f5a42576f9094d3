"""Batch-level top-P filter, the variance feedback controller (paper App. G, Algorithm 1), and
the one tie rule every top-kappa of the project uses (the SQL filter's, sql/cvar_filter*.sql).

The tie rule (Theorem 4.1 with atoms, App. F.1): of n rows keep the top kappa of the mass by
descending quality. The cut is the quality of descending rank k = ceil(kappa n) (at least 1), a
value that occurs in the data; rows strictly above it keep weight 1, and the rows tied at it
share the fraction (kappa n - rows_above) / rows_at, clipped to [0, 1], so the kept mass is
exactly kappa n (or at least the one cut row's share when kappa n < 1). ``top_kappa`` computes it
on the device (no host synchronisation); ``top_kappa_weights`` is the same rule in numpy for
callers off the training path.

Two paths, one rule. On the CPU (``HOST_DEVICES``) the filter, the kept rewards' std and the
controller run in numpy on the step's N rewards: one view in, a few arrays out, each operation
about a microsecond where a tensor operation costs several (issue 15 §5: the dozens of small
tensor operations of the step's selection cost more than the bare loop's one ``topk``). On an
accelerator the tensor code runs and nothing is read back to the host. Both give the same
weights, cut, mass and P (tests/test_filtering.py trains the same run on both).

Behaviour change (issue 12), where it differs from before and why:
* Algorithm 1 (``top_share_mask``) kept K = floor(N P) rows and broke ties at the boundary by
  sort order, so the kept share was floor(N P) / N and which of two tied rows was kept depended
  on the batch order. Now the kept mass is exactly N P: when N P is not an integer the row at
  rank ceil(N P) takes the fractional weight N P - floor(N P), and tied rows are weighted alike
  (the digest's Algorithm 1 keeps "the top P share"; only the tie rule makes that exact).
  With DRPO's min_top baseline the cut rows get advantage 0 either way; the change reaches the
  normaliser (1/K is now 1/(N P)), the std of the kept advantages, and adaptive_bc / drpo_exp.
* %BC (``filtered_bc``) kept ``reward >= torch.quantile(reward, 1 - fraction)``, an
  interpolating cut: with ties or a non-integer kappa n it kept a mass other than kappa.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

#: rank k = ceil(kappa n - CEIL_SLACK): kappa n = 3.0000000001 from float error still gives 3
CEIL_SLACK = 1e-9
#: device types whose per-batch selection runs in numpy on the host (reading a value is free)
HOST_DEVICES = frozenset({"cpu"})
_HOST_DTYPES = frozenset({torch.float32, torch.float64})


def on_host(x: torch.Tensor) -> bool:
    """True when ``x`` can go through numpy: a CPU tensor outside autograd, of a numpy dtype."""
    on_cpu = x.is_cpu and "cpu" in HOST_DEVICES  # is_cpu: no device object per call
    return on_cpu and x.dtype in _HOST_DTYPES and not x.requires_grad


def host_scalar(value: float | np.floating, dtype: np.dtype) -> torch.Tensor:
    """A 0-d tensor of ``dtype`` (torch.tensor costs three times what from_numpy does)."""
    return torch.from_numpy(np.asarray(value, dtype=dtype))


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
    """The kept set of one batch: per-row kept mass, mask, threshold nu and kept mass K."""

    weight: torch.Tensor  # (N,) kept mass per row: 1 above the cut, the tie share at it, else 0
    mask: torch.Tensor  # (N,) bool, weight > 0
    nu: torch.Tensor  # () the cut: the smallest kept reward
    count: torch.Tensor  # () K = sum(weight) = kappa N (the kept mass, fractional with ties)


def top_kappa(reward: torch.Tensor, kappa: torch.Tensor | float) -> TopFilter:
    """The SQL's tie rule on a tensor: keep the top ``kappa`` mass of ``reward`` (see above).

    On the CPU in numpy (``_top_kappa_host``); on an accelerator in tensor operations with no
    host synchronisation. Both give the same weights (tests/objectives/test_drpo.py)."""
    if reward.device.type in HOST_DEVICES and reward.dtype in _HOST_DTYPES:
        return _top_kappa_host(reward, float(kappa))
    return _top_kappa_device(reward, kappa)


class HostTopFilter:
    """``TopFilter`` in numpy, sparse (the host path): the kept rows only, ascending.

    ``rows`` are the rows at or above the cut, ``top`` their rewards and ``excess`` = r - nu
    (>= 0, 0 at the cut); the rows strictly above hold mass 1 and the ``at`` rows, tied at the
    cut, ``share`` each. Outside ``rows`` every mass is 0, so each step after the cut works on
    about N P values instead of N. A batch with a NaN or inf reward keeps every row, with its
    masses in ``poisoned`` (NaN on such a row), so the loss is NaN and the trainer names the
    step. (A plain class with slots: built every step, it costs less than a frozen dataclass.)
    """

    __slots__ = ("_weight", "at", "count", "excess", "nu", "poisoned", "rows", "share", "top")

    def __init__(self, rows: np.ndarray, top: np.ndarray, at: np.ndarray, share: float,
                 nu: np.floating, count: np.floating, poisoned: np.ndarray | None = None
                 ) -> None:
        self.rows = rows  # (k,) int64, ascending
        self.top = top  # (k,) the rewards of ``rows``
        self.excess = top - nu  # (k,) r - nu
        self.at = at  # (k,) bool: tied at the cut
        self.share = share  # the kept mass of each row tied at the cut
        self.nu = nu  # the cut, in the rewards' dtype
        self.count = count  # K = kappa N, in the rewards' dtype
        self.poisoned = poisoned  # (N,) the masses of a batch with a NaN or inf reward
        self._weight: np.ndarray | None = poisoned

    @property
    def weight(self) -> np.ndarray:
        """(k,) the kept masses, in the rewards' dtype (made on first use)."""
        if self._weight is None:
            real = self.top.dtype.type
            self._weight = np.where(self.at, real(self.share), real(1.0))
        return self._weight

    def std(self) -> np.floating:
        """std(r_top) under the masses (``masked_std_host``'s value), in the rewards' dtype.

        Measured from the cut, the tied rows add nothing to sum m e or sum m e^2 whatever their
        mass (their excess e is 0), and every other mass is 1: so the sums are over the excess
        alone, in one float64 pass with no mass array (e >= 0 from 0: no cancellation)."""
        if self.poisoned is not None:
            return masked_std_host(self.top, self.weight, float(self.count))
        e = self.excess.astype(np.float64)
        k = float(self.count)
        mean = float(e.sum()) / k
        return self.top.dtype.type(math.sqrt(max(float(np.dot(e, e)) / k - mean * mean, 0.0)))

    def dense(self, n: int) -> np.ndarray:
        """The kept mass of each of the ``n`` rows (0 outside ``rows``)."""
        if self.poisoned is not None:
            return self.poisoned
        weight = np.zeros(n, dtype=self.top.dtype)
        weight[self.rows] = self.weight
        return weight


def top_kappa_host(r: np.ndarray, kappa: float, finite: bool | None = None) -> HostTopFilter:
    """The tie rule on a numpy view of the rewards (the host path of ``top_kappa``);
    ``finite``: whether every reward is finite, when the caller knows it already."""
    n = r.shape[0]
    target = kappa * n  # the kept mass kappa n
    k = min(max(math.ceil(target - CEIL_SLACK), 1), n)
    cut = np.partition(r, n - k)[n - k]  # the k-th largest reward (a NaN counts as largest)
    if finite is None:
        finite = bool(np.isfinite(r).all())
    if not finite:  # a NaN or inf reward poisons its row: the loss names the step
        return _top_kappa_host_poisoned(r, target, cut)
    rows = np.flatnonzero(r >= cut)
    top = r[rows]
    at = top == cut  # at least the cut's own row
    rows_at = int(np.count_nonzero(at))
    rows_above = len(rows) - rows_at
    share = min(1.0, max(0.0, (target - rows_above) / rows_at))  # what is left of kappa n
    return HostTopFilter(rows, top, at, share, cut, r.dtype.type(rows_above + share * rows_at))


def _top_kappa_host_poisoned(r: np.ndarray, target: float, cut: np.floating) -> HostTopFilter:
    """The rule over all N rows, for a batch with a NaN or inf reward (their masses: NaN)."""
    above, at = r > cut, r == cut
    rows_above, rows_at = int(np.count_nonzero(above)), int(np.count_nonzero(at))
    share = min(1.0, max(0.0, (target - rows_above) / rows_at)) if rows_at else 0.0
    weight = above.astype(r.dtype)
    weight[at] = share
    weight[~np.isfinite(r)] = np.nan
    with np.errstate(invalid="ignore"):  # inf - inf in the excess: NaN, as meant
        return HostTopFilter(np.arange(len(r)), r, at, share, cut,
                             r.dtype.type(rows_above + share * rows_at), poisoned=weight)


def _top_kappa_host(reward: torch.Tensor, kappa: float) -> TopFilter:
    kept = top_kappa_host(reward.detach().numpy(), kappa)
    weight = kept.dense(reward.shape[0])
    return TopFilter(torch.from_numpy(weight), torch.from_numpy(weight > 0),
                     host_scalar(kept.nu, weight.dtype), host_scalar(kept.count, weight.dtype))


def _top_kappa_device(reward: torch.Tensor, kappa: torch.Tensor | float) -> TopFilter:
    n = reward.shape[0]
    kappa = torch.as_tensor(kappa, dtype=torch.float64, device=reward.device)
    target = kappa * n  # the kept mass kappa n
    k = torch.clamp(torch.ceil(target - CEIL_SLACK), min=1, max=n).to(torch.long)
    sorted_r = torch.sort(reward, descending=True).values
    cut = sorted_r.gather(0, (k - 1).reshape(1)).squeeze(0)
    above = reward > cut
    at = reward == cut
    share = ((target - above.sum()) / at.sum()).clamp(0.0, 1.0).to(reward.dtype)
    weight = torch.where(above, torch.ones_like(reward), torch.where(at, share, 0.0))
    weight = weight + reward * 0.0  # a NaN or inf reward poisons its row: the loss names the step
    return TopFilter(weight, weight > 0, cut, weight.sum())


def top_kappa_weights(quality: np.ndarray, kappa: float) -> np.ndarray:
    """The same rule in numpy (float64): the kept mass of every row."""
    q = np.asarray(quality, dtype=np.float64)
    n = len(q)
    k = min(max(int(np.ceil(kappa * n - CEIL_SLACK)), 1), n)
    cut = np.sort(q)[::-1][k - 1]
    above, at = q > cut, q == cut
    share = min(1.0, max(0.0, (kappa * n - above.sum()) / at.sum()))
    return np.where(above, 1.0, np.where(at, share, 0.0))


def top_share_mask(reward: torch.Tensor, keep_share: torch.Tensor) -> TopFilter:
    """Algorithm 1 step 3: the top P share of the batch by reward, under the SQL's tie rule.

    One global ranking over the whole batch; the kept mass is exactly N P (see the module
    docstring for how this differs from the former K = floor(N P) with ties by sort order).
    """
    return top_kappa(reward, keep_share)


def masked_std(x: torch.Tensor, weight: torch.Tensor, count: torch.Tensor | None = None
               ) -> torch.Tensor:
    """Population std of x under the row weights (a bool mask or kept masses, summing to
    ``count`` when it is given)."""
    if on_host(x) and (weight.dtype == torch.bool or on_host(weight)):
        return _masked_std_host(x, weight, count)
    m = weight.to(x.dtype)
    count = m.sum().clamp(min=1e-12) if count is None else count
    mean = (x * m).sum() / count
    return torch.sqrt(((x - mean).square_() * m).sum() / count)


def _masked_std_host(x: torch.Tensor, weight: torch.Tensor, count: torch.Tensor | None
                     ) -> torch.Tensor:
    """The same in numpy, summed in float64 and returned in x's dtype."""
    xs = x.numpy()
    m = weight.detach().numpy()
    return host_scalar(masked_std_host(xs, m, None if count is None else float(count)),
                       xs.dtype)


def masked_std_host(x: np.ndarray, weight: np.ndarray, count: float | None = None
                    ) -> np.floating:
    """``masked_std`` on numpy arrays: summed in float64, returned in x's dtype."""
    total = max(float(weight.sum(dtype=np.float64)), 1e-12) if count is None else count
    d = x.astype(np.float64)  # the weights are cast by dot, exactly
    d -= np.dot(d, weight) / total  # x - mean
    return x.dtype.type(math.sqrt(np.dot(d * d, weight) / total))


def batch_std_host(r: np.ndarray) -> np.floating:
    """std(r), population, summed in float64 and returned in r's dtype: NaN or inf when a
    reward is (so it also tells the host path whether the batch is finite)."""
    n = len(r)
    d = np.subtract(r, r.sum(dtype=np.float64) / n, dtype=np.float64)  # r - mean, in float64
    return r.dtype.type(math.sqrt(np.dot(d, d) / n))


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
        self._read: tuple[torch.Tensor, int, float] | None = None  # keep_share_host's float

    def filter(self, reward: torch.Tensor) -> TopFilter:
        return top_share_mask(reward, self.keep_share)

    def update(self, reward: torch.Tensor, kept: TopFilter,
               sigma_top: torch.Tensor | None = None) -> torch.Tensor:
        """Algorithm 1 step 4; returns sigma_top / sigma_batch. The new P applies next step.
        ``sigma_top``: the kept rewards' std when the caller has it already."""
        if sigma_top is None:
            sigma_top = masked_std(reward, kept.weight, kept.count)
        if on_host(reward) and on_host(sigma_top):
            r = reward.numpy()
            ratio = self.update_host(r.dtype.type(sigma_top), batch_std_host(r))
            return host_scalar(ratio, r.dtype)
        return self._update_device(reward, sigma_top)

    def keep_share_host(self) -> float:
        """P as a Python float. A tensor read costs a dispatch every step, so the float read
        last is kept with the buffer and its version counter, and read again once anything has
        written the buffer since (``fill_``, ``copy_``, ``load_state_dict``) or replaced it."""
        buffer = self.keep_share
        read = self._read
        if read is None or read[0] is not buffer or read[1] != buffer._version:
            read = self._read = (buffer, buffer._version, float(buffer))
        return read[2]

    def update_host(self, sigma_top: np.floating, sigma_batch: np.floating) -> np.floating:
        """The rule on host scalars in the rewards' dtype, as the tensor code computes it;
        returns sigma_top / sigma_batch."""
        c, real = self.config, type(sigma_top)
        if c.adaptive:
            p = self.keep_share_host()
            homogeneous = sigma_top < real(c.target_ratio) * sigma_batch
            p = (min(p * c.relax_factor, c.max_keep_share) if homogeneous
                 else max(p * c.tighten_factor, c.min_keep_share))
            buffer = self.keep_share
            buffer.fill_(p)
            self._read = (buffer, buffer._version, p)  # float64: fill_ stored p exactly
        return sigma_top / max(sigma_batch, real(1e-12))

    @torch.no_grad()
    def _update_device(self, reward: torch.Tensor, sigma_top: torch.Tensor) -> torch.Tensor:
        c = self.config
        sigma_batch = reward.std(correction=0)
        ratio = sigma_top / sigma_batch.clamp(min=1e-12)
        if c.adaptive:
            p = self.keep_share
            relaxed = torch.clamp(p * c.relax_factor, max=c.max_keep_share)
            tightened = torch.clamp(p * c.tighten_factor, min=c.min_keep_share)
            self.keep_share.copy_(torch.where(sigma_top < c.target_ratio * sigma_batch,
                                              relaxed, tightened))
        return ratio
