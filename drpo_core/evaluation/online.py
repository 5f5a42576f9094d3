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
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from drpo_core.sim.world import Stream, World, rng_for

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


def eval_users(world: World, n_users: int = 2000, split: str = "test", day: int = 0,
               chunk: int = 2048) -> EvalUsers:
    """Fresh users of ``split`` with exact oracle/random references (chunked over users)."""
    if n_users <= 0:
        raise ValueError(f"n_users must be positive, got {n_users}")
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


def score_actions(world: World, users: EvalUsers, actions: np.ndarray) -> OnlineEvaluation:
    """Score one action embedding per evaluation user."""
    actions = np.asarray(actions, dtype=np.float32)
    if len(actions) != len(users.states):
        raise ValueError(f"expected {len(users.states)} actions, got {len(actions)}")
    if not np.isfinite(actions).all():
        raise ValueError("policy returned non-finite actions")
    items = world.nearest_items(actions)
    return score_rewards(users, users.activity * world.latent_reward(users.interests, items))


def score_rewards(users: EvalUsers, reward: np.ndarray) -> OnlineEvaluation:
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


def evaluate_policy(world: World, policy: Policy, users: EvalUsers) -> OnlineEvaluation:
    """Run ``policy`` (states -> action embeddings) on ``users`` and score it."""
    return score_actions(world, users, policy(users.states))
