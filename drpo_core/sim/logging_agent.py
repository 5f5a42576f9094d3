"""The mixed-strategy logging agent (App. H, "the data curse") with exact propensities.

pi_beta(i | u) = w_e * pi_expert(i | u) + w_p * pi_pop(i) + w_r / n_items

* expert (signal, Type A): softmax over catalogue cosine similarity to the true interest u*,
  temperature = "policy noise" (ASSUMPTION: App. K's policy noise read as this temperature).
* popular (bias, Type B): Zipf law over item popularity ranks, tilted towards the user's topic:
  pi_pop(i | u) ∝ pop_i * exp(cos(u, e_i) / T_pop) ("popular in your interests"; ASSUMPTION: the
  paper's Type B is "suboptimal, medium reward", which a user-blind popularity list is not;
  ``popular_temperature = None`` gives the user-blind list).
* random (noise, Type C): uniform over the catalogue.

The logged ``behavior_logprob`` is log pi_beta(i | u) of the whole mixture (what an off-policy
estimator needs); ``logging_policy`` names the component that produced the row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from drpo_core.sim.world import World

COMPONENTS = ("expert", "popular", "random")


def _logsumexp_rows(x: np.ndarray) -> np.ndarray:
    m = x.max(axis=1, keepdims=True)
    return (m + np.log(np.exp(x - m).sum(axis=1, keepdims=True)))[:, 0]


@dataclass(frozen=True)
class LoggedActions:
    item: np.ndarray  # (n,) catalogue index
    component: np.ndarray  # (n,) index into COMPONENTS
    logprob: np.ndarray  # (n,) log pi_beta(item | u) of the mixture

    def rows(self, start: int, stop: int) -> LoggedActions:
        return LoggedActions(self.item[start:stop], self.component[start:stop],
                             self.logprob[start:stop])


class MixedLoggingAgent:
    """Samples logged items and reports their exact mixture propensities.

    Both personalised components are softmax policies over the catalogue,
    log pi_c(i | u) = base_c(i) + cos(u, e_i) / T_c - log Z_c(u), with base = 0 for the expert
    and base = log pop_i for the popularity policy.
    """

    def __init__(self, world: World, chunk: int = 4096) -> None:
        cfg = world.config
        self.world = world
        self.weights = np.asarray(cfg.mixture.as_array(), dtype=np.float64)
        self.chunk = chunk
        n = cfg.n_items
        self._base = (np.zeros(n), np.log(world.popularity))
        self._base32 = tuple(b.astype(np.float32) for b in self._base)
        self._inv_temp = (1.0 / cfg.expert_temperature,
                          0.0 if cfg.popular_temperature is None else 1.0 / cfg.popular_temperature)

    # ---- exact probabilities ------------------------------------------------------------
    def _logits(self, component: int, interests: np.ndarray) -> np.ndarray:
        cos = (interests @ self.world.items.T).astype(np.float64)
        return self._base[component][None, :] + cos * self._inv_temp[component]

    def log_normalizers(self, interests: np.ndarray) -> np.ndarray:
        """(n, 2): log Z of the expert and popularity softmax for each interest row."""
        out = np.empty((len(interests), 2), dtype=np.float64)
        for i in range(0, len(interests), self.chunk):
            rows = interests[i : i + self.chunk]
            for c in (0, 1):
                out[i : i + self.chunk, c] = _logsumexp_rows(self._logits(c, rows))
        return out

    def propensities(self, interests: np.ndarray) -> np.ndarray:
        """The full mixture pi_beta(. | u) over the catalogue: (n, n_items), rows sum to 1."""
        total = np.full((len(interests), self.world.config.n_items),
                        self.weights[2] / self.world.config.n_items)
        for c in (0, 1):
            logits = self._logits(c, interests)
            total += self.weights[c] * np.exp(logits - _logsumexp_rows(logits)[:, None])
        return total

    def log_propensity(
        self, interests: np.ndarray, item: np.ndarray, log_z: np.ndarray | None = None
    ) -> np.ndarray:
        """log pi_beta(item | u) of the mixture for each row."""
        if log_z is None:
            log_z = self.log_normalizers(interests)
        cos = np.einsum("nd,nd->n", interests, self.world.items[item]).astype(np.float64)
        with np.errstate(divide="ignore"):
            log_w = np.log(self.weights)
        terms = [
            log_w[c] + self._base[c][item] + cos * self._inv_temp[c] - log_z[:, c]
            for c in (0, 1)
        ]
        terms.append(np.full_like(cos, log_w[2] - np.log(self.world.config.n_items)))
        return np.logaddexp.reduce(np.stack(terms), axis=0)

    # ---- sampling ---------------------------------------------------------------------------
    def sample(
        self,
        user_interests: np.ndarray,
        row_user: np.ndarray,
        rng: np.random.Generator,
    ) -> LoggedActions:
        """One logged item per row; row ``k`` is an impression for user ``row_user[k]``.

        Sampling is exact inverse-CDF per user: each user's two softmax CDFs over the catalogue
        are built once (chunked over users), so the cost scales with users x items, not with
        rows x items.
        """
        n = len(row_user)
        n_items = self.world.config.n_items
        component = rng.choice(len(COMPONENTS), size=n, p=self.weights)
        uniform = rng.random(n)
        item = np.empty(n, dtype=np.int64)
        log_z = np.empty((len(user_interests), 2))
        order = np.argsort(row_user, kind="stable")
        edges = [*range(0, len(user_interests), self.chunk), len(user_interests)]
        bounds = np.searchsorted(row_user[order], edges)
        for k, first in enumerate(range(0, len(user_interests), self.chunk)):
            users = user_interests[first : first + self.chunk]
            rows = order[bounds[k] : bounds[k + 1]]
            cos = users @ self.world.items.T  # float32, shared by both components
            for c in (0, 1):
                # softmax and its CDF in float32, in place (sampling error ~1e-5 of a probability)
                logits, log_z[first : first + self.chunk, c] = self._softmax32(cos, c)
                mine = rows[component[rows] == c]
                if len(mine) == 0:
                    continue
                cdf = np.cumsum(logits, axis=1, out=logits)  # float32, ~1e-5 relative
                cdf /= cdf[:, -1:]
                who = row_user[mine] - first
                by_user = np.argsort(who, kind="stable")
                mine, who = mine[by_user], who[by_user]
                cuts = np.flatnonzero(np.diff(who)) + 1
                for idx in np.split(np.arange(len(mine)), cuts):
                    j = who[idx[0]]
                    pos = np.searchsorted(cdf[j], uniform[mine[idx]], side="right")
                    item[mine[idx]] = np.minimum(pos, n_items - 1)
        rand_rows = np.flatnonzero(component == 2)
        item[rand_rows] = np.minimum((uniform[rand_rows] * n_items).astype(np.int64), n_items - 1)
        logprob = self.log_propensity(user_interests[row_user], item, log_z[row_user])
        return LoggedActions(item, component, logprob)

    def sample_each(self, interests: np.ndarray, rng: np.random.Generator) -> LoggedActions:
        """One logged item for each row of ``interests`` (every row its own user: the
        sequential mode, where u* moves after every step). Exact inverse-CDF like ``sample``,
        with no loop over users: a row's softmax CDF is built only for its own component."""
        n, n_items = len(interests), self.world.config.n_items
        component = rng.choice(len(COMPONENTS), size=n, p=self.weights)
        uniform = rng.random(n)
        item = np.minimum((uniform * n_items).astype(np.int64), n_items - 1)  # random rows
        log_z = np.empty((n, 2))
        for first in range(0, n, self.chunk):
            rows = slice(first, first + self.chunk)
            cos = interests[rows] @ self.world.items.T
            for c in (0, 1):
                weights, log_z[rows, c] = self._softmax32(cos, c)
                mine = np.flatnonzero(component[rows] == c)
                if len(mine):
                    item[first + mine] = _inverse_cdf(weights[mine], uniform[first + mine])
        logprob = self.log_propensity(interests, item, log_z)
        return LoggedActions(item, component, logprob)

    def _softmax32(self, cos: np.ndarray, c: int) -> tuple[np.ndarray, np.ndarray]:
        """Unnormalised softmax weights (float32) of component ``c`` and their log Z."""
        logits = cos * np.float32(self._inv_temp[c])
        if c == 1:
            logits += self._base32[c]
        peak = logits.max(axis=1, keepdims=True)
        np.subtract(logits, peak, out=logits)
        np.exp(logits, out=logits)
        return logits, peak[:, 0] + np.log(logits.sum(axis=1, dtype=np.float64))


def _inverse_cdf(weights: np.ndarray, uniform: np.ndarray) -> np.ndarray:
    """Index drawn from each row's weights by inverse CDF (the count of CDF values <= u, which
    is searchsorted(cdf, u, side="right") row by row, without a loop over rows)."""
    cdf = np.cumsum(weights, axis=1)
    cdf /= cdf[:, -1:]
    pos = np.count_nonzero(cdf <= uniform[:, None].astype(np.float32), axis=1)
    return np.minimum(pos, cdf.shape[1] - 1)
