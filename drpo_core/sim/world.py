"""The simulated world (App. H): items, users, what a system observes of them, the reward model.

* Items: a Gaussian mixture of ``n_clusters`` topics projected onto the unit sphere (or real
  embeddings loaded from a file).
* Users: latent interest u* near one topic centre; topic sizes follow a Zipf law. Interests take
  a small random-walk step every day (``interest_drift``), so consecutive days differ. Each user
  has an activity a_u ~ LogNormal (mean 1): the scale of everything the user pays.
* Observed state (``state_model = "history"``): what a production system sees, never u*. The
  user's day of organic consumption (``history_len`` items, part from the user-blind popularity
  list, part from a softmax over cos(u*, e_i)) gives a mean recent-item embedding h; noisy
  profile features (topic scores, log activity) join it; a fixed random map G and a tanh put
  the lot into R^{d_state}:   s = tanh(G [h, profile]) + noise.
  The state space is not the item space, so no fixed map of the state (identity, a linear map)
  retrieves the user's best item; ``state_model = "interest"`` keeps the old noisy view of u*.
* Value: R_latent(s, a) = exp(-(1 - cos(e_a, u*)) / (2 delta^2))        (App. H)
  Logged reward: R_obs = a_u * clip(R_latent + N(0, sigma_noise^2), 0, 1) (App. H, times the
  user's activity: eCPM-like and heavy-tailed across rows).

All randomness comes from ``numpy.random.Generator`` streams keyed by (seed, stream, index), so
the world and every logged day are reproducible independently of generation order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from drpo_core.sim.config import SimConfig


class Stream(IntEnum):
    """Independent random streams of one simulated world."""

    WORLD = 1
    DRIFT = 2
    LOGS = 3
    EVAL = 4
    HISTORY = 5
    ACTIVITY = 6
    SESSION = 7  # the sequential mode (its own stream: bandit logs are unchanged by it)


EVAL_SPLITS = {"validation": 1, "test": 2}


def rng_for(seed: int, stream: Stream, *index: int) -> np.random.Generator:
    return np.random.default_rng([seed, int(stream), *index])


def normalize_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)


def zipf_weights(n: int, exponent: float) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** exponent
    return w / w.sum()


def _offsets(rng: np.random.Generator, n: int, d: int, norm: float) -> np.ndarray:
    """Isotropic Gaussian offsets whose expected norm is ``norm``."""
    return rng.standard_normal((n, d), dtype=np.float32) * np.float32(norm / np.sqrt(d))


def lognormal_activity(rng: np.random.Generator, n: int, sigma: float) -> np.ndarray:
    """a ~ LogNormal(-sigma^2 / 2, sigma^2): mean 1, heavy right tail (sigma = 0: all ones)."""
    if sigma == 0.0:
        return np.ones(n)
    return np.exp(sigma * rng.standard_normal(n) - 0.5 * sigma * sigma)


@dataclass
class World:
    """Items, users, the observation model and the reward model of one simulator config."""

    config: SimConfig
    items: np.ndarray  # (n_items, d) unit rows, float32
    item_topic: np.ndarray  # (n_items,)
    topic_centres: np.ndarray  # (n_clusters, d) unit rows
    topic_weights: np.ndarray  # (n_clusters,)
    interest0: np.ndarray  # (n_users, d) unit rows: u* on day 0
    activity: np.ndarray  # (n_users,) a_u, mean 1 (the user's reward scale)
    projection: np.ndarray | None  # (d, d_state) "interest" state: JL projection or None
    state_map: np.ndarray  # (d + n_clusters + 1, d_state) G of the "history" state
    popularity: np.ndarray  # (n_items,) probabilities of the popularity policy
    _drift_cache: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    _feature_cache: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    _lengths: np.ndarray | None = field(default=None, repr=False)

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def build(cls, config: SimConfig) -> World:
        c = config
        rng = rng_for(c.seed, Stream.WORLD)
        topic_weights = zipf_weights(c.n_clusters, c.cluster_zipf)
        if c.item_embeddings_path is not None:
            items = _load_item_embeddings(c)
            centres = items[rng.choice(c.n_items, size=c.n_clusters, replace=False)]
            item_topic = np.argmax(items @ centres.T, axis=1)
        else:
            centres = normalize_rows(rng.standard_normal((c.n_clusters, c.d), dtype=np.float32))
            item_topic = rng.choice(c.n_clusters, size=c.n_items, p=topic_weights)
            items = normalize_rows(centres[item_topic] + _offsets(rng, c.n_items, c.d,
                                                                    c.cluster_spread))
        user_topic = rng.choice(c.n_clusters, size=c.n_users, p=topic_weights)
        interest0 = normalize_rows(centres[user_topic] + _offsets(rng, c.n_users, c.d,
                                                                  c.user_spread))
        projection = None
        if c.state_dim != c.d:
            # Johnson-Lindenstrauss: entries N(0, 1/d_state) keep norms and angles on average.
            projection = (rng.standard_normal((c.d, c.state_dim)) / np.sqrt(c.state_dim)).astype(
                np.float32)
        # Popularity: items that appeal to the whole population rank first, Zipf over ranks.
        appeal = items @ (topic_weights @ centres)
        appeal = appeal + 0.05 * rng.standard_normal(c.n_items).astype(np.float32)
        ranks = np.empty(c.n_items, dtype=np.int64)
        ranks[np.argsort(-appeal)] = np.arange(c.n_items)
        popularity = zipf_weights(c.n_items, c.popularity_exponent)[ranks]
        # G: entries N(0, gain^2 / n_in), so each pre-activation has std ~ gain.
        n_in = c.d + c.n_clusters + 1
        state_map = (rng.standard_normal((n_in, c.state_dim)) * (c.state_gain / np.sqrt(n_in))
                     ).astype(np.float32)
        activity = lognormal_activity(rng_for(c.seed, Stream.ACTIVITY), c.n_users,
                                      c.activity_sigma)
        return cls(c, items, item_topic, centres, topic_weights, interest0, activity,
                   projection, state_map, popularity)

    # ---- users ----------------------------------------------------------------------------
    def interests(self, day: int) -> np.ndarray:
        """u* of every logged user on ``day`` (day 0 = the first simulated day)."""
        if day < 0:
            raise ValueError(f"day must be >= 0, got {day}")
        if day == 0 or self.config.interest_drift == 0.0:
            return self.interest0
        if day not in self._drift_cache:
            walk = self._walk(day)
            self._drift_cache = {day: normalize_rows(self.interest0 + walk)}
        return self._drift_cache[day]

    def _walk(self, day: int) -> np.ndarray:
        c = self.config
        walk = np.zeros_like(self.interest0)
        for t in range(1, day + 1):
            walk += _offsets(rng_for(c.seed, Stream.DRIFT, t), c.n_users, c.d, c.interest_drift)
        return walk

    def fresh_users(self, n: int, split: str, day: int = 0) -> np.ndarray:
        """Interests of ``n`` new users of the same population, never seen in the logs.

        ``split`` ("validation" or "test") selects an independent stream, so model selection
        and the final score never see the same users. Drift over ``day`` days is applied as
        one step of the random walk's marginal (norm ``interest_drift * sqrt(day)``).
        """
        if split not in EVAL_SPLITS:
            raise ValueError(f"unknown split {split!r}; allowed: {', '.join(EVAL_SPLITS)}")
        c = self.config
        rng = rng_for(c.seed, Stream.EVAL, EVAL_SPLITS[split], day)
        topic = rng.choice(c.n_clusters, size=n, p=self.topic_weights)
        u = self.topic_centres[topic] + _offsets(rng, n, c.d, c.user_spread)
        u = normalize_rows(u)
        if day > 0 and c.interest_drift > 0:
            u = normalize_rows(u + _offsets(rng, n, c.d, c.interest_drift * np.sqrt(day)))
        return u

    def fresh_activity(self, n: int, split: str, day: int = 0) -> np.ndarray:
        """Activity a_u of the ``n`` users ``fresh_users(n, split, day)`` returns."""
        if split not in EVAL_SPLITS:
            raise ValueError(f"unknown split {split!r}; allowed: {', '.join(EVAL_SPLITS)}")
        rng = rng_for(self.config.seed, Stream.ACTIVITY, EVAL_SPLITS[split], day)
        return lognormal_activity(rng, n, self.config.activity_sigma)

    # ---- what the system observes -------------------------------------------------------------
    def recent_items(self, interests: np.ndarray, rng: np.random.Generator,
                     chunk: int = 1024) -> np.ndarray:
        """(n, history_len) items of each user's organic consumption of the day: each one from
        the user-blind popularity list with probability ``history_popular_share``; otherwise
        one of the ``history_browse`` random catalogue items the user browsed that day, drawn by
        softmax(cos(u*, e_i) / history_temperature) among them (exact inverse CDF)."""
        c = self.config
        n, k, m = len(interests), c.history_len, c.history_browse
        uniform = rng.random((n, k))
        from_pop = rng.random((n, k)) < c.history_popular_share
        browsed = rng.integers(0, c.n_items, size=(n, m))
        out = np.empty((n, k), dtype=np.int64)
        pop_cdf = np.cumsum(self.popularity)
        out[from_pop] = np.searchsorted(pop_cdf / pop_cdf[-1], uniform[from_pop], side="right")
        inv_t = 1.0 / c.history_temperature
        for i in range(0, n, chunk):
            seen = browsed[i : i + chunk]
            logits = np.einsum("nd,nmd->nm", interests[i : i + chunk],
                               self.items[seen]).astype(np.float64) * inv_t
            weights = np.exp(logits - logits.max(axis=1, keepdims=True))
            cdf = np.cumsum(weights, axis=1)
            cdf /= cdf[:, -1:]
            # one searchsorted for the whole chunk: row j's CDF is shifted into [j, j + 1]
            rows = np.arange(len(cdf))[:, None]
            pos = np.searchsorted((cdf + rows).ravel(), uniform[i : i + chunk] + rows,
                                  side="right") - rows * m
            picked = np.take_along_axis(seen, np.minimum(pos, m - 1), axis=1)
            mine = ~from_pop[i : i + chunk]
            out[i : i + chunk][mine] = picked[mine]
        return np.minimum(out, c.n_items - 1)

    def user_features(self, interests: np.ndarray, activity: np.ndarray,
                      rng: np.random.Generator) -> np.ndarray:
        """x = [sqrt(d) h, 3 cos(u*, topic centres) + noise, log a_u + noise]: the inputs of
        the state map (h = the mean embedding of the user's recent items)."""
        c = self.config
        h = self.items[self.recent_items(interests, rng)].mean(axis=1) * np.float32(np.sqrt(c.d))
        topics = 3.0 * (interests @ self.topic_centres.T) + c.profile_noise * rng.standard_normal(
            (len(interests), c.n_clusters))
        log_a = np.log(activity) + c.profile_noise * rng.standard_normal(len(interests))
        return np.hstack([h, topics, log_a[:, None]]).astype(np.float32)

    def day_features(self, day: int) -> np.ndarray:
        """``user_features`` of every logged user on ``day`` (one history per user and day)."""
        if day not in self._feature_cache:
            rng = rng_for(self.config.seed, Stream.HISTORY, day)
            self._feature_cache = {day: self.user_features(self.interests(day), self.activity,
                                                           rng)}
        return self._feature_cache[day]

    def state_of(self, features: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """s = tanh(G x) + noise of norm ``state_noise`` (one fresh draw per row)."""
        c = self.config
        s = np.tanh(features @ self.state_map)
        return (s + _offsets(rng, len(s), c.state_dim, c.state_noise)).astype(np.float32)

    def observe(self, interests: np.ndarray, rng: np.random.Generator,
                activity: np.ndarray | None = None) -> np.ndarray:
        """Observed state of users with these interests (and activity; default 1)."""
        c = self.config
        if c.state_model == "interest":
            base = interests if self.projection is None else interests @ self.projection
            return (base + _offsets(rng, len(base), c.state_dim, c.state_noise)).astype(
                np.float32)
        a = np.ones(len(interests)) if activity is None else activity
        return self.state_of(self.user_features(interests, a, rng), rng)

    def observe_logged(self, day: int, users: np.ndarray, rng: np.random.Generator
                       ) -> np.ndarray:
        """States of logged rows of ``users`` (indices of the logged population) on ``day``."""
        if self.config.state_model == "interest":
            return self.observe(self.interests(day)[users], rng)
        return self.state_of(self.day_features(day)[users], rng)

    # ---- reward model -----------------------------------------------------------------------
    def latent_reward(self, interests: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
        """R_latent = exp(-(1 - cos(e_a, u*)) / (2 delta^2)) for each (user, item) pair."""
        cos = np.einsum("nd,nd->n", interests, self.items[item_idx])
        return self._value(cos)

    def latent_reward_matrix(self, interests: np.ndarray) -> np.ndarray:
        """R_latent of every catalogue item for each user: (n_users, n_items)."""
        return self._value(interests @ self.items.T)

    def _value(self, cos: np.ndarray) -> np.ndarray:
        delta = self.config.delta
        return np.exp(-(1.0 - cos.astype(np.float64)) / (2.0 * delta * delta))

    def observed_reward(self, latent: np.ndarray, rng: np.random.Generator,
                        activity: np.ndarray | None = None) -> np.ndarray:
        """R_obs = a_u * clip(R_latent + N(0, sigma_noise^2), 0, 1)  (activity default 1)."""
        noise = rng.standard_normal(len(latent)) * self.config.reward_noise
        reward = np.clip(latent + noise, 0.0, 1.0)
        return reward if activity is None else reward * activity

    def item_lengths(self) -> np.ndarray:
        """(n_items,) minutes of each item watched to the end (the sequential mode):
        Uniform(0.5, 1.5) x ``item_length``, from the session stream (the world's own draws,
        and so the bandit logs, are unchanged by it)."""
        if self._lengths is None:
            rng = rng_for(self.config.seed, Stream.SESSION)
            self._lengths = self.config.item_length * rng.uniform(0.5, 1.5, self.config.n_items)
        return self._lengths

    # ---- retrieval --------------------------------------------------------------------------
    def nearest_items(self, actions: np.ndarray, chunk: int = 8192) -> np.ndarray:
        """KNN (top-1, cosine) retrieval of a catalogue item for each action embedding."""
        actions = np.asarray(actions, dtype=np.float32)
        if actions.ndim != 2 or actions.shape[1] != self.config.d:
            raise ValueError(
                f"actions must have shape (n, {self.config.d}), got {tuple(actions.shape)}"
            )
        out = np.empty(len(actions), dtype=np.int64)
        for i in range(0, len(actions), chunk):
            a = normalize_rows(actions[i : i + chunk])
            out[i : i + chunk] = np.argmax(a @ self.items.T, axis=1)
        return out


def _load_item_embeddings(c: SimConfig) -> np.ndarray:
    path = c.item_embeddings_path
    assert path is not None
    if not path.is_file():
        raise FileNotFoundError(f"item_embeddings_path {path} does not exist")
    items = np.load(path)
    if items.ndim != 2 or items.shape != (c.n_items, c.d):
        raise ValueError(
            f"item embeddings in {path} must have shape (n_items={c.n_items}, d={c.d}), "
            f"got {items.shape}"
        )
    if not np.isfinite(items).all():
        raise ValueError(f"item embeddings in {path} contain NaN or inf")
    return normalize_rows(items.astype(np.float32))
