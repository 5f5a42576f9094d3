"""Online evaluation of a policy in the simulator (App. H, "KNN retrieval").

A policy maps observed states to action embeddings; each action retrieves its nearest catalogue
item by cosine (top-1 KNN, as industrial vector search) and is scored by the noise-free
expected reward of that item for the user, a_u * R_latent (the user's activity times the value;
what the logs pay on average). ASSUMPTION (digest §13): the paper's protocol is not given;
scoring the noise-free value matches its "True eCPM" wording.

Reported: mean reward, eCPM = 5 x reward (digest §5: every Table-1 eCPM is 5 x reward), the lower
tail CVaR_10% of per-user reward, and a normalised score where 0 = a uniform random item and
100 = the best catalogue item for every user (computed exactly over the catalogue, not sampled).
``per_user_reward`` keeps each user's reward (same order as the users) for paired comparisons
of two policies on the same users; it is not part of ``as_dict``.

Sequential mode (``SimConfig.sessions = "sequential"``, drpo_core/sim/sessions.py): each
evaluation user plays one whole session under the policy, vectorised over users (a step
advances every session still running), until the session's time budget runs out; the policy
sees the session's state at every step. Scored by the session return, a_u x total watch minutes
with the expected engagement R_latent (noise-free, as above). References: ``random`` = a
uniform random item at every step; ``oracle`` = the MYOPIC oracle, greedy at every step on the
true current interest (the item of the highest expected watch time length_i x R_latent(u*_t,
i)); it ignores the drift and the budget, so it is a strong reference, not the optimum, and a
policy may score above 100. Every policy sees the same state noise at the same (user, step).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from drpo_core.sim.sessions import Sessions
from drpo_core.sim.world import EVAL_SPLITS, Stream, World, _offsets, rng_for

ECPM_PER_REWARD = 5.0
TAIL_SHARE = 0.10

Policy = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class EvalUsers:
    """A fixed set of evaluation users: latent interests, observed states, exact baselines."""

    interests: np.ndarray  # (n, d)
    states: np.ndarray  # (n, d_state)
    oracle_reward: np.ndarray  # (n,) a_u * the best catalogue item's R_latent
    random_reward: np.ndarray  # (n,) a_u * mean R_latent over the catalogue (uniform random)
    oracle_item: np.ndarray  # (n,)
    activity: np.ndarray  # (n,) a_u, the user's reward scale


@dataclass(frozen=True)
class OnlineEvaluation:
    mean_reward: float
    ecpm: float
    score: float
    reward_cvar10: float
    oracle_reward: float
    random_reward: float
    n_users: int
    per_user_reward: np.ndarray = field(repr=False, compare=False,
                                        default_factory=lambda: np.empty(0))

    def as_dict(self) -> dict[str, float]:
        return {k: float(getattr(self, k)) for k in SUMMARY}


#: The scalar fields of an evaluation (``as_dict``'s keys).
SUMMARY = ("mean_reward", "ecpm", "score", "reward_cvar10", "oracle_reward", "random_reward",
           "n_users")


@dataclass(frozen=True)
class SessionUsers:
    """Evaluation users of the sequential mode: every policy plays each user's session from the
    same start (same interest, organic day, profile and state noise)."""

    start: Sessions  # the sessions at step 0 (copied for every rollout)
    states: np.ndarray  # (n, d_state) the first step's observed states
    noise_key: tuple[int, ...]  # rng key of the state noise: (key..., step)
    oracle_reward: np.ndarray  # (n,) session return of the myopic oracle
    random_reward: np.ndarray  # (n,) session return of a uniform random item at every step

    @property
    def interests(self) -> np.ndarray:  # (n, d) u* at the session's start
        return self.start.interests

    @property
    def activity(self) -> np.ndarray:
        return self.start.activity


#: Chooses the items of the sessions ``rows`` (their states given) at one step.
Chooser = Callable[[Sessions, np.ndarray, np.ndarray, int], np.ndarray]


def play_sessions(world: World, users: SessionUsers, choose: Chooser) -> np.ndarray:
    """(n,) session return of every user, a_u x watch minutes (expected engagement)."""
    sessions = users.start.copy()
    total = np.zeros(len(users.states))
    step = 0
    while len(rows := sessions.active):
        states = users.states[rows] if step == 0 else step_states(world, users, sessions,
                                                                  rows, step)
        items = choose(sessions, rows, states, step)
        engagement = world.latent_reward(sessions.interests[rows], items)
        total[rows] += sessions.activity[rows] * sessions.advance(rows, items, engagement)
        step += 1
    return total


def step_states(world: World, users: SessionUsers, sessions: Sessions, rows: np.ndarray,
                step: int) -> np.ndarray:
    c = world.config
    noise = _offsets(rng_for(*users.noise_key, step), len(users.states), c.state_dim,
                     c.state_noise)
    return (sessions.clean_states(rows) + noise[rows]).astype(np.float32)


def policy_chooser(world: World, policy: Policy) -> Chooser:
    def choose(sessions: Sessions, rows: np.ndarray, states: np.ndarray, step: int
               ) -> np.ndarray:
        return world.nearest_items(checked_actions(policy(states), len(states)))
    return choose


def oracle_chooser(world: World) -> Chooser:
    """The myopic oracle: the item of the highest expected watch time for the current u*."""
    def choose(sessions: Sessions, rows: np.ndarray, states: np.ndarray, step: int
               ) -> np.ndarray:
        value = world.latent_reward_matrix(sessions.interests[rows]) * world.item_lengths()
        return value.argmax(axis=1)
    return choose


def random_chooser(world: World, key: tuple[int, ...]) -> Chooser:
    def choose(sessions: Sessions, rows: np.ndarray, states: np.ndarray, step: int
               ) -> np.ndarray:
        n_items = world.config.n_items
        return rng_for(*key, step).integers(0, n_items, len(sessions.time_left))[rows]
    return choose


def session_users(world: World, n_users: int = 2000, split: str = "test", day: int = 0
                  ) -> SessionUsers:
    """Fresh users of ``split``, each at the start of a session, with their myopic-oracle and
    random session returns."""
    if n_users <= 0:
        raise ValueError(f"n_users must be positive, got {n_users}")
    interests = world.fresh_users(n_users, split, day)  # checks the split
    seed, k = world.config.seed, EVAL_SPLITS[split]
    activity = world.fresh_activity(n_users, split, day)
    start = Sessions.start(world, interests, activity, rng_for(seed, Stream.EVAL, 200 + k, day))
    key = (seed, int(Stream.EVAL), 300 + k, day)
    states = start.clean_states(np.arange(n_users)) + _offsets(
        rng_for(*key, 0), n_users, world.config.state_dim, world.config.state_noise)
    users = SessionUsers(start, states.astype(np.float32), key, np.empty(0), np.empty(0))
    oracle = play_sessions(world, users, oracle_chooser(world))
    rand = play_sessions(world, users, random_chooser(world, (seed, int(Stream.EVAL),
                                                               400 + k, day)))
    return SessionUsers(start, users.states, key, oracle, rand)


def eval_users(world: World, n_users: int = 2000, split: str = "test", day: int = 0,
               chunk: int = 2048) -> EvalUsers | SessionUsers:
    """Fresh users of ``split`` with exact oracle/random references (chunked over users); in
    the sequential mode, ``session_users``."""
    if n_users <= 0:
        raise ValueError(f"n_users must be positive, got {n_users}")
    if world.config.sessions == "sequential":
        return session_users(world, n_users, split, day)
    interests = world.fresh_users(n_users, split, day)
    activity = world.fresh_activity(n_users, split, day)
    rng = rng_for(world.config.seed, Stream.EVAL, 100 + len(split), day)
    states = world.observe(interests, rng, activity)
    oracle = np.empty(n_users)
    rand = np.empty(n_users)
    best = np.empty(n_users, dtype=np.int64)
    for i in range(0, n_users, chunk):
        r = world.latent_reward_matrix(interests[i : i + chunk])
        best[i : i + chunk] = r.argmax(axis=1)
        oracle[i : i + chunk] = r.max(axis=1)
        rand[i : i + chunk] = r.mean(axis=1)
    return EvalUsers(interests, states, activity * oracle, activity * rand, best, activity)


def lower_cvar(values: np.ndarray, share: float = TAIL_SHARE) -> float:
    """Mean of the lowest ``share`` of values (the lower-tail CVaR)."""
    k = max(1, int(np.ceil(share * len(values))))
    return float(np.sort(values)[:k].mean())


def checked_actions(actions: np.ndarray, n: int) -> np.ndarray:
    actions = np.asarray(actions, dtype=np.float32)
    if len(actions) != n:
        raise ValueError(f"expected {n} actions, got {len(actions)}")
    if not np.isfinite(actions).all():
        raise ValueError("policy returned non-finite actions")
    return actions


def score_actions(world: World, users: EvalUsers, actions: np.ndarray) -> OnlineEvaluation:
    """Score one action embedding per evaluation user (bandit mode)."""
    if isinstance(users, SessionUsers):
        raise TypeError("session users are scored by evaluate_policy (one action per step)")
    items = world.nearest_items(checked_actions(actions, len(users.states)))
    return score_rewards(users, users.activity * world.latent_reward(users.interests, items))


def score_rewards(users: EvalUsers | SessionUsers, reward: np.ndarray) -> OnlineEvaluation:
    """Summarise per-user (expected) rewards of one policy on ``users``."""
    if len(reward) != len(users.states):
        raise ValueError(f"expected {len(users.states)} rewards, got {len(reward)}")
    mean = float(reward.mean())
    r_or, r_rand = float(users.oracle_reward.mean()), float(users.random_reward.mean())
    return OnlineEvaluation(
        mean_reward=mean,
        ecpm=ECPM_PER_REWARD * mean,
        score=100.0 * (mean - r_rand) / (r_or - r_rand),
        reward_cvar10=lower_cvar(reward),
        oracle_reward=r_or,
        random_reward=r_rand,
        n_users=len(reward),
        per_user_reward=reward,
    )


def evaluate_policy(world: World, policy: Policy, users: EvalUsers | SessionUsers
                    ) -> OnlineEvaluation:
    """Run ``policy`` (states -> action embeddings) on ``users`` and score it (whole sessions
    for session users)."""
    if isinstance(users, SessionUsers):
        return score_rewards(users, play_sessions(world, users, policy_chooser(world, policy)))
    return score_actions(world, users, policy(users.states))
