"""The simulator's sequential mode (issue 11): sessions with a time budget, interest drift toward
what the user watches, watch-time rewards; the bandit mode unchanged."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json

import numpy as np
import pyarrow as pa
import pytest

from drpo_core.sim import LogSimulator, MixedLoggingAgent, World, scenario_config
from drpo_core.sim.config import SESSION_FIELDS
from drpo_core.sim.sessions import Sessions, max_steps, play_logged_sessions
from drpo_core.sim.world import rng_for
from tests.contract_oracle import check_table

DAY = dt.date(2026, 3, 1)
SMALL = {"n_items": 300, "n_users": 400, "d": 8}


def digest(table: pa.Table) -> str:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table.combine_chunks())
    return hashlib.sha256(sink.getvalue()).hexdigest()


def test_bandit_mode_is_byte_identical_to_before_the_sequential_mode() -> None:
    """Digests of two small bandit days taken before the sequential mode existed."""
    cfg = scenario_config("medium", seed=5, d_state=6, **SMALL)
    assert cfg.fingerprint() == "657f7a9b8a"
    assert not set(SESSION_FIELDS) & set(json.loads(cfg.to_json()))
    table = LogSimulator(cfg).day_table(2, DAY, 1500)
    assert digest(table) == "750ac556915b73fddc73b687aadee632a0188e2c40c4fb7f859989f22b5f149f"
    other = scenario_config("extreme", seed=1, n_items=200, n_users=300, d=10,
                            state_model="interest")
    assert digest(LogSimulator(other).day_table(0, DAY, 700)) == (
        "de63205dc2ef0ac1c4197939f24959467a2ed1607342f157b6751a9374ebad77")
    # a sequential config records its session fields (and so has its own fingerprint)
    seq = cfg.model_copy(update={"sessions": "sequential"})
    assert set(SESSION_FIELDS) <= set(json.loads(seq.to_json()))
    assert seq.fingerprint() != cfg.fingerprint()


@pytest.fixture(scope="module")
def day() -> tuple[World, pa.Table]:
    sim = LogSimulator(scenario_config("medium", seed=2, sessions="sequential", **SMALL))
    return sim.world, sim.day_table(0, DAY, 3000)


def test_logs_hold_whole_sessions_with_consistent_episode_ids_and_steps(day) -> None:
    world, table = day
    assert table.num_rows == 3000 and check_table(table) == []
    episode = np.asarray(table.column("episode_id").to_pylist())
    step = table.column("step").to_numpy()
    user = np.asarray(table.column("user_id").to_pylist())
    times = table.column("event_time").to_numpy()
    assert np.all(np.diff(times.astype(np.int64)) >= 0)  # the day in time order
    ids, counts = np.unique(episode, return_counts=True)
    assert counts.mean() > 5 and counts.max() <= max_steps(world)
    for e in ids:
        rows = np.flatnonzero(episode == e)
        # steps 0..T-1, in time order, one user per episode
        np.testing.assert_array_equal(step[rows], np.arange(len(rows)))
        assert len(set(user[rows])) == 1
    assert len(set(table.column("event_id").to_pylist())) == 3000


def test_rewards_are_watch_times_of_the_shown_items(day) -> None:
    world, table = day
    reward = table.column("reward").to_numpy()
    item = np.asarray([int(i[1:]) for i in table.column("item_id").to_pylist()])
    user = np.asarray([int(u[1:]) for u in table.column("user_id").to_pylist()])
    watch = reward / world.activity[user]
    assert np.all(reward >= 0.0)
    assert np.all(watch <= world.item_lengths()[item] + 1e-9)  # at most the whole item
    assert (watch == 0.0).mean() < 0.5  # clip(R + noise, 0, 1) at 0 for some rows only


def test_sessions_end_when_the_time_budget_runs_out() -> None:
    world = World.build(scenario_config("medium", seed=3, sessions="sequential", **SMALL))
    c = world.config
    rows = play_logged_sessions(world, MixedLoggingAgent(world), 0, 2000,
                                rng_for(c.seed, 7, 99))
    watch = rows.reward / world.activity[rows.user]
    spent = rows.elapsed + c.item_cost + watch  # minutes used after the step
    last_session = rows.session.max()  # the day's last session may be cut at n_rows
    for s in range(last_session):
        mine = rows.session == s
        np.testing.assert_allclose(rows.elapsed[mine][1:], spent[mine][:-1])
        assert np.all(spent[mine][:-1] < c.session_budget)  # running while budget is left
        assert spent[mine][-1] >= c.session_budget  # the last step uses the budget up
    assert rows.elapsed[0] == 0.0


def test_interest_drifts_toward_watched_items_and_the_state_shows_the_session() -> None:
    world = World.build(scenario_config("medium", seed=4, sessions="sequential", **SMALL))
    users = np.arange(50)
    start = Sessions.start(world, world.interest0[users], world.activity[users],
                           np.random.default_rng(0))
    sessions = start.copy()
    rows = np.arange(50)
    item = np.full(50, 7)
    before = sessions.interests @ world.items[7]
    clean_before = sessions.clean_states(rows)
    watch = sessions.advance(rows, item, np.full(50, 0.8))
    after = sessions.interests @ world.items[7]
    assert np.all(after > before)  # measurable move toward the watched item
    np.testing.assert_allclose(np.linalg.norm(sessions.interests, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(watch, 0.8 * world.item_lengths()[7])
    np.testing.assert_allclose(sessions.time_left, world.config.session_budget - 0.5 - watch)
    assert np.all(sessions.recent[:, -1] == 7)  # the session's item is a recent item
    np.testing.assert_array_equal(sessions.recent[:, :-1], start.recent[:, 1:])
    assert not np.allclose(sessions.clean_states(rows), clean_before)
    # session_drift = 0: the interest stays where it was
    still = World.build(world.config.model_copy(update={"session_drift": 0.0}))
    frozen = Sessions.start(still, still.interest0[users], still.activity[users],
                            np.random.default_rng(0))
    u0 = frozen.interests.copy()
    frozen.advance(rows, item, np.full(50, 0.8))
    np.testing.assert_allclose(frozen.interests, u0, atol=1e-6)
    assert np.array_equal(start.interests, world.interest0[users])  # the world is not moved


def test_gymnasium_env_plays_a_session_until_the_budget_runs_out() -> None:
    from drpo_core.sim.env import RecSimEnv

    env = RecSimEnv(scenario_config("medium", sessions="sequential", **SMALL), n_users=20)
    state, _ = env.reset(seed=3)
    steps, total, done = 0, 0.0, False
    while not done:
        assert state.shape == (8,) and np.isfinite(state).all()
        state, reward, done, truncated, info = env.step(env.world.items[steps % 5])
        steps, total = steps + 1, total + reward
        assert not truncated and reward >= 0.0 and info["step"] == steps
        assert reward == pytest.approx(info["activity"] * info["watch_minutes"])
        assert done == (info["minutes_left"] <= 0)
    assert 1 < steps <= max_steps(env.world) and total > 0
    with pytest.raises(RuntimeError, match="reset"):
        env.step(env.world.items[0])
