"""Multi-step sessions of the simulated world (``SimConfig.sessions = "sequential"``, issue 11).

A session is one user's visit. At every step the system shows one item and

* the user watches part of it: engagement e = clip(R_latent(u*_t, i) + N(0, sigma_noise^2), 0, 1)
  (the bandit's noisy relevance without the activity), watch time w = length_i x e minutes;
* the logged reward is the watch time times the user's value, a_u x w;
* the step costs ``item_cost`` + w minutes of the session's ``session_budget``; the session ends
  after the step that uses the budget up (so a session has at most
  ceil(session_budget / item_cost) steps);
* the interest drifts toward what was watched: u*_{t+1} = normalize(u*_t + session_drift x e x
  e_i) (ASSUMPTION: the paper has no sessions; the step size is a documented stand-in);
* the state at step t shows the session so far: the 'history' state's recent items are the
  last ``history_len`` of (the day's organic items, then this session's shown items), its topic
  scores those of the current u* (profile noise drawn once per session); the 'interest' state is
  a noisy view of the current u*.

The logs (``drpo_core.sim.generate``) use the noisy engagement; the online evaluation
(``drpo_core.evaluation.online``) the expected one, e = R_latent, as the bandit scoring does.
Everything is vectorised over sessions: a step advances every session still running.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from drpo_core.sim.logging_agent import MixedLoggingAgent
from drpo_core.sim.world import World, _offsets, normalize_rows


@dataclass
class Sessions:
    """The running state of ``n`` sessions (one row per session; rows never move)."""

    world: World
    interests: np.ndarray  # (n, d) u*_t, float32 (a copy: the world's users are not changed)
    activity: np.ndarray  # (n,) a_u
    recent: np.ndarray  # (n, history_len) recent item indices, oldest first
    profile_noise: np.ndarray  # (n, n_clusters + 1) noise of the profile features
    time_left: np.ndarray  # (n,) minutes of budget left
    steps: np.ndarray  # (n,) steps taken

    @classmethod
    def start(cls, world: World, interests: np.ndarray, activity: np.ndarray,
              rng: np.random.Generator) -> Sessions:
        """Sessions of users with these interests and activity, from their organic day."""
        c = world.config
        n = len(interests)
        recent = (world.recent_items(interests, rng) if c.state_model == "history"
                  else np.zeros((n, c.history_len), dtype=np.int64))
        noise = c.profile_noise * rng.standard_normal((n, c.n_clusters + 1))
        return cls(world, np.array(interests, dtype=np.float32), np.asarray(activity, float),
                   recent, noise, np.full(n, c.session_budget), np.zeros(n, dtype=np.int64))

    def copy(self) -> Sessions:
        return Sessions(self.world, self.interests.copy(), self.activity.copy(),
                        self.recent.copy(), self.profile_noise.copy(), self.time_left.copy(),
                        self.steps.copy())

    @property
    def active(self) -> np.ndarray:
        """Indices of the sessions still running."""
        return np.flatnonzero(self.time_left > 0)

    def clean_states(self, rows: np.ndarray) -> np.ndarray:
        """Noise-free observed states of the sessions ``rows`` (add state noise to log them)."""
        world, c = self.world, self.world.config
        u = self.interests[rows]
        if c.state_model == "interest":
            return u if world.projection is None else u @ world.projection
        h = world.items[self.recent[rows]].mean(axis=1) * np.float32(np.sqrt(c.d))
        topics = 3.0 * (u @ world.topic_centres.T) + self.profile_noise[rows, :-1]
        log_a = np.log(self.activity[rows]) + self.profile_noise[rows, -1]
        x = np.hstack([h, topics, log_a[:, None]]).astype(np.float32)
        return np.tanh(x @ world.state_map)

    def observe(self, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Observed states of ``rows`` with fresh state noise (one draw per row)."""
        c = self.world.config
        clean = self.clean_states(rows)
        return (clean + _offsets(rng, len(rows), c.state_dim, c.state_noise)).astype(np.float32)

    def advance(self, rows: np.ndarray, items: np.ndarray, engagement: np.ndarray
                ) -> np.ndarray:
        """Show ``items`` to the sessions ``rows`` watched with ``engagement`` in [0, 1];
        returns the watch times (minutes) and moves budget, interest and recent items."""
        world, c = self.world, self.world.config
        watch = world.item_lengths()[items] * engagement
        self.time_left[rows] -= c.item_cost + watch
        moved = self.interests[rows] + np.float32(c.session_drift) * (
            engagement[:, None].astype(np.float32) * world.items[items])
        self.interests[rows] = normalize_rows(moved)
        self.recent[rows] = np.concatenate([self.recent[rows, 1:], items[:, None]], axis=1)
        self.steps[rows] += 1
        return watch


def max_steps(world: World) -> int:
    """The most steps a session can take (each costs at least ``item_cost``)."""
    c = world.config
    return int(np.ceil(c.session_budget / c.item_cost)) + 1


def max_minutes(world: World) -> float:
    """The longest a session can last: the budget plus one last step of the longest item."""
    c = world.config
    return c.session_budget + c.item_cost + 1.5 * c.item_length


@dataclass(frozen=True)
class SessionRows:
    """Logged steps of whole sessions, ordered by (session, step)."""

    session: np.ndarray  # (N,) session number of the day, 0..n_sessions-1
    step: np.ndarray  # (N,) 0..T-1 within its session
    user: np.ndarray  # (N,) index into the logged population
    elapsed: np.ndarray  # (N,) minutes since the session started, before this step
    state: np.ndarray  # (N, d_state)
    item: np.ndarray  # (N,)
    component: np.ndarray  # (N,) index into logging_agent.COMPONENTS
    logprob: np.ndarray  # (N,) log pi_beta(item | u*_t) of the mixture
    reward: np.ndarray  # (N,) a_u x watch minutes

    @property
    def n_sessions(self) -> int:
        return int(self.session.max()) + 1 if len(self.session) else 0

    def take(self, idx: np.ndarray) -> SessionRows:
        return SessionRows(*(getattr(self, f)[idx] for f in FIELDS))


FIELDS = ("session", "step", "user", "elapsed", "state", "item", "component", "logprob",
          "reward")


def play_logged_sessions(world: World, agent: MixedLoggingAgent, day: int, n_rows: int,
                         rng: np.random.Generator) -> SessionRows:
    """Sessions of random logged users under the logging mixture (which acts at every step on
    the current u*) until ``n_rows`` steps are logged; the last session is cut at ``n_rows``."""
    parts: list[SessionRows] = []
    total, played = 0, 0
    per_session = 1.0 / max_steps(world)  # the first batch cannot overshoot by much
    while total < n_rows:
        n = max(16, int(np.ceil((n_rows - total) * per_session)))
        users = rng.integers(0, world.config.n_users, size=n)
        part = _play_batch(world, agent, day, users, rng)
        parts.append(SessionRows(part.session + played, *(getattr(part, f) for f in FIELDS[1:])))
        total, played = total + len(part.session), played + n
        per_session = played / total
    rows = SessionRows(*(np.concatenate([getattr(p, f) for p in parts]) for f in FIELDS))
    return rows.take(np.arange(n_rows))


def _play_batch(world: World, agent: MixedLoggingAgent, day: int, users: np.ndarray,
                rng: np.random.Generator) -> SessionRows:
    sessions = Sessions.start(world, world.interests(day)[users], world.activity[users], rng)
    out: list[tuple[np.ndarray, ...]] = []
    while len(rows := sessions.active):
        state = sessions.observe(rows, rng)
        u = sessions.interests[rows]
        logged = agent.sample_each(u, rng)
        engagement = world.observed_reward(world.latent_reward(u, logged.item), rng)
        elapsed = world.config.session_budget - sessions.time_left[rows]
        step = sessions.steps[rows].copy()
        watch = sessions.advance(rows, logged.item, engagement)
        out.append((rows, step, users[rows], elapsed, state, logged.item, logged.component,
                    logged.logprob, sessions.activity[rows] * watch))
    rows_all = SessionRows(*(np.concatenate(col) for col in zip(*out, strict=True)))
    return rows_all.take(np.lexsort((rows_all.step, rows_all.session)))
