"""Configuration of the RecSim-style simulator (paper App. H).

Every field the paper leaves open is a documented stand-in (digest §13-14) and says so with
"ASSUMPTION". Defaults are calibrated in ``docs/simulator.md`` (command named there).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: App. H scenario table: share of (expert, popular, random) in the logs.
SCENARIOS: dict[str, tuple[float, float, float]] = {
    "medium": (0.10, 0.60, 0.30),  # "Medium Quality": impression logs, mixed strategy
    "extreme": (0.05, 0.05, 0.90),  # "Extreme Noisy": full-corpus retrieval, noise dominated
}


class LoggingMixture(BaseModel):
    """Shares of the mixed logging agent's components; they must sum to 1."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    expert: float = Field(ge=0.0, le=1.0, description="share of the expert (signal, Type A)")
    popular: float = Field(ge=0.0, le=1.0, description="share of the popularity policy (Type B)")
    random: float = Field(ge=0.0, le=1.0, description="share of uniform random items (Type C)")

    @model_validator(mode="after")
    def _sums_to_one(self) -> Self:
        total = self.expert + self.popular + self.random
        if abs(total - 1.0) > 1e-6:
            raise ValueError(
                f"mixture weights expert+popular+random must sum to 1, got {total:.6g} "
                f"({self.expert}, {self.popular}, {self.random})"
            )
        return self

    def as_array(self) -> tuple[float, float, float]:
        return (self.expert, self.popular, self.random)


#: Fields of the sequential mode (left out of a bandit config's JSON).
SESSION_FIELDS = ("sessions", "session_budget", "item_cost", "item_length", "session_drift")


class SimConfig(BaseModel):
    """The simulated world and its logging agent. Deterministic given ``seed``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scenario: str = Field("medium", description="name of the logging mixture (lineage only)")
    mixture: LoggingMixture = Field(
        default_factory=lambda: LoggingMixture(expert=0.1, popular=0.6, random=0.3),
        description="shares of expert / popular / random in the logs (App. H table)",
    )
    d: int = Field(
        128, gt=0,
        description="item-embedding (action) dimension. Paper: d=128 (Sec. 5.1, App. H); "
        "App. J says d=10 - both are supported (digest §10.2)",
    )
    d_state: int | None = Field(
        None, gt=0,
        description="observed state dimension; None = d (the 'history' state lives in its own "
        "space either way; the 'interest' state is a fixed random JL projection of u* when "
        "d_state != d)",
    )
    n_items: int = Field(5000, gt=1, description="catalogue size. ASSUMPTION: ~5000 from Fig. H")
    n_clusters: int = Field(
        10, gt=0, description="latent topics of the item Gaussian mixture. ASSUMPTION"
    )
    cluster_spread: float = Field(
        1.0, ge=0.0,
        description="norm of an item's offset from its topic centre before projection to the "
        "unit sphere. ASSUMPTION",
    )
    cluster_zipf: float = Field(
        0.0, ge=0.0,
        description="topic sizes follow Zipf(cluster_zipf) for both items and users (0 = equal "
        "sizes). ASSUMPTION: equal sizes keep the catalogue mean near 0, which the paper's "
        "extreme-noise BC result (0.268 with 90% random traffic) requires",
    )
    n_users: int = Field(20_000, gt=0, description="users in the logged population. ASSUMPTION")
    user_spread: float = Field(
        0.8, ge=0.0,
        description="norm of a user's interest offset from its topic centre. ASSUMPTION",
    )
    state_model: Literal["history", "interest"] = Field(
        "history",
        description="what the state shows: 'history' = a fixed random nonlinear map of the "
        "mean embedding of the user's recent items and noisy profile features (what a "
        "production system observes); 'interest' = a noisy view of u* itself (the pre-issue-16 "
        "world, where action = state is near-optimal; kept for comparison)",
    )
    history_len: int = Field(
        5, gt=0, description="recent items in the state (organic consumption of the day). "
        "ASSUMPTION",
    )
    history_browse: int = Field(
        100, gt=0,
        description="random catalogue items a user browses in a day; the recent items not from "
        "the popularity list are drawn among them by a softmax over cos(u*, e_i). ASSUMPTION",
    )
    history_temperature: float = Field(
        0.2, gt=0.0,
        description="temperature of the user's organic consumption, a softmax over cos(u*, e_i)"
        ". ASSUMPTION",
    )
    history_popular_share: float = Field(
        0.5, ge=0.0, le=1.0,
        description="share of the recent items taken from the user-blind popularity list "
        "instead of the user's interest. ASSUMPTION",
    )
    profile_noise: float = Field(
        1.0, ge=0.0,
        description="std of the Gaussian noise on the profile features (topic scores, log "
        "activity). ASSUMPTION",
    )
    state_gain: float = Field(
        2.0, gt=0.0,
        description="gain of the fixed random map before tanh: larger = a more nonlinear "
        "state, farther from any linear map of the recent items. ASSUMPTION",
    )
    state_noise: float = Field(
        0.3, ge=0.0,
        description="norm of the Gaussian noise added to each logged row's state. ASSUMPTION",
    )
    activity_sigma: float = Field(
        1.1, ge=0.0,
        description="per-user activity (reward scale) a_u ~ LogNormal(-sigma^2/2, sigma^2), "
        "mean 1: a few heavy users earn most of the reward (0 = every user alike). ASSUMPTION",
    )
    interest_drift: float = Field(
        0.05, ge=0.0,
        description="norm of each user's daily random-walk step of u* (days differ). ASSUMPTION",
    )
    delta: float = Field(
        0.41, gt=0.0,
        description="preference sensitivity in R_latent = exp(-(1-cos)/(2 delta^2)) (App. H; "
        "value NOT FOUND in the paper, calibrated)",
    )
    reward_noise: float = Field(
        0.1, ge=0.0,
        description="sigma_noise of R_obs = clip(R_latent + N(0, sigma^2), 0, 1) (App. H; main "
        "value NOT FOUND, App. K uses 0 / 0.5 / 1)",
    )
    expert_temperature: float = Field(
        0.05, gt=0.0,
        description="'policy noise': temperature of the expert's softmax over catalogue cosine "
        "similarity (App. K uses 0.1 / 0.5). ASSUMPTION",
    )
    popularity_exponent: float = Field(
        1.0, ge=0.0,
        description="Zipf exponent of the popularity policy over item popularity ranks. ASSUMPTION",
    )
    popular_temperature: float | None = Field(
        0.3, gt=0.0,
        description="topic tilt of the popularity policy, pi_pop ∝ pop * exp(cos/T_pop); None = "
        "user-blind popularity list. ASSUMPTION: 0.3 makes Type B 'suboptimal, medium reward' "
        "(mean ~0.16 vs the expert's ~0.40 and random's ~0.10, docs/simulator.md)",
    )
    item_embeddings_path: Path | None = Field(
        None,
        description="optional .npy file (n_items x d) of real item embeddings; replaces the "
        "Gaussian mixture (topics are then seeded from random items)",
    )
    sessions: Literal["bandit", "sequential"] = Field(
        "bandit",
        description="'bandit' = every logged row is a one-step episode (App. H); 'sequential' "
        "= multi-step sessions (issue 11): a user is shown items until the session's time "
        "budget runs out, the interest u* drifts toward what the user watches, the state shows "
        "the session so far and the reward is watch time (drpo_core/sim/sessions.py)",
    )
    session_budget: float = Field(
        20.0, gt=0.0,
        description="sequential: minutes a user spends in a session; the session ends after "
        "the item that uses up the budget. ASSUMPTION",
    )
    item_cost: float = Field(
        0.5, gt=0.0,
        description="sequential: minutes each shown item costs besides its watch time (looking, "
        "skipping); bounds a session at ceil(session_budget / item_cost) steps. ASSUMPTION",
    )
    item_length: float = Field(
        2.0, gt=0.0,
        description="sequential: mean length in minutes of an item watched to the end; lengths "
        "~ Uniform(0.5, 1.5) x item_length. ASSUMPTION",
    )
    session_drift: float = Field(
        0.2, ge=0.0,
        description="sequential: step size of the interest's move toward a watched item, "
        "u* <- normalize(u* + session_drift x engagement x e_item). ASSUMPTION",
    )
    seed: int = Field(0, ge=0, description="seed of the world and of every logged day")

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.n_clusters > self.n_items:
            raise ValueError(
                f"n_clusters ({self.n_clusters}) must be <= n_items ({self.n_items})"
            )
        return self

    @property
    def state_dim(self) -> int:
        return self.d if self.d_state is None else self.d_state

    def to_json(self) -> str:
        """The config as JSON; a bandit config leaves the session fields out, so its JSON (and
        its fingerprint, part of every event_id) is the one from before the sequential mode."""
        exclude = set(SESSION_FIELDS) if self.sessions == "bandit" else None
        return json.dumps(self.model_dump(mode="json", exclude=exclude), sort_keys=True)

    def fingerprint(self) -> str:
        """Short stable hash of the config: part of every event_id, so runs never collide."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:10]


def with_expert_share(mixture: LoggingMixture, expert: float) -> LoggingMixture:
    """The same mixture with the expert share set to ``expert``; popular and random keep their
    ratio and fill the rest (the conditions table varies the expert share this way)."""
    if not 0.0 <= expert <= 1.0:
        raise ValueError(f"expert_share must be in [0, 1], got {expert}")
    rest = mixture.popular + mixture.random
    if rest == 0.0:
        raise ValueError("expert_share: the mixture has no popular or random share to rescale")
    scale = (1.0 - expert) / rest
    return LoggingMixture(expert=expert, popular=mixture.popular * scale,
                          random=1.0 - expert - mixture.popular * scale)


def scenario_config(scenario: str, expert_share: float | None = None,
                    **overrides: object) -> SimConfig:
    """The default world with the named scenario's logging mixture, plus overrides.

    ``expert_share`` replaces the scenario's expert share (popular and random rescaled)."""
    if scenario not in SCENARIOS:
        raise ValueError(
            f"unknown scenario {scenario!r}; allowed: {', '.join(sorted(SCENARIOS))}"
        )
    e, p, r = SCENARIOS[scenario]
    mixture = LoggingMixture(expert=e, popular=p, random=r)
    if expert_share is not None:
        mixture = with_expert_share(mixture, expert_share)
    fields: dict[str, object] = {"scenario": scenario, "mixture": mixture}
    fields.update(overrides)
    return SimConfig(**fields)  # type: ignore[arg-type]
