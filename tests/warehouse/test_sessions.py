"""Sessions in SQL (issue 11): return-to-go and episode links against a numpy reference, the
quality signals of the SQL filter, and the session columns of every export path."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from drpo_core.objectives.base import DataNeeds
from drpo_core.schema import interaction_schema
from drpo_core.warehouse import open_warehouse
from drpo_core.warehouse.cvar_filter import cvar_filter
from drpo_core.warehouse.export import export_window
from drpo_core.warehouse.sample import draw_training_sample
from drpo_core.warehouse.sessions import (
    block_size,
    build_sessions,
    load_training_logs,
    session_arrays,
)
from tests.warehouse.test_cvar_filter import reference as filter_reference

DAY = dt.date(2026, 3, 1)
GAMMAS = (0.0, 0.5, 0.9, 0.99)


def reference(episode: np.ndarray, step: np.ndarray, event_id: np.ndarray, reward: np.ndarray,
              gamma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(return-to-go, next row index (own index when done), done) by the definition: an
    episode's rows ordered by (step, event_id), G_t = r_t + gamma G_(t+1) by position."""
    n = len(reward)
    rtg, nxt, done = np.zeros(n), np.arange(n), np.ones(n, dtype=np.float32)
    for e in np.unique(episode):
        rows = np.flatnonzero(episode == e)
        order = rows[np.lexsort((event_id[rows], step[rows]))]
        acc = 0.0
        for row in order[::-1]:
            acc = reward[row] + gamma * acc
            rtg[row] = acc
        nxt[order[:-1]], done[order[:-1]] = order[1:], 0.0
    return rtg, nxt, done


def sessions_table(seed: int, n_episodes: int = 120, days: int = 1, n_users: int = 6
                   ) -> pa.Table:
    """Contract rows of random sessions: one-step sessions, ties and gaps in step numbers,
    event ids that do not follow the steps, rows in random order."""
    rng = np.random.default_rng(seed)
    lengths = rng.choice([1, 1, 2, 3, 5, 9], n_episodes)
    n = int(lengths.sum())
    episode = np.repeat([f"ep{i:04d}" for i in range(n_episodes)], lengths)
    step = np.concatenate([np.sort(rng.integers(0, 2 * k, k)) for k in lengths]).astype(np.int32)
    user = np.repeat(rng.integers(0, n_users, n_episodes), lengths)
    order = rng.permutation(n)
    day = [DAY + dt.timedelta(days=int(d)) for d in rng.integers(0, days, n_episodes)]
    dates = np.repeat(np.array(day, dtype="datetime64[D]"), lengths)[order]
    state = rng.normal(size=(n, 2)).astype(np.float32)
    return pa.table({
        "event_id": pa.array([f"ev{i:05d}" for i in rng.permutation(n)]),
        "event_time": pa.array(dates.astype("datetime64[us]"), pa.timestamp("us", tz="UTC")),
        "event_date": pa.array(dates, pa.date32()),
        "user_id": pa.array([f"u{u}" for u in user[order]]),
        "episode_id": pa.array(episode[order]),
        "step": pa.array(step[order], pa.int32()),
        "state": pa.FixedSizeListArray.from_arrays(pa.array(state.reshape(-1)), 2),
        "action": pa.FixedSizeListArray.from_arrays(
            pa.array(rng.normal(size=2 * n).astype(np.float32)), 2),
        "item_id": pa.array(["i"] * n),
        "reward": pa.array(rng.normal(size=n)),
        "behavior_logprob": pa.array(np.full(n, -1.0)),
        "logging_policy": pa.array(["random"] * n),
    }).cast(interaction_schema(2, 2))


def columns(table: pa.Table) -> tuple[np.ndarray, ...]:
    return tuple(table.column(c).to_numpy(zero_copy_only=False)
                 for c in ("episode_id", "step", "event_id", "reward"))


@pytest.fixture
def warehouse(tmp_path):
    with open_warehouse(tmp_path / "wh.duckdb") as wh:
        wh.ensure_schema(2, 2)
        yield wh


def insert(wh, table: pa.Table) -> None:
    """Contract rows straight into interactions (the ingest is tested elsewhere)."""
    wh.con.register("rows_arrow", table)
    try:
        wh.con.execute("INSERT INTO interactions SELECT *, 'test' FROM rows_arrow")
    finally:
        wh.con.unregister("rows_arrow")


def sql_sessions(wh) -> dict[str, tuple[float, str | None, float]]:
    """event_id -> (return_to_go, next event_id (its own when done), done) from
    window_sessions."""
    rows = wh.query("SELECT i.event_id, r.return_to_go, n.event_id, s.done "
                    "FROM window_sessions s JOIN window_returns r USING (row_id) "
                    "JOIN interactions i ON i.rowid = s.row_id "
                    "JOIN interactions n ON n.rowid = s.next_row_id")
    return {e: (g, nxt, d) for e, g, nxt, d in rows}


@pytest.mark.parametrize("seed", [0, 1])
def test_return_to_go_and_links_from_sql_equal_the_numpy_reference(warehouse, seed) -> None:
    table = sessions_table(seed)
    insert(warehouse, table)
    episode, step, event_id, reward = columns(table)
    assert (np.unique(episode, return_counts=True)[1] == 1).any()  # one-step sessions
    for gamma in GAMMAS:
        build_sessions(warehouse, DAY, DAY, gamma)
        got = sql_sessions(warehouse)
        rtg, nxt, done = reference(episode, step, event_id, reward, gamma)
        for i, e in enumerate(event_id):
            g, next_event, d = got[e]
            assert g == pytest.approx(rtg[i], rel=1e-12, abs=1e-12), (gamma, e)
            assert d == done[i]
            assert next_event == event_id[nxt[i]]
        # the Arrow path (Parquet logs) runs the same SQL
        arrow_rtg, arrow_next, arrow_done = session_arrays(table, gamma)
        np.testing.assert_allclose(arrow_rtg, rtg, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(arrow_next, nxt)
        np.testing.assert_array_equal(arrow_done, done)
    # gamma = 0 is the bandit case exactly; a one-step session's return is its reward
    build_sessions(warehouse, DAY, DAY, 0.0)
    bandit = sql_sessions(warehouse)
    assert [bandit[e][0] for e in event_id] == reward.tolist()


def test_ties_and_gaps_discount_by_position_not_by_step_value() -> None:
    # steps 0, 0, 5, 9: the tie is ordered by event_id (b before c), the gaps cost nothing
    table = pa.table({"event_id": ["c", "b", "d", "a"], "episode_id": ["e"] * 4,
                      "step": pa.array([0, 0, 5, 9], pa.int32()),
                      "reward": [1.0, 2.0, 4.0, 8.0]})
    rtg, nxt, done = session_arrays(table, 0.5)
    # order b(2) c(1) d(4) a(8): G_a = 8, G_d = 4 + 4, G_c = 1 + 4, G_b = 2 + 2.5
    np.testing.assert_allclose(rtg, [5.0, 4.5, 8.0, 8.0])
    np.testing.assert_array_equal(nxt, [2, 0, 3, 3])
    np.testing.assert_array_equal(done, [0, 0, 0, 1])


@pytest.mark.parametrize(("gamma", "length"), [(0.5, 3000), (0.95, 20_000)])
def test_return_to_go_is_exact_on_long_sessions(gamma: float, length: int) -> None:
    assert gamma ** (length - 1) == 0.0  # the closed form sum gamma^j r_j / gamma^t breaks here
    rng = np.random.default_rng(3)
    reward = rng.normal(size=length) + (rng.random(length) < 0.01) * 50.0
    table = pa.table({"event_id": [f"e{i:06d}" for i in range(length)],
                      "episode_id": ["long"] * length,
                      "step": pa.array(np.arange(length), pa.int32()), "reward": reward})
    rtg, _, done = session_arrays(table, gamma)
    expected, _, _ = reference(np.array(["long"] * length), np.arange(length),
                               np.arange(length), reward, gamma)
    assert block_size(gamma) < length  # several blocks are joined
    np.testing.assert_allclose(rtg, expected, rtol=0, atol=1e-12 * np.abs(expected).max())
    assert done.sum() == 1 and done[-1] == 1


def test_block_size_keeps_every_weight_a_double_can_hold() -> None:
    for gamma in (1e-300, 1e-60, 1e-20, 0.1, 0.5, 0.9, 0.99, 0.999999):
        b = block_size(gamma)
        assert gamma ** (b - 1) >= 1e-150  # in-block weights are normal doubles
        assert (3 * b + 1) * -np.log10(gamma) > 450  # left-out terms: below 1e-450, zero
    assert block_size(0.0) == 1
    with pytest.raises(ValueError, match=r"gamma must be in \[0, 1\)"):
        block_size(1.0)


# ---- the SQL filter's quality signal ---------------------------------------------------------

def heavy_user_table(seed: int, shift: float = 0.0) -> pa.Table:
    """Two days of users on different reward scales; ``shift`` adds a constant to every reward
    of user u0 (a per-state constant: the user is the state the SQL baseline knows)."""
    table = sessions_table(seed, n_episodes=200, days=2)
    user = table.column("user_id").to_numpy(zero_copy_only=False)
    scale = np.array([float(u[1:]) for u in user])
    reward = table.column("reward").to_numpy() * (1 + scale) + 3.0 * scale
    reward = reward + np.where(user == "u0", shift, 0.0)
    return table.set_column(table.schema.get_field_index("reward"),
                            table.schema.field("reward"), pa.array(reward))


def kept(wh) -> dict[str, float]:
    return dict(wh.query("SELECT i.event_id, f.weight FROM filter_weights f "
                         "JOIN interactions i ON i.rowid = f.row_id"))


@pytest.mark.parametrize("partition_by", ["none", "event_date", "segment"])
def test_advantage_filter_is_invariant_to_a_per_user_constant(warehouse, partition_by) -> None:
    end = DAY + dt.timedelta(days=1)
    results = {}
    for shift in (0.0, 40.0):
        warehouse.con.execute("DELETE FROM interactions")
        insert(warehouse, heavy_user_table(5, shift))
        cvar_filter(warehouse, DAY, end, 0.3, partition_by, n_segments=3, quality="advantage")
        advantage = kept(warehouse)
        cvar_filter(warehouse, DAY, end, 0.3, partition_by, n_segments=3)
        results[shift] = advantage, kept(warehouse)
    (adv0, raw0), (adv1, raw1) = results[0.0], results[40.0]
    assert adv0.keys() == adv1.keys()
    assert adv1 == pytest.approx(adv0)
    assert raw0.keys() != raw1.keys()  # the raw-reward filter follows the shifted user


@pytest.mark.parametrize("gamma", [0.0, 0.9])
def test_advantage_is_the_value_minus_the_users_mean_in_the_partition(warehouse, gamma) -> None:
    """advantage = G - mean of G over the user's rows in the partition; G = r at gamma = 0,
    else the return-to-go (of the episode's rows in the window)."""
    table = heavy_user_table(6)
    insert(warehouse, table)
    cvar_filter(warehouse, DAY, DAY + dt.timedelta(days=1), 0.5, "event_date",
                quality="advantage", gamma=gamma)
    got = dict(warehouse.query("SELECT i.event_id, s.reward FROM filter_signal s "
                               "JOIN interactions i ON i.rowid = s.row_id"))
    frame = table.select(["event_id", "user_id", "event_date"]).to_pandas()
    frame["reward"] = reference(*columns(table), gamma)[0]
    mean = frame.groupby(["user_id", "event_date"])["reward"].transform("mean")
    expected = dict(zip(frame["event_id"], frame["reward"] - mean, strict=True))
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-9)


def test_return_filter_keeps_the_top_kappa_of_the_return_to_go(warehouse) -> None:
    table = sessions_table(7)
    insert(warehouse, table)
    episode, step, event_id, reward = columns(table)
    rtg, _, _ = reference(episode, step, event_id, reward, 0.9)
    report = cvar_filter(warehouse, DAY, DAY, 0.25, quality="return", gamma=0.9)
    nu, w, cvar = filter_reference(rtg, 0.25)
    assert report.partitions[0].nu == pytest.approx(nu)
    assert report.partitions[0].cvar == pytest.approx(cvar)
    got = kept(warehouse)
    expected = {e: wi for e, wi in zip(event_id, w, strict=True) if wi > 0}
    assert got.keys() == expected.keys()
    assert got == pytest.approx(expected)


def test_filter_runs_record_quality_and_gamma_and_old_warehouses_migrate(warehouse) -> None:
    insert(warehouse, sessions_table(8))
    cvar_filter(warehouse, DAY, DAY, 0.5)
    # a warehouse from before issue 11: filter_runs without the two columns
    warehouse.con.execute("ALTER TABLE filter_runs DROP COLUMN quality")
    warehouse.con.execute("ALTER TABLE filter_runs DROP COLUMN gamma")
    report = cvar_filter(warehouse, DAY, DAY, 0.5, quality="return", gamma=0.8)
    assert (report.quality, report.gamma) == ("return", 0.8)
    rows = warehouse.query("SELECT quality, gamma FROM filter_runs ORDER BY created_at")
    assert rows == [("reward", 0.0), ("return", 0.8)]  # the earlier run: its defaults


def test_quality_q_is_refused_below_kappa_one_and_keeps_every_row_at_one(warehouse) -> None:
    table = sessions_table(9)
    insert(warehouse, table)
    with pytest.raises(ValueError, match=r"^quality q needs a learned critic.*kappa=0.5 < 1"):
        cvar_filter(warehouse, DAY, DAY, 0.5, quality="q")
    with pytest.raises(ValueError, match="quality must be one of reward, return, advantage, q"):
        cvar_filter(warehouse, DAY, DAY, 0.5, quality="value")
    report = cvar_filter(warehouse, DAY, DAY, 1.0, quality="q")
    assert report.rows_kept == table.num_rows and set(kept(warehouse).values()) == {1.0}
    assert warehouse.query("SELECT DISTINCT quality FROM filter_runs") == [("q",)]


# ---- export paths ----------------------------------------------------------------------------

def by_state(state: torch.Tensor) -> list[tuple[float, float]]:
    return [tuple(s) for s in state.tolist()]


def expected_rows(table: pa.Table, gamma: float) -> dict[tuple[float, float], tuple]:
    """state -> (return-to-go, next state, done) of every row (states are distinct)."""
    episode, step, event_id, reward = columns(table)
    rtg, nxt, done = reference(episode, step, event_id, reward, gamma)
    state = np.stack(table.column("state").to_numpy(zero_copy_only=False)).astype(np.float32)
    return {tuple(torch.from_numpy(state[i]).tolist()): (rtg[i], tuple(state[nxt[i]]), done[i])
            for i in range(len(rtg))}


def assert_session_rows(data, expected: dict) -> None:
    assert data.next_state is not None and data.done is not None
    for key, ret, nxt, done in zip(by_state(data.state), data.reward.tolist(),
                                   by_state(data.next_state), data.done.tolist(), strict=True):
        want = expected[key]
        assert ret == pytest.approx(want[0], rel=1e-6, abs=1e-6)
        assert nxt == pytest.approx(want[1]) and done == want[2]


NEEDS = DataNeeds(return_gamma=0.9, transitions=True)


def test_export_window_carries_return_next_state_and_done(warehouse) -> None:
    table = sessions_table(10)
    insert(warehouse, table)
    expected = expected_rows(table, 0.9)
    data = export_window(warehouse, DAY, DAY, filtered=False, needs=NEEDS)
    assert data.n_rows == table.num_rows and data.return_gamma == 0.9
    assert_session_rows(data, expected)
    # filtered by return: a kept row's next state is its episode's next row, kept or not
    cvar_filter(warehouse, DAY, DAY, 0.2, quality="return", gamma=0.9)
    kept_data = export_window(warehouse, DAY, DAY, needs=NEEDS)
    assert kept_data.n_rows < table.num_rows
    assert_session_rows(kept_data, expected)
    plain = export_window(warehouse, DAY, DAY, filtered=False)  # default: as before
    assert plain.next_state is None and plain.return_gamma is None
    assert sorted(plain.reward.tolist()) == pytest.approx(
        sorted(table.column("reward").to_numpy().astype(np.float32).tolist()))


def test_out_of_core_draw_carries_the_session_columns(warehouse) -> None:
    table = sessions_table(11)
    insert(warehouse, table)
    expected = expected_rows(table, 0.9)
    sample = draw_training_sample(warehouse, DAY, DAY, steps=4, batch_size=64, seed=0,
                                  filtered=False, needs=NEEDS)
    assert sample.return_gamma == 0.9 and sample.done is not None
    assert_session_rows(sample, expected)
    moved = sample.to("cpu")
    assert torch.equal(moved.next_state, sample.next_state) and moved.return_gamma == 0.9
    # a dataset-level top kappa ranks the return-to-go, as the in-memory trainer does
    cut = filter_reference(np.array([v[0] for v in expected.values()]), 0.3)[0]
    top = draw_training_sample(warehouse, DAY, DAY, steps=4, batch_size=64, seed=0,
                               filtered=False, dataset_kappa=0.3,
                               needs=DataNeeds(return_gamma=0.9))
    assert top.next_state is None
    assert float(top.reward.min()) >= np.float32(cut) - 1e-6


def test_two_ranks_draw_the_return_to_go_of_the_global_batch(warehouse) -> None:
    insert(warehouse, sessions_table(12))
    one = draw_training_sample(warehouse, DAY, DAY, steps=3, batch_size=8, seed=4,
                               filtered=False, needs=NEEDS)
    part = draw_training_sample(warehouse, DAY, DAY, steps=3, batch_size=8, seed=4,
                                filtered=False, needs=NEEDS, rank=1, world_size=2)
    assert torch.equal(part.reward_all, one.reward_all)
    assert torch.equal(part.next_state, one.next_state.view(3, 2, 4, 2)[:, 1].reshape(-1, 2))


def test_parquet_logs_get_the_same_session_columns(tmp_path) -> None:
    table = sessions_table(13)
    folder = tmp_path / "logs" / f"event_date={DAY.isoformat()}"
    folder.mkdir(parents=True)
    pq.write_table(table, folder / "part-0.parquet")
    data = load_training_logs(tmp_path / "logs", needs=NEEDS)
    assert data.n_rows == table.num_rows and data.return_gamma == 0.9
    assert_session_rows(data, expected_rows(table, 0.9))
    links_only = load_training_logs(tmp_path / "logs", needs=DataNeeds(transitions=True))
    torch.testing.assert_close(links_only.reward, torch.from_numpy(
        table.column("reward").to_numpy().astype(np.float32)))
    assert links_only.return_gamma is None and links_only.done is not None
    plain = load_training_logs(tmp_path / "logs")
    assert plain.next_state is None and plain.fingerprint() != links_only.fingerprint()


def test_simulated_sessions_export_alike_from_the_warehouse_and_from_parquet(tmp_path) -> None:
    from drpo_core.sim import LogSimulator, scenario_config
    from drpo_core.warehouse.ingest import ingest_partition

    logs = tmp_path / "logs"
    LogSimulator(scenario_config("medium", d=6, n_items=100, n_users=50,
                                 sessions="sequential")).write(
        logs, DAY, days=1, rows_per_day=300, progress=False)
    table = pq.read_table(logs / f"event_date={DAY.isoformat()}" / "part-0.parquet")
    episode, step, event_id, reward = columns(table)
    assert len(np.unique(episode)) < table.num_rows  # multi-step sessions
    with open_warehouse(tmp_path / "wh.duckdb") as wh:
        ingest_partition(wh, logs, DAY)
        stored = export_window(wh, DAY, DAY, filtered=False, needs=NEEDS)
    parquet = load_training_logs(logs, needs=NEEDS)  # file order = (event_date, event_id)
    order = np.argsort(event_id, kind="stable")
    rtg, nxt, done = reference(episode, step, event_id, reward, 0.9)
    torch.testing.assert_close(stored.reward, torch.from_numpy(rtg[order].astype(np.float32)))
    torch.testing.assert_close(stored.done, torch.from_numpy(done[order]))
    assert stored.done.sum() == len(np.unique(episode))
    state = np.stack(table.column("state").to_numpy(zero_copy_only=False)).astype(np.float32)
    torch.testing.assert_close(stored.next_state, torch.from_numpy(state[nxt[order]]))
    for name in ("state", "reward", "next_state", "done"):
        torch.testing.assert_close(getattr(parquet, name)[torch.from_numpy(order)],
                                   getattr(stored, name))
