"""Off-policy estimates against the simulator's ground truth."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from drpo_core.evaluation.off_policy import estimate, target_probabilities
from drpo_core.sim import LogSimulator, scenario_config


@pytest.mark.parametrize("policy", ["good", "poor"])
def test_snips_and_dr_recover_the_true_value(policy: str) -> None:
    cfg = scenario_config("medium", d=10, n_items=200, n_users=300, reward_noise=0.0, seed=2)
    sim = LogSimulator(cfg)
    table = sim.day_table(0, dt.date(2026, 1, 1), 40_000)
    world = sim.world
    states = np.stack(table.column("state").to_numpy(zero_copy_only=False))
    items = np.array([int(s[1:]) for s in table.column("item_id").to_pylist()])
    users = np.array([int(s[1:]) for s in table.column("user_id").to_pylist()])
    rng = np.random.default_rng(0)
    actions = states if policy == "good" else rng.standard_normal(states.shape)
    est = estimate(states, items, table.column("reward").to_numpy(),
                   table.column("behavior_logprob").to_numpy(), actions, world.items,
                   temperature=0.1)
    pi = target_probabilities(actions, world.items, 0.1)
    truth = float((pi * world.latent_reward_matrix(world.interests(0)[users])).sum(1).mean())
    assert est.dr == pytest.approx(truth, rel=0.08)
    assert est.snips == pytest.approx(truth, rel=0.15)
    assert est.effective_sample_size > 100


def test_missing_propensities_are_refused() -> None:
    with pytest.raises(ValueError, match="behavior_logprob must be logged"):
        estimate(np.zeros((2, 3)), np.array([0, 1]), np.zeros(2), np.array([-1.0, np.nan]),
                 np.zeros((2, 3)), np.eye(3))
