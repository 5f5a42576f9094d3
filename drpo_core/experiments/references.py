"""Reference lines of every table: what a method must beat before it has learned anything.

* ``random``: a uniform random catalogue item (score 0 by construction, exact).
* ``logging``: the logging mixture itself, its exact expected reward sum_i pi_beta(i | u) R(u, i).
* ``identity``: action = state, where the state and item dimensions agree (a fixed map).
* ``linear``: the least-squares linear map of state to action (with intercept) fitted on all
  logged rows, reward-blind: argmin_W sum ||a - W [s, 1]||^2.
* ``bc``: behaviour cloning, the reward-blind learner (trained like every other method; the
  tables take it from their BC row).
* ``oracle``: the user's best catalogue item (score 100 by construction, exact).

In the sequential mode (session users) every line is a whole session's return: ``random``
and ``oracle`` (the myopic oracle, greedy on the true current interest) are rolled out by
``drpo_core.evaluation.online``, ``logging`` samples the mixture at every step, and the fixed
maps act on the state at every step.

A simulator where one of the reward-blind lines comes close to the oracle cannot tell good
offline learners from bad ones (issue 16); ``fixed_map_scores`` is what the regression test
checks.
"""

from __future__ import annotations

import numpy as np

from drpo_core.data import TrainingData
from drpo_core.evaluation.online import (
    Chooser,
    EvalUsers,
    OnlineEvaluation,
    SessionUsers,
    evaluate_policy,
    play_sessions,
    score_rewards,
)
from drpo_core.sim.logging_agent import MixedLoggingAgent
from drpo_core.sim.sessions import Sessions
from drpo_core.sim.world import World, rng_for

#: Reference lines in the order the tables print them (``bc`` comes from the BC row).
REFERENCES = ("random", "logging", "identity", "linear", "bc", "oracle")


def fit_linear_map(state: np.ndarray, action: np.ndarray) -> np.ndarray:
    """W (d_state + 1, d_action) of the least-squares map a ~ [s, 1] W over all rows."""
    x = np.hstack([state, np.ones((len(state), 1), dtype=state.dtype)]).astype(np.float64)
    return np.linalg.lstsq(x, action.astype(np.float64), rcond=None)[0]


def apply_linear_map(w: np.ndarray, state: np.ndarray) -> np.ndarray:
    return (state @ w[:-1] + w[-1]).astype(np.float32)


def logging_evaluation(world: World, users: EvalUsers | SessionUsers,
                       chunk: int = 1024) -> OnlineEvaluation:
    """The logging mixture scored exactly: a_u * sum_i pi_beta(i | u) R_latent(u, i); for
    session users, its sessions' return with the mixture sampled at every step."""
    agent = MixedLoggingAgent(world)
    if isinstance(users, SessionUsers):
        return score_rewards(users, play_sessions(world, users, logging_chooser(agent, users)))
    expected = np.empty(len(users.interests))
    for i in range(0, len(expected), chunk):
        u = users.interests[i : i + chunk]
        expected[i : i + chunk] = (agent.propensities(u) * world.latent_reward_matrix(u)).sum(1)
    return score_rewards(users, users.activity * expected)


def logging_chooser(agent: MixedLoggingAgent, users: SessionUsers) -> Chooser:
    def choose(sessions: Sessions, rows: np.ndarray, states: np.ndarray, step: int
               ) -> np.ndarray:
        return agent.sample_each(sessions.interests[rows], rng_for(*users.noise_key, 1000 + step)
                                 ).item
    return choose


def fixed_map_scores(world: World, data: TrainingData,
                     users: EvalUsers | SessionUsers) -> dict[str, float]:
    """Scores (0 = random, 100 = oracle) of the fixed maps of the state: the linear map fitted
    on ``data`` and, where the dimensions agree, the identity."""
    state, action = data.state.numpy(), data.action.numpy()
    w = fit_linear_map(state, action)
    scores = {"linear": evaluate_policy(world, lambda s: apply_linear_map(w, s), users).score}
    if users.states.shape[1] == world.config.d:
        scores["identity"] = evaluate_policy(world, lambda s: s, users).score
    return scores


def reference_lines(world: World, data: TrainingData, users: EvalUsers | SessionUsers,
                    bc: OnlineEvaluation | None = None) -> dict[str, OnlineEvaluation]:
    """Every reference line on ``users`` (``bc``: an already trained BC policy's evaluation)."""
    state, action = data.state.numpy(), data.action.numpy()
    out = {
        "random": score_rewards(users, users.random_reward),
        "logging": logging_evaluation(world, users),
    }
    if users.states.shape[1] == world.config.d:
        out["identity"] = evaluate_policy(world, lambda s: s, users)
    w = fit_linear_map(state, action)
    out["linear"] = evaluate_policy(world, lambda s: apply_linear_map(w, s), users)
    if bc is not None:
        out["bc"] = bc
    out["oracle"] = score_rewards(users, users.oracle_reward)
    return out
