"""Gymnasium environment over the simulated world: a one-step contextual bandit (App. J), or
whole sessions in the sequential mode (``SimConfig.sessions = "sequential"``).

``reset`` draws a user and returns the observed state; ``step(action)`` retrieves the nearest
catalogue item to the action embedding (cosine KNN), returns the logged-style noisy reward
R_obs (times the user's activity) and ends the episode. ``info`` carries the item, R_latent,
the user's oracle R_latent and activity, so
online learners (offline-to-online) and evaluators use the same interface.

Sequential mode: ``reset`` starts a session (drpo_core/sim/sessions.py), ``step`` shows the
item, returns the logged-style reward a_u x watch minutes (noisy engagement) and the session's
next state, and terminates when the session's time budget runs out; ``info`` adds the watch
minutes and the minutes left.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from drpo_core.sim.config import SimConfig
from drpo_core.sim.sessions import Sessions
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
        self._session: Sessions | None = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._current = int(self.np_random.integers(len(self._users)))
        u = self._users[self._current : self._current + 1]
        a = self._activity[self._current : self._current + 1]
        if self.world.config.sessions == "sequential":
            self._session = Sessions.start(self.world, u, a, self.np_random)
            return self._session.observe(np.arange(1), self.np_random)[0], {
                "user": self._current}
        state = self.world.observe(u, self.np_random, a)[0]
        return state, {"user": self._current}

    def _session_step(self, action: np.ndarray
                      ) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        session, row = self._session, np.arange(1)
        assert session is not None
        item = self.world.nearest_items(np.asarray(action, dtype=np.float32).reshape(1, -1))
        latent = self.world.latent_reward(session.interests, item)
        engagement = self.world.observed_reward(latent, self.np_random)
        watch = session.advance(row, item, engagement)
        reward = float(session.activity[0] * watch[0])
        done = bool(session.time_left[0] <= 0)
        info = {"item": int(item[0]), "latent_reward": float(latent[0]),
                "watch_minutes": float(watch[0]), "minutes_left": float(session.time_left[0]),
                "step": int(session.steps[0]), "activity": float(session.activity[0])}
        state = (np.zeros(self.observation_space.shape, np.float32) if done
                 else session.observe(row, self.np_random)[0])
        if done:
            self._current = None
        return state, reward, done, False, info

    def step(
        self, action: np.ndarray
    ) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._current is None:
            raise RuntimeError("call reset() before step()")
        if self.world.config.sessions == "sequential":
            return self._session_step(action)
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
