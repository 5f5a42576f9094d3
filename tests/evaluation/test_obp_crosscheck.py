"""Cross-check of the SNIPS and DR estimators against Open Bandit Pipeline's (obp) on the same
arrays (issue 14).

obp is a test-only dependency: the test is skipped when it is not installed. On Python 3.11 the
release that installs is obp 0.4.1 (0.5.x declares ``Requires-Python <3.11``); its SNIPS and DR
are the same formulas as the later releases'.

Both sides get identical inputs: the rewards, the logged items, the logged propensities
p_b = exp(behavior_logprob), the target policy pi(i | s) from ``target_probabilities`` (obp's
``action_dist``) and, for DR, the reward model's q(s, i) for every row and item (obp's
``estimated_rewards_by_reg_model``). q is rebuilt here the way ``estimate`` builds it:
cross-fitted on two folds (fold = permutation(n) % 2 from the seed), a ridge regression of the
reward on features of (state, item) when states and items share a space, the other fold's mean
reward otherwise. What is compared is the estimators' arithmetic, not the reward model.
"""

from __future__ import annotations

import numpy as np
import pytest

from drpo_core.evaluation.off_policy import (
    _features,
    _fit_ridge,
    estimate,
    target_probabilities,
)

obp_ope = pytest.importorskip("obp.ope", reason="obp (Open Bandit Pipeline) is not installed; "
                              "it is a test-only dependency of this cross-check")

TOLERANCE = 1e-9


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def bandit(seed: int, d_state: int, n: int = 600, n_items: int = 25, d: int = 6) -> dict:
    """A logged bandit with exact propensities: a softmax logging policy over a unit catalogue,
    heavy-tailed rewards, and a target policy's action embeddings near the states."""
    rng = np.random.default_rng(seed)
    catalogue = unit(rng.normal(size=(n_items, d)))
    states = rng.normal(size=(n, d_state))
    view = states[:, :d] if d_state >= d else rng.normal(size=(n, d))
    logits = 3.0 * unit(view) @ catalogue.T
    behaviour = np.exp(logits - logits.max(axis=1, keepdims=True))
    behaviour /= behaviour.sum(axis=1, keepdims=True)
    items = np.array([rng.choice(n_items, p=p) for p in behaviour])
    rewards = np.maximum(unit(view)[np.arange(n), :] @ catalogue.T, 0)[np.arange(n), items]
    rewards = rewards + rng.lognormal(-1.0, 1.0, n)  # eCPM-like right tail
    actions = view + 0.5 * rng.normal(size=view.shape)
    return {"states": states, "items": items, "rewards": rewards, "catalogue": catalogue,
            "logprob": np.log(behaviour[np.arange(n), items]), "actions": actions}


def reward_model(b: dict, seed: int) -> np.ndarray:
    """q(s_k, i) for every row k and catalogue item i, as ``estimate`` fits it: (n, n_items)."""
    states, items, rewards, catalogue = b["states"], b["items"], b["rewards"], b["catalogue"]
    n, n_items = len(rewards), len(catalogue)
    fold = np.random.default_rng(seed).permutation(n) % 2
    q = np.empty((n, n_items))
    for k in (0, 1):
        train, rows = fold != k, fold == k
        if states.shape[1] != catalogue.shape[1]:
            q[rows] = rewards[train].mean()
            continue
        coef = _fit_ridge(_features(states[train], catalogue[items[train]]), rewards[train])
        for i in range(n_items):
            q[rows, i] = _features(states[rows], np.repeat(catalogue[i : i + 1],
                                                           rows.sum(), axis=0)) @ coef
    return q


@pytest.mark.parametrize(("seed", "d_state", "temperature"), [
    (0, 6, 0.05),    # states and items share a space: ridge reward model
    (1, 6, 0.5),     # a flatter target policy
    (2, 9, 0.1),     # no shared space: the reward model is the other fold's mean reward
])
def test_snips_and_dr_equal_obp_on_the_same_arrays(seed: int, d_state: int,
                                                   temperature: float) -> None:
    b = bandit(seed, d_state)
    ours = estimate(b["states"], b["items"], b["rewards"], b["logprob"], b["actions"],
                    b["catalogue"], temperature=temperature, seed=seed, chunk=128)
    pi = target_probabilities(b["actions"], b["catalogue"], temperature)
    inputs = {"reward": b["rewards"], "action": b["items"], "pscore": np.exp(b["logprob"]),
              "action_dist": pi[:, :, None], "position": None}
    snips = obp_ope.SelfNormalizedInverseProbabilityWeighting().estimate_policy_value(**inputs)
    dr = obp_ope.DoublyRobust().estimate_policy_value(
        **inputs, estimated_rewards_by_reg_model=reward_model(b, seed)[:, :, None])
    assert abs(ours.snips - snips) <= TOLERANCE, (ours.snips, snips)
    assert abs(ours.dr - dr) <= TOLERANCE, (ours.dr, dr)
    # not vacuous: SNIPS and DR differ on these logs by far more than the tolerance, and so
    # does obp's DR without the reward model (q = 0, which is plain IPS) from ours
    assert abs(ours.snips - ours.dr) > 1e3 * TOLERANCE
    without_q = obp_ope.DoublyRobust().estimate_policy_value(
        **inputs, estimated_rewards_by_reg_model=np.zeros_like(pi)[:, :, None])
    assert abs(without_q - ours.dr) > 1e3 * TOLERANCE
