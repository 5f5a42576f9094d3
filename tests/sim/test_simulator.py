from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError
from scipy import stats

from drpo_core.evaluation.online import eval_users, score_actions
from drpo_core.schema import simulator_config_from_metadata
from drpo_core.sim import (
    LoggingMixture,
    LogSimulator,
    MixedLoggingAgent,
    SimulationError,
    World,
    scenario_config,
)
from drpo_core.sim.env import RecSimEnv
from tests.contract_oracle import check_table

DAY = dt.date(2026, 3, 1)
SMALL = {"n_items": 400, "n_users": 500, "d": 10}


def test_same_seed_same_logs_other_seed_other_logs() -> None:
    a = LogSimulator(scenario_config("medium", seed=3, **SMALL)).day_table(1, DAY, 2000)
    b = LogSimulator(scenario_config("medium", seed=3, **SMALL)).day_table(1, DAY, 2000)
    c = LogSimulator(scenario_config("medium", seed=4, **SMALL)).day_table(1, DAY, 2000)
    assert a.equals(b)
    assert not np.allclose(a.column("reward").to_numpy(), c.column("reward").to_numpy())


def test_days_differ_through_interest_drift() -> None:
    world = World.build(scenario_config("medium", **SMALL))
    day0, day3 = world.interests(0), world.interests(3)
    cos = np.einsum("nd,nd->n", day0, day3)
    assert 0.5 < cos.mean() < 0.9999
    assert np.allclose(np.linalg.norm(day3, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("scenario", ["medium", "extreme"])
def test_mixture_proportions_within_tolerance(scenario: str) -> None:
    n = 40_000
    table = LogSimulator(scenario_config(scenario, **SMALL)).day_table(0, DAY, n)
    policies = np.asarray(table.column("logging_policy").to_pylist())
    expected = scenario_config(scenario).mixture
    for name, share in zip(("expert", "popular", "random"), expected.as_array(), strict=True):
        observed = (policies == name).mean()
        tolerance = 4 * np.sqrt(share * (1 - share) / n)  # 4 binomial standard errors
        assert abs(observed - share) <= tolerance, (name, observed, share)


def test_propensities_sum_to_one_and_match_empirical_frequencies() -> None:
    cfg = scenario_config("medium", n_items=30, n_clusters=3, n_users=2, d=8)
    world = World.build(cfg)
    agent = MixedLoggingAgent(world)
    probs = agent.propensities(world.interest0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-12)
    n = 200_000
    rng = np.random.default_rng(7)
    users = rng.integers(0, 2, size=n)
    logged = agent.sample(world.interest0, users, rng)
    for u in range(2):
        rows = users == u
        freq = np.bincount(logged.item[rows], minlength=30) / rows.sum()
        se = np.sqrt(probs[u] * (1 - probs[u]) / rows.sum())
        assert np.all(np.abs(freq - probs[u]) <= 5 * se + 1e-4)
        # the logged log-propensity is the exact mixture probability of the shown item
        np.testing.assert_allclose(np.exp(logged.logprob[rows]), probs[u][logged.item[rows]],
                                   rtol=1e-6)


def test_oracle_scores_100_and_random_scores_about_0() -> None:
    world = World.build(scenario_config("medium", n_items=1000, n_users=100))
    users = eval_users(world, n_users=3000, split="test")
    oracle = score_actions(world, users, world.items[users.oracle_item])
    assert oracle.score == pytest.approx(100.0, abs=1e-6)
    rng = np.random.default_rng(0)
    random = score_actions(world, users, world.items[rng.integers(0, 1000, size=3000)])
    assert abs(random.score) < 3.0
    assert oracle.ecpm == pytest.approx(5 * oracle.mean_reward)
    assert random.reward_cvar10 <= random.mean_reward


@pytest.mark.parametrize("d", [10, 128])
def test_dimensions_10_and_128_work(d: int) -> None:
    cfg = scenario_config("extreme", d=d, n_items=300, n_users=200)
    table = LogSimulator(cfg).day_table(0, DAY, 1000)
    assert check_table(table, partition_date=DAY) == []
    assert table.schema.field("action").type.list_size == d
    world = World.build(cfg)
    users = eval_users(world, 100, "validation")
    assert users.states.shape == (100, d)


def test_state_dim_different_from_item_dim() -> None:
    cfg = scenario_config("medium", d=32, d_state=12, n_items=200, n_users=100)
    table = LogSimulator(cfg).day_table(0, DAY, 300)
    assert table.schema.field("state").type.list_size == 12
    assert table.schema.field("action").type.list_size == 32


def test_logged_rewards_are_scaled_by_activity_and_heavy_tailed() -> None:
    sim = LogSimulator(scenario_config("medium"))
    table = sim.day_table(0, DAY, 20_000)
    r = table.column("reward").to_numpy()
    users = np.array([int(u[1:]) for u in table.column("user_id").to_pylist()])
    # R_obs = a_u * clip(R_latent + noise, 0, 1)
    assert r.min() >= 0.0 and np.all(r <= sim.world.activity[users] + 1e-12)
    policies = np.asarray(table.column("logging_policy").to_pylist())
    means = {p: r[policies == p].mean() for p in ("expert", "popular", "random")}
    assert means["expert"] > means["popular"] > means["random"]
    # Zipf-like across rows (issue 16): skew >= 2 and the top decile holds >= half the reward
    assert stats.skew(r) >= 2.0
    assert np.sort(r)[-len(r) // 10 :].sum() / r.sum() >= 0.5
    # every user alike when activity_sigma = 0: the old bounded reward
    flat = LogSimulator(scenario_config("medium", activity_sigma=0.0, **SMALL))
    assert flat.day_table(0, DAY, 2000).column("reward").to_numpy().max() <= 1.0


def test_activity_is_mean_one_and_heavy_tailed() -> None:
    world = World.build(scenario_config("medium", n_users=20_000, **{"n_items": 50, "d": 4}))
    a = world.activity
    assert a.mean() == pytest.approx(1.0, abs=0.05)
    assert np.sort(a)[-2000:].sum() / a.sum() > 0.35  # top 10 % of users
    fresh = world.fresh_activity(5000, "test")
    assert fresh.mean() == pytest.approx(1.0, abs=0.1)
    assert not np.allclose(fresh, world.fresh_activity(5000, "validation"))


def test_user_blind_popularity_and_expert_share_are_parameters() -> None:
    cfg = scenario_config("medium", expert_share=0.03, popular_temperature=None)
    assert cfg.mixture.expert == 0.03
    assert cfg.mixture.popular / cfg.mixture.random == pytest.approx(60 / 30)
    with pytest.raises(ValueError, match="expert_share must be in"):
        scenario_config("medium", expert_share=1.5)
    world = World.build(scenario_config("medium", popular_temperature=None, **SMALL))
    # user-blind: the popular component is the same list for every user
    agent = MixedLoggingAgent(world)
    logits = agent._logits(1, world.interest0[:2])
    np.testing.assert_allclose(logits[0], logits[1])


def test_recent_items_follow_the_softmax_over_the_browsed_items() -> None:
    n = 40_000
    cfg = scenario_config("medium", n_items=30, n_clusters=3, n_users=1, d=8,
                          history_popular_share=0.0, history_len=n, history_browse=12)
    world = World.build(cfg)
    items = world.recent_items(world.interest0, np.random.default_rng(0))[0]
    replay = np.random.default_rng(0)  # the same draws: uniforms, popular flags, browsed items
    replay.random((1, n)), replay.random((1, n))
    browsed = replay.integers(0, 30, size=(1, 12))[0]
    weights = np.exp((world.items[browsed] @ world.interest0[0]) / cfg.history_temperature)
    expected = np.bincount(browsed, weights=weights / weights.sum(), minlength=30)
    freq = np.bincount(items, minlength=30) / n
    se = np.sqrt(expected * (1 - expected) / n)
    assert np.all(np.abs(freq - expected) <= 5 * se + 1e-4)
    assert set(np.flatnonzero(freq)) <= set(browsed)


def test_bad_config_errors_name_the_field() -> None:
    with pytest.raises(ValueError, match="unknown scenario 'noisy'; allowed: extreme, medium"):
        scenario_config("noisy")
    with pytest.raises(ValidationError, match="must sum to 1"):
        LoggingMixture(expert=0.5, popular=0.5, random=0.5)
    with pytest.raises(ValidationError, match="n_items"):
        scenario_config("medium", n_items=0)
    with pytest.raises(ValidationError, match="n_clusters"):
        scenario_config("medium", n_items=5, n_clusters=10)


def test_write_is_atomic_idempotent_and_refuses_foreign_dirs(tmp_path) -> None:
    cfg = scenario_config("medium", **SMALL)
    out = tmp_path / "logs"
    sim = LogSimulator(cfg)
    result = sim.write(out, DAY, days=2, rows_per_day=300, progress=False)
    assert not result.skipped
    parts = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.parquet"))
    assert parts == ["event_date=2026-03-01/part-0.parquet", "event_date=2026-03-02/part-0.parquet"]
    day = pq.read_table(out / "event_date=2026-03-02" / "part-0.parquet")
    assert simulator_config_from_metadata(day.schema)["config"] == json.loads(cfg.to_json())
    assert check_table(day, partition_date=dt.date(2026, 3, 2)) == []
    # the identical simulation is reused, a different one is refused
    assert sim.write(out, DAY, days=2, rows_per_day=300, progress=False).skipped
    with pytest.raises(SimulationError, match="exists with other content"):
        sim.write(out, DAY, days=3, rows_per_day=300, progress=False)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("x")
    with pytest.raises(SimulationError, match="exists with other content"):
        sim.write(foreign, DAY, days=1, rows_per_day=10, progress=False)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_failed_write_leaves_nothing(tmp_path, monkeypatch) -> None:
    sim = LogSimulator(scenario_config("medium", **SMALL))

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(sim, "_day_batches", boom)
    with pytest.raises(RuntimeError):
        sim.write(tmp_path / "logs", DAY, days=1, rows_per_day=10, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_gymnasium_env_is_a_one_step_bandit() -> None:
    env = RecSimEnv(scenario_config("medium", **SMALL), split="validation", n_users=50)
    state, _ = env.reset(seed=1)
    assert state.shape == (10,)
    _, reward, terminated, truncated, info = env.step(env.world.items[0])
    assert terminated and not truncated
    assert 0.0 <= reward <= info["activity"]
    assert 0.0 < info["latent_reward"] <= info["oracle_reward"] + 1e-12
    with pytest.raises(RuntimeError, match="reset"):
        env.step(env.world.items[0])


def test_real_item_embeddings_can_replace_the_mixture(tmp_path) -> None:
    rng = np.random.default_rng(0)
    embeddings = rng.standard_normal((50, 6)) * 3.0
    path = tmp_path / "items.npy"
    np.save(path, embeddings)
    cfg = scenario_config("medium", d=6, n_items=50, n_clusters=4, n_users=40,
                          item_embeddings_path=path)
    world = World.build(cfg)
    expected = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    np.testing.assert_allclose(world.items, expected, rtol=1e-5)
    assert set(world.item_topic) <= set(range(4))
    table = LogSimulator(cfg).day_table(0, DAY, 200)
    assert check_table(table, partition_date=DAY) == []
    np.save(path, embeddings[:, :5])
    with pytest.raises(ValueError, match=r"must have shape \(n_items=50, d=6\)"):
        World.build(cfg)
