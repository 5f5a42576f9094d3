"""Gaussian policy over the item-embedding space (paper Sec. 2, 5.1).

pi_theta(a | s) = N(mu_theta(s), diag(sigma^2)),  mu_theta = MLP (default 2 x 128, ReLU; Sec. 5.1
and App. J - App. I's "3-layer" for baselines is the configurable ``hidden``).

The log-std is learned and state-independent by default (ASSUMPTION: the paper does not say;
the RQ1 diagnostic tracks its gradient, so it must be learned). It is bounded softly to
[log_std_min, log_std_max] with a tanh squash, so the bound never zeroes its gradient the way a
hard clamp does.
"""

from __future__ import annotations

import math

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


class PolicyConfig(BaseModel):
    """Architecture of the Gaussian policy (and of the critics that share its backbone)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hidden: tuple[int, ...] = Field((128, 128), description="MLP hidden widths (paper: 2 x 128)")
    state_dependent_std: bool = Field(False, description="log-std from a head on the MLP trunk")
    log_std_min: float = Field(-5.0, description="lower bound of the log-std (sigma >= e^-5)")
    log_std_max: float = Field(2.0, description="upper bound of the log-std (sigma <= e^2)")
    init_log_std: float = Field(-1.0, description="initial log-std (state-independent case)")


def mlp(d_in: int, hidden: tuple[int, ...], d_out: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    last = d_in
    for width in hidden:
        layers += [nn.Linear(last, width), nn.ReLU()]
        last = width
    layers.append(nn.Linear(last, d_out))
    return nn.Sequential(*layers)


class GaussianPolicy(nn.Module):
    """MLP mean, bounded learned log-std; ``forward(state)`` returns the mean action."""

    def __init__(self, d_state: int, d_action: int, config: PolicyConfig | None = None) -> None:
        super().__init__()
        self.config = config or PolicyConfig()
        c = self.config
        if c.log_std_min >= c.log_std_max:
            raise ValueError("log_std_min must be < log_std_max")
        self.d_state, self.d_action = d_state, d_action
        self.trunk = mlp(d_state, c.hidden[:-1], c.hidden[-1]) if c.hidden else nn.Identity()
        width = c.hidden[-1] if c.hidden else d_state
        self.mean_head = nn.Linear(width, d_action)
        self.std_head = nn.Linear(width, d_action) if c.state_dependent_std else None
        self.log_std_param = nn.Parameter(
            torch.full((d_action,), self._unsquash(c.init_log_std))
        )

    def _unsquash(self, log_std: float) -> float:
        lo, hi = self.config.log_std_min, self.config.log_std_max
        y = min(max((log_std - lo) / (hi - lo) * 2.0 - 1.0, -0.999), 0.999)
        return math.atanh(y)

    def _squash(self, raw: torch.Tensor) -> torch.Tensor:
        lo, hi = self.config.log_std_min, self.config.log_std_max
        return lo + 0.5 * (hi - lo) * (torch.tanh(raw) + 1.0)

    def _features(self, state: torch.Tensor) -> torch.Tensor:
        h = self.trunk(state)
        return torch.relu(h) if self.config.hidden else h

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        """The mean action mu_theta(s): what retrieval (KNN) uses at serving time."""
        return self.mean_head(self._features(state))

    def mean_and_log_std(self, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self._features(state)
        mean = self.mean_head(h)
        raw = self.std_head(h) if self.std_head is not None else self.log_std_param.expand_as(mean)
        return mean, self._squash(raw)

    def log_prob(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """log pi(a | s), summed over action dims, computed in float32."""
        mean, log_std = self.mean_and_log_std(state)
        return gaussian_log_prob(mean.float(), log_std.float(), action.float())

    def sample(self, state: torch.Tensor, generator: torch.Generator | None = None
               ) -> torch.Tensor:
        mean, log_std = self.mean_and_log_std(state)
        noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return mean + noise * log_std.exp()

    def sigma(self) -> torch.Tensor:
        """Mean sigma of the state-independent head (or of its bias for the dependent head)."""
        raw = self.log_std_param if self.std_head is None else self.std_head.bias
        return self._squash(raw).exp().mean()


def gaussian_log_prob(mean: torch.Tensor, log_std: torch.Tensor, action: torch.Tensor
                      ) -> torch.Tensor:
    """Diagonal Gaussian log-density, summed over the last dim."""
    z = (action - mean) * torch.exp(-log_std)
    return (-0.5 * z.pow(2) - log_std - LOG_SQRT_2PI).sum(dim=-1)


class MeanActionHead(nn.Module):
    """Export wrapper: ``forward(state) -> mean action`` (float32 [batch, d_action])."""

    def __init__(self, policy: GaussianPolicy) -> None:
        super().__init__()
        self.trunk = policy.trunk
        self.mean_head = policy.mean_head
        self.apply_relu = bool(policy.config.hidden)
        self.out_dim = policy.d_action

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        h = self.trunk(state.float())
        if self.apply_relu:
            h = torch.relu(h)
        return self.mean_head(h)
