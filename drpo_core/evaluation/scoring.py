"""One scoring of a policy for the pipeline: the held-out sample, the score the gate compares,
and the per-unit values that make two policies' scores a paired comparison.

The score is the simulator's online reward on fresh test users when the logs come from the
simulator (the same users for every policy scored with the same ``OnlineSetting``), and the
doubly robust off-policy estimate on the held-out day otherwise (the same rows for every
policy scored on the same ``HeldoutSample``). The tail is the lower CVaR_10% of the same units.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from drpo_core.evaluation.off_policy import estimate
from drpo_core.evaluation.online import EvalUsers, eval_users, score_actions
from drpo_core.inference import NumpyPolicy
from drpo_core.sim import SimConfig, World


def _vectors(column: pa.ChunkedArray) -> np.ndarray:
    return np.stack(column.to_numpy(zero_copy_only=False)).astype(np.float32)


@dataclass(frozen=True)
class HeldoutSample:
    """Held-out logged rows with their items as indices into the catalogue."""

    states: np.ndarray  # (n, d_state) float32
    items: np.ndarray  # (n,) indices into catalogue
    rewards: np.ndarray  # (n,)
    logprob: np.ndarray  # (n,) behaviour log-probabilities
    catalogue: np.ndarray  # (n_items, d_action) float32
    item_ids: list[str] = field(repr=False)

    @classmethod
    def from_tables(cls, rows: pa.Table, catalogue: pa.Table) -> HeldoutSample:
        item_ids = catalogue.column("item_id").to_pylist()
        index = {item: k for k, item in enumerate(item_ids)}
        missing = [i for i in rows.column("item_id").to_pylist() if i not in index]
        if missing:
            raise ValueError(f"held-out item {missing[0]!r} is not in the catalogue")
        return cls(states=_vectors(rows.column("state")),
                   items=np.array([index[i] for i in rows.column("item_id").to_pylist()]),
                   rewards=rows.column("reward").to_numpy(),
                   logprob=rows.column("behavior_logprob").to_numpy(),
                   catalogue=_vectors(catalogue.column("action")), item_ids=item_ids)


@dataclass(frozen=True)
class OnlineSetting:
    """A simulated world and the fixed users every policy is scored on."""

    world: World
    users: EvalUsers

    @classmethod
    def from_metadata(cls, meta: dict[str, Any], n_users: int) -> OnlineSetting:
        """The world a simulated log was drawn from (its recorded config) and ``n_users`` fresh
        test users on the log's drift day."""
        world = World.build(SimConfig.model_validate(meta["config"]))
        return cls(world, eval_users(world, n_users, "test", int(meta.get("day_index", 0))))


@dataclass(frozen=True)
class PolicyScore:
    basis: Literal["online", "off_policy"]
    score: float
    tail: float
    per_unit: np.ndarray = field(repr=False)  # per user (online) or per held-out row (DR)
    off_policy: dict[str, float] = field(default_factory=dict)
    online: dict[str, float] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"basis": self.basis, "score": self.score, "tail": self.tail,
                "off_policy": self.off_policy, "online": self.online}


def score_policy(act: NumpyPolicy, heldout: HeldoutSample, online: OnlineSetting | None,
                 seed: int = 0) -> PolicyScore:
    """Off-policy estimate on ``heldout``, online score when a world is given."""
    ope = estimate(heldout.states, heldout.items, heldout.rewards, heldout.logprob,
                   act(heldout.states), heldout.catalogue, seed=seed)
    if online is None:
        return PolicyScore("off_policy", ope.dr, ope.dr_cvar10, ope.terms, ope.as_dict())
    result = score_actions(online.world, online.users, act(online.users.states))
    per_user = np.asarray(result.per_user_reward)
    return PolicyScore("online", result.mean_reward, result.reward_cvar10, per_user,
                       ope.as_dict(), result.as_dict())
