"""Gymnasium environment over the simulated world: a one-step contextual bandit (App. J).

``reset`` draws a user and returns the observed state; ``step(action)`` retrieves the nearest
catalogue item to the action embedding (cosine KNN), returns the logged-style noisy reward
R_obs (times the user's activity) and ends the episode. ``info`` carries the item, R_latent,
the user's oracle R_latent and activity, so
online learners (offline-to-online) and evaluators use the same interface.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from drpo_core.sim.config import SimConfig
from drpo_core.sim.world import EVAL_SPLITS, World


class RecSimEnv(gym.Env[np.ndarray, np.ndarray]):
    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self, config: SimConfig | World, split: str = "validation", day: int = 0,
                 n_users: int = 10_000) -> None:
        self.world = config if isinstance(config, World) else World.build(config)
        if split not in EVAL_SPLITS:
            raise ValueError(f"unknown split {split!r}; allowed: {', '.join(EVAL_SPLITS)}")
        c = self.world.config
        self._users = self.world.fresh_users(n_users, split, day)
        self._activity = self.world.fresh_activity(n_users, split, day)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (c.state_dim,), np.float32)
        self.action_space = gym.spaces.Box(-np.inf, np.inf, (c.d,), np.float32)
        self._current: int | None = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._current = int(self.np_random.integers(len(self._users)))
        u = self._users[self._current : self._current + 1]
        a = self._activity[self._current : self._current + 1]
        state = self.world.observe(u, self.np_random, a)[0]
        return state, {"user": self._current}

    def step(
        self, action: np.ndarray
    ) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._current is None:
            raise RuntimeError("call reset() before step()")
        u = self._users[self._current : self._current + 1]
        a = self._activity[self._current : self._current + 1]
        item = self.world.nearest_items(np.asarray(action, dtype=np.float32).reshape(1, -1))
        latent = self.world.latent_reward(u, item)
        reward = float(self.world.observed_reward(latent, self.np_random, a)[0])
        info = {"item": int(item[0]), "latent_reward": float(latent[0]),
                "oracle_reward": float(self.world.latent_reward_matrix(u).max()),
                "activity": float(a[0])}
        self._current = None
        state = np.zeros(self.observation_space.shape, np.float32)
        return state, reward, True, False, info
