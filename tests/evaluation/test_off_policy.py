"""Off-policy estimates against a ground truth computed independently of the code under test.

The test builds its own contextual bandit: unit states and items in one space, a mean reward
max(0, cos(state, item)), a logging policy that mixes uniform and softmax choices with exact
propensities, and target policies scored by their softmax retrieval. The truth is the exact
expected reward of that retrieval, computed here with numpy from the definitions.
"""

from __future__ import annotations

import numpy as np
import pytest

from drpo_core.evaluation.off_policy import estimate

TAU = 0.1


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def softmax_rows(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def bandit() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    n, n_items, d = 40_000, 100, 8
    catalogue = unit(rng.normal(size=(n_items, d)))
    states = unit(rng.normal(size=(n, d)))
    value = np.maximum(states @ catalogue.T, 0.0)  # mean reward of every (row, item)
    behaviour = 0.5 / n_items + 0.5 * softmax_rows(value / 0.2)
    cdf = behaviour.cumsum(axis=1)
    items = np.minimum((cdf < rng.random((n, 1))).sum(axis=1), n_items - 1)
    rewards = value[np.arange(n), items] + rng.normal(0.0, 0.1, n)
    return {"states": states, "catalogue": catalogue, "value": value, "items": items,
            "rewards": rewards, "logprob": np.log(behaviour[np.arange(n), items])}


@pytest.mark.parametrize("policy", ["aligned", "random"])
def test_snips_and_dr_recover_the_true_value(bandit: dict, policy: str) -> None:
    b = bandit
    rng = np.random.default_rng(1)
    actions = b["states"] if policy == "aligned" else rng.normal(size=b["states"].shape)
    pi = softmax_rows(unit(actions) @ b["catalogue"].T / TAU)
    truth = float((pi * b["value"]).sum(axis=1).mean())
    est = estimate(b["states"], b["items"], b["rewards"], b["logprob"], actions,
                   b["catalogue"], temperature=TAU)
    assert est.dr == pytest.approx(truth, rel=0.05)
    assert est.snips == pytest.approx(truth, rel=0.10)
    assert est.effective_sample_size > 1000
    assert est.terms.shape == (len(b["rewards"]),)
    assert est.terms.mean() == pytest.approx(est.dr)  # the per-row units the gate pairs


def test_the_aligned_policy_is_told_apart_from_the_random_one(bandit: dict) -> None:
    b = bandit
    scores = {name: estimate(b["states"], b["items"], b["rewards"], b["logprob"], actions,
                             b["catalogue"], temperature=TAU).dr
              for name, actions in (("aligned", b["states"]),
                                    ("random", np.random.default_rng(2).normal(
                                        size=b["states"].shape)))}
    assert scores["aligned"] > 1.5 * scores["random"]


def test_missing_propensities_are_refused() -> None:
    with pytest.raises(ValueError, match="behavior_logprob must be logged"):
        estimate(np.zeros((2, 3)), np.array([0, 1]), np.zeros(2), np.array([-1.0, np.nan]),
                 np.zeros((2, 3)), np.eye(3))
