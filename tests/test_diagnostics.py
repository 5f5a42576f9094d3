from __future__ import annotations

import math

import torch

from drpo_core.diagnostics import gradient_forces, phantom_gradient_study, policy_health
from drpo_core.policy import GaussianPolicy, PolicyConfig
from tests.helpers import easy_task


def test_output_space_forces_match_the_score_function() -> None:
    """Prop. 3.1: d log pi/d mu = (a - mu)/sigma^2, d log pi/d xi = (a - mu)^2/sigma^2 - 1."""
    torch.manual_seed(0)
    policy = GaussianPolicy(2, 1, PolicyConfig(hidden=(4,)))
    s, a = torch.randn(1, 2), torch.tensor([[1.5]])
    mean, log_std = policy.mean_and_log_std(s)
    sigma = log_std.exp()
    forces = gradient_forces(policy, s, a, torch.tensor([-1.0]))
    expected_mu = ((a - mean) / sigma**2).abs().item()
    expected_xi = ((a - mean) ** 2 / sigma**2 - 1).abs().item()
    assert math.isclose(forces.mean, expected_mu, rel_tol=1e-5)
    assert math.isclose(forces.log_std, expected_xi, rel_tol=1e-5)


def test_phantom_gradients_grow_while_actual_ones_settle() -> None:
    records = phantom_gradient_study(easy_task(n=4096), steps=600, record_every=100)
    first, last = records[0], records[-1]
    assert last["phantom/total"] > 3 * first["phantom/total"]
    assert last["phantom/total"] > 5 * last["actual/total"]
    assert last["actual/total"] < first["actual/total"]
    assert last["phantom/log_std"] > last["phantom/mean"]  # the log-std channel dominates
    assert last["sigma"] < first["sigma"]  # attractive training sharpens the policy


def test_policy_health_flags_collapse() -> None:
    cfg = PolicyConfig()
    ok = policy_health([{"policy/sigma": 0.3}, {"policy/sigma": 0.1}], cfg)
    assert ok.healthy and ok.reasons == ()
    floor = policy_health([{"policy/sigma": 0.3}, {"policy/sigma": math.exp(-5)}], cfg)
    assert not floor.healthy and "floor" in floor.reasons[0]
    nan = policy_health([{"policy/sigma": 0.3, "losses/total": float("nan")}], cfg)
    assert not nan.healthy and not nan.finite
    repelled = policy_health([{"policy/sigma": 0.2, "policy/mean_norm": 50.0,
                               "data/action_norm": 1.0}], cfg)
    assert not repelled.healthy and "mean action exploded" in repelled.reasons[0]
