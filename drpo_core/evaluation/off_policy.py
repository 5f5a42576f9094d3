"""Off-policy estimates of a policy's reward from logs with logged propensities.

The policy is continuous (an action embedding per state) but the logs record discrete items, so
the policy is scored as the stochastic retrieval policy it induces over the logged catalogue:

    pi(i | s) = softmax_i( cos(mu(s), e_i) / tau )      (tau = ``temperature``; tau -> 0 is KNN)

ASSUMPTION: a small temperature stands in for deterministic top-1 retrieval, whose importance
weights would be 0 for almost every logged row of a large catalogue. With the logged behaviour
probabilities p_b = exp(behavior_logprob) and w = pi(i | s) / p_b:

    SNIPS = sum_k w_k r_k / sum_k w_k                              (self-normalised IPS)
    DR    = mean_k [ sum_i pi(i | s_k) q(s_k, i) + w_k (r_k - q(s_k, i_k)) ]

q is a ridge regression of the reward on features of (state, item) fitted on the other half of
the rows (cross-fitting), so the direct part never sees the rows it corrects. The lower tail is
the CVaR_10% of the per-row DR terms. Reported with the effective sample size of the weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from drpo_core.evaluation.online import lower_cvar


@dataclass(frozen=True)
class OffPolicyEstimate:
    snips: float
    dr: float
    dr_cvar10: float
    effective_sample_size: float
    n_rows: int
    n_items: int
    #: the per-row DR terms (their mean is ``dr``): the units a paired comparison of two
    #: policies on the same held-out rows differences
    terms: np.ndarray = field(repr=False, compare=False, default_factory=lambda: np.empty(0))

    def as_dict(self) -> dict[str, float]:
        return {k: float(getattr(self, k)) for k in ("snips", "dr", "dr_cvar10",
                                                     "effective_sample_size", "n_rows",
                                                     "n_items")}


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def target_probabilities(actions: np.ndarray, catalogue: np.ndarray, temperature: float,
                         chunk: int = 4096) -> np.ndarray:
    """pi(i | s) for every row and catalogue item: (n, n_items)."""
    a, c = _unit(actions.astype(np.float64)), _unit(catalogue.astype(np.float64))
    out = np.empty((len(a), len(c)))
    for i in range(0, len(a), chunk):
        logits = a[i : i + chunk] @ c.T / temperature
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        out[i : i + chunk] = p / p.sum(axis=1, keepdims=True)
    return out


def _features(states: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Reward-model features of (state, item): cosine, its square, bias."""
    cos = np.einsum("nd,nd->n", _unit(states), _unit(items))
    return np.stack([cos, cos**2, np.ones_like(cos)], axis=1)


def _fit_ridge(x: np.ndarray, y: np.ndarray, alpha: float = 1e-3) -> np.ndarray:
    return np.linalg.solve(x.T @ x + alpha * np.eye(x.shape[1]), x.T @ y)


def estimate(
    states: np.ndarray,
    logged_items: np.ndarray,
    rewards: np.ndarray,
    behavior_logprob: np.ndarray,
    actions: np.ndarray,
    catalogue: np.ndarray,
    temperature: float = 0.05,
    seed: int = 0,
    chunk: int = 2048,
) -> OffPolicyEstimate:
    """SNIPS and DR estimates of E_pi[r] from logged rows.

    ``states`` (n, d_s) must live in the item space for the reward model (the simulator's
    states are noisy views of the interest); ``logged_items`` are indices into ``catalogue``;
    ``actions`` are the policy's action embeddings for ``states``.
    """
    n = len(rewards)
    if n == 0:
        raise ValueError("no rows to estimate from")
    if not np.isfinite(behavior_logprob).all():
        raise ValueError("behavior_logprob must be logged (finite) for every row")
    rng = np.random.default_rng(seed)
    fold = rng.permutation(n) % 2
    shared_space = states.shape[1] == catalogue.shape[1]
    coefs = {}
    for k in (0, 1):  # cross-fitting: rows of fold k are corrected by a model fit on the other
        train = fold != k
        coefs[k] = (_fit_ridge(_features(states[train], catalogue[logged_items[train]]),
                               rewards[train]) if shared_space else None)
    w = np.empty(n)
    dr_terms = np.empty(n)
    unit_catalogue = _unit(catalogue.astype(np.float64))
    for i in range(0, n, chunk):
        rows = slice(i, min(i + chunk, n))
        pi = target_probabilities(actions[rows], catalogue, temperature)
        logged = logged_items[rows]
        w[rows] = pi[np.arange(len(logged)), logged] / np.exp(behavior_logprob[rows])
        q_logged = np.empty(len(logged))
        q_policy = np.empty(len(logged))
        for k in (0, 1):
            sel = fold[rows] == k
            if coefs[k] is None:  # no shared space: the direct model is the mean reward
                q_logged[sel] = q_policy[sel] = rewards[fold != k].mean()
                continue
            c = coefs[k]
            cos_all = _unit(states[rows][sel].astype(np.float64)) @ unit_catalogue.T
            q_policy[sel] = (pi[sel] * (c[0] * cos_all + c[1] * cos_all**2 + c[2])).sum(axis=1)
            q_logged[sel] = _features(states[rows][sel], catalogue[logged[sel]]) @ c
        dr_terms[rows] = q_policy + w[rows] * (rewards[rows] - q_logged)
    snips = float((w * rewards).sum() / max(w.sum(), 1e-300))
    ess = float(w.sum() ** 2 / max((w**2).sum(), 1e-300))
    return OffPolicyEstimate(snips, float(dr_terms.mean()), lower_cvar(dr_terms), ess, n,
                             len(catalogue), dr_terms)
