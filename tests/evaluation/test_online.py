"""Online evaluation: exact references, activity-weighted scores, per-user rewards for pairing."""

from __future__ import annotations

import numpy as np
import pytest

from drpo_core.evaluation.online import eval_users, evaluate_policy, score_actions
from drpo_core.sim import World, scenario_config


def test_per_user_rewards_pair_two_policies_on_the_same_users() -> None:
    world = World.build(scenario_config("medium", d=8, n_items=200, n_users=100))
    users = eval_users(world, 500, "test")
    oracle = score_actions(world, users, world.items[users.oracle_item])
    # same order as the users: the oracle's per-user reward is each user's a_u * max R_latent
    np.testing.assert_allclose(oracle.per_user_reward, users.oracle_reward, rtol=1e-5)
    assert oracle.mean_reward == pytest.approx(users.oracle_reward.mean(), rel=1e-5)
    first = score_actions(world, users, world.items[np.zeros(500, dtype=int)])
    np.testing.assert_allclose(first.per_user_reward,
                               users.activity * world.latent_reward(users.interests,
                                                                    np.zeros(500, dtype=int)))
    assert set(first.as_dict()) == {"mean_reward", "ecpm", "score", "reward_cvar10",
                                    "oracle_reward", "random_reward", "n_users"}
    # a policy is a function of the observed state only
    same = evaluate_policy(world, lambda s: np.tile(world.items[0], (len(s), 1)), users)
    np.testing.assert_allclose(same.per_user_reward, first.per_user_reward)


def test_scores_weight_users_by_activity() -> None:
    heavy = World.build(scenario_config("medium", d=8, n_items=200, n_users=100))
    users = eval_users(heavy, 2000, "test")
    assert users.activity.std() > 0.5  # heavy-tailed by default
    flat = World.build(scenario_config("medium", d=8, n_items=200, n_users=100,
                                       activity_sigma=0.0))
    flat_users = eval_users(flat, 2000, "test")
    np.testing.assert_array_equal(flat_users.activity, 1.0)
    # the same interests either way: only the scale differs
    np.testing.assert_allclose(flat_users.interests, users.interests)
    np.testing.assert_allclose(users.oracle_reward, users.activity * flat_users.oracle_reward)


def test_sequential_mode_scores_whole_sessions() -> None:
    from drpo_core.evaluation.online import SessionUsers, play_sessions, score_rewards
    from drpo_core.experiments.references import logging_evaluation

    world = World.build(scenario_config("medium", d=8, n_items=200, n_users=100,
                                        sessions="sequential"))
    users = eval_users(world, 300, "test")
    assert isinstance(users, SessionUsers) and users.states.shape == (300, 8)
    c = world.config
    # a session's watch time is bounded by its budget plus one last item
    for returns in (users.oracle_reward, users.random_reward):
        assert np.all(returns >= 0.0)
        assert np.all(returns / users.activity <= c.session_budget + 1.5 * c.item_length)
    logging = logging_evaluation(world, users)
    assert users.random_reward.mean() < logging.mean_reward < users.oracle_reward.mean()
    assert score_rewards(users, users.oracle_reward).score == pytest.approx(100.0)

    def first_item(s: np.ndarray) -> np.ndarray:
        return np.tile(world.items[0], (len(s), 1))

    constant = evaluate_policy(world, first_item, users)
    again = evaluate_policy(world, first_item, users)
    np.testing.assert_array_equal(constant.per_user_reward, again.per_user_reward)
    # the same rollout by hand: item 0 at every step until the budget runs out
    manual = play_sessions(world, users, lambda sessions, rows, states, step:
                           np.zeros(len(rows), dtype=np.int64))
    np.testing.assert_allclose(constant.per_user_reward, manual)
    value0 = world.latent_reward(users.interests, np.zeros(300, dtype=np.int64))
    watch0 = world.item_lengths()[0] * value0
    # the first step pays a_u x length_0 x R_latent(u*_0, item 0); later steps follow the drift
    assert np.all(manual >= users.activity * watch0 - 1e-9)
    # the policy sees the states at every step: a state-dependent policy differs from constant
    mirror = evaluate_policy(world, lambda s: s, users)
    assert not np.allclose(mirror.per_user_reward, constant.per_user_reward)
    with pytest.raises(TypeError, match="evaluate_policy"):
        score_actions(world, users, first_item(users.states))
