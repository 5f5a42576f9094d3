"""Reference lines: exact random / oracle / logging-mixture values, the least-squares map."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from drpo_core.data import table_to_training_data
from drpo_core.evaluation.online import eval_users
from drpo_core.experiments.references import (
    apply_linear_map,
    fit_linear_map,
    logging_evaluation,
    reference_lines,
)
from drpo_core.sim import LogSimulator, MixedLoggingAgent, scenario_config

SMALL = {"d": 8, "n_items": 150, "n_users": 400}


def test_least_squares_map_recovers_a_linear_relation() -> None:
    rng = np.random.default_rng(0)
    state = rng.standard_normal((500, 5)).astype(np.float32)
    w, b = rng.standard_normal((5, 3)), rng.standard_normal(3)
    action = state @ w + b
    fitted = fit_linear_map(state, action)
    np.testing.assert_allclose(fitted[:-1], w, atol=1e-6)
    np.testing.assert_allclose(fitted[-1], b, atol=1e-6)
    np.testing.assert_allclose(apply_linear_map(fitted, state), action, atol=1e-4)


def test_reference_lines_are_exact_where_they_can_be() -> None:
    sim = LogSimulator(scenario_config("medium", **SMALL))
    data = table_to_training_data(sim.day_table(0, dt.date(2026, 1, 1), 2000))
    users = eval_users(sim.world, 3000, "test")
    lines = reference_lines(sim.world, data, users)
    assert list(lines) == ["random", "logging", "identity", "linear", "oracle"]
    assert lines["random"].score == 0.0 and lines["oracle"].score == pytest.approx(100.0)
    assert 0.0 < lines["logging"].score < 100.0
    # the logging mixture's exact value matches sampling the mixture for the same users
    rng = np.random.default_rng(1)
    rows = np.repeat(np.arange(3000), 20)
    logged = MixedLoggingAgent(sim.world).sample(users.interests, rows, rng)
    sampled = users.activity[rows] * sim.world.latent_reward(users.interests[rows], logged.item)
    exact = logging_evaluation(sim.world, users)
    se = sampled.std() / np.sqrt(len(sampled))
    assert exact.mean_reward == pytest.approx(sampled.mean(), abs=5 * se)
    # per-user rewards are kept (for paired tests) but stay out of the summary
    assert len(exact.per_user_reward) == 3000 and "per_user_reward" not in exact.as_dict()
