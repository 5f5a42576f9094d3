"""Collapse diagnostics: the RQ1 "phantom gradient" protocol and policy-health checks.

RQ1 (paper Sec. 3, Fig. 2): train only on positive samples (attractive updates) and, at the
same time, compute - but never apply - the gradients that the negative samples would give
(repulsive updates). Gradient norms are reported in total (network parameters) and split by the
policy's two outputs: the mean mu and the log-std xi, using the score function
    d log pi / d mu = (a - mu) / sigma^2,     d log pi / d xi = (a - mu)^2 / sigma^2 - 1
(Prop. 3.1, per action dimension). We report what the code measures; the authors later said
that far negative samples *shrink* sigma, contrary to Fig. 2's caption (digest §11).

``policy_health`` turns a training history into the gate's collapse signals.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from drpo_core.data import TrainingData
from drpo_core.policy import GaussianPolicy, PolicyConfig, gaussian_log_prob


@dataclass(frozen=True)
class GradientForces:
    """Norms of the gradient of E[A log pi] for one set of samples."""

    total: float  # ||grad_theta|| over all network parameters
    mean: float  # E ||d/d mu||  (output space)
    log_std: float  # E ||d/d xi|| (output space)


def gradient_forces(policy: GaussianPolicy, state: torch.Tensor, action: torch.Tensor,
                    advantage: torch.Tensor) -> GradientForces:
    """Gradient norms of mean_i A_i log pi(a_i | s_i); nothing is applied to the policy."""
    mean, log_std = policy.mean_and_log_std(state)
    mean_out = mean.detach().requires_grad_(True)
    log_std_out = log_std.detach().requires_grad_(True)
    per_sample = advantage * gaussian_log_prob(mean_out, log_std_out, action)
    d_mean, d_log_std = torch.autograd.grad(per_sample.sum(), (mean_out, log_std_out))
    objective = (advantage * gaussian_log_prob(mean, log_std, action)).mean()
    params = [p for p in policy.parameters() if p.requires_grad]
    grads = torch.autograd.grad(objective, params, allow_unused=True)
    total = torch.sqrt(sum((g.pow(2).sum() for g in grads if g is not None),
                           torch.tensor(0.0)))
    return GradientForces(float(total), float(d_mean.norm(dim=1).mean()),
                          float(d_log_std.norm(dim=1).mean()))


def phantom_gradient_study(
    data: TrainingData,
    steps: int = 2000,
    record_every: int = 50,
    positive_share: float = 0.1,
    batch_size: int = 320,
    learning_rate: float = 3e-4,
    seed: int = 0,
    policy_config: PolicyConfig | None = None,
) -> list[dict[str, float]]:
    """RQ1: attractive training on the top ``positive_share`` by reward; phantom gradients of
    the samples below the mean reward (negative advantage) are measured every ``record_every``
    steps. Advantages are A = r - mean(r) for both sets."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    baseline = data.reward.mean()
    threshold = torch.quantile(data.reward.double(), 1 - positive_share).float()
    positives = torch.nonzero(data.reward >= threshold).squeeze(1)
    negatives = torch.nonzero(data.reward < baseline).squeeze(1)
    if len(positives) == 0 or len(negatives) == 0:
        raise ValueError("RQ1 needs both positive and negative samples")
    policy = GaussianPolicy(data.d_state, data.d_action, policy_config)
    optimizer = torch.optim.Adam(policy.parameters(), lr=learning_rate)
    probe_pos = positives[torch.randint(len(positives), (1024,), generator=g)]
    probe_neg = negatives[torch.randint(len(negatives), (1024,), generator=g)]
    records = []
    for step in range(steps + 1):
        if step % record_every == 0:
            row: dict[str, float] = {"step": float(step), "sigma": float(policy.sigma().detach())}
            for name, idx in (("actual", probe_pos), ("phantom", probe_neg)):
                adv = data.reward[idx] - baseline
                forces = gradient_forces(policy, data.state[idx], data.action[idx], adv)
                row.update({f"{name}/{k}": v for k, v in asdict(forces).items()})
            records.append(row)
        if step == steps:
            break
        idx = positives[torch.randint(len(positives), (batch_size,), generator=g)]
        adv = data.reward[idx] - baseline
        loss = -(adv * policy.log_prob(data.state[idx], data.action[idx])).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return records


@dataclass(frozen=True)
class PolicyHealth:
    healthy: bool
    finite: bool
    sigma_final: float
    sigma_min_seen: float
    reasons: tuple[str, ...]


def policy_health(history: list[dict[str, float]], policy_config: PolicyConfig,
                  floor_margin: float = 0.25, max_mean_ratio: float = 10.0) -> PolicyHealth:
    """Collapse signals from a training history: non-finite values, sigma pinned at (within
    ``floor_margin`` in log space of) a bound, or the mean action pushed ``max_mean_ratio``
    times further out than the logged actions (repulsion, Sec. 3)."""
    import math

    reasons = []
    finite = all(math.isfinite(v) for r in history for v in r.values())
    if not finite:
        reasons.append("non-finite metric in history")
    sigmas = [r["policy/sigma"] for r in history if "policy/sigma" in r]
    sigma_final = sigmas[-1] if sigmas else float("nan")
    lo = math.exp(policy_config.log_std_min)
    hi = math.exp(policy_config.log_std_max)
    if sigmas:
        if sigma_final <= lo * math.exp(floor_margin):
            reasons.append(f"sigma collapsed to its floor ({sigma_final:.3g} <= {lo:.3g})")
        if sigma_final >= hi * math.exp(-floor_margin):
            reasons.append(f"sigma exploded to its ceiling ({sigma_final:.3g} >= {hi:.3g})")
    else:
        reasons.append("no sigma recorded")
    last = history[-1] if history else {}
    if "policy/mean_norm" in last and "data/action_norm" in last:
        ratio = last["policy/mean_norm"] / max(last["data/action_norm"], 1e-12)
        if ratio > max_mean_ratio:
            reasons.append(f"mean action exploded ({ratio:.3g}x the logged action norm)")
    return PolicyHealth(not reasons, finite, sigma_final, min(sigmas, default=float("nan")),
                        tuple(reasons))
