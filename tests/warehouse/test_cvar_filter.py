"""The SQL filter equals a numpy reference of Theorem 4.1 (kept set, nu, weights, CVaR)."""

from __future__ import annotations

import datetime as dt

import hypothesis.strategies as st
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings

from drpo_core.warehouse import open_warehouse
from drpo_core.warehouse.cvar_filter import FilterSteps, cvar_filter, record_filter_run

DAY = dt.date(2026, 1, 1)


def reference(reward: np.ndarray, kappa: float) -> tuple[float, np.ndarray, float]:
    """LP solution of max E[w R] s.t. 0 <= w <= 1/kappa, E[w] = 1 (App. F.1), with ties."""
    n = len(reward)
    order = np.sort(reward)[::-1]
    k = kappa * n
    nu = order[int(np.ceil(k - 1e-9)) - 1]  # the reward at descending rank ceil(kappa n)
    above, at = reward > nu, reward == nu
    frac = (k - above.sum()) / at.sum()
    frac = min(1.0, max(0.0, frac))
    w = np.where(above, 1 / kappa, np.where(at, frac / kappa, 0.0))
    cvar = float((w * reward).mean())
    return float(nu), w, cvar


@pytest.fixture
def warehouse(tmp_path):
    with open_warehouse(tmp_path / "wh.duckdb") as wh:
        wh.ensure_schema(2, 2)
        yield wh


def load(wh, reward: np.ndarray, dates: list[dt.date] | None = None) -> None:
    wh.con.execute("DELETE FROM interactions")
    n = len(reward)
    dates = dates or [DAY] * n
    wh.con.executemany(
        "INSERT INTO interactions VALUES (?, ?, ?, 'u', 'e', 0, [0, 0], [0, 0], 'i', ?, -1, "
        "'random', 'test')",
        [(f"e{i}", dt.datetime.combine(dates[i], dt.time(), dt.UTC), dates[i], float(r))
         for i, r in enumerate(reward)],
    )


def sql_weights(wh) -> dict[str, float]:
    return dict(wh.query("SELECT i.event_id, f.weight FROM filter_weights f "
                         "JOIN interactions i ON i.rowid = f.row_id"))


rewards = st.one_of(
    st.lists(st.floats(-5, 5, allow_nan=False, width=32), min_size=1, max_size=60),
    st.lists(st.sampled_from([0.0, 0.1, 0.5, 1.0]), min_size=1, max_size=60),  # heavy ties
    st.lists(st.floats(0.0, 1e3, allow_nan=False), min_size=1, max_size=60).map(
        lambda xs: [x**3 / 1e6 for x in xs]),  # heavy tail
)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(reward=rewards, kappa=st.sampled_from([0.05, 0.1, 0.25, 1 / 3, 0.5, 0.9, 1.0]))
def test_sql_filter_equals_numpy_reference(warehouse, reward: list[float], kappa: float) -> None:
    r = np.asarray(reward, dtype=np.float64)
    load(warehouse, r)
    report = cvar_filter(warehouse, DAY, DAY, kappa)
    nu, w, cvar = reference(r, kappa)
    part = report.partitions[0]
    assert part.nu == pytest.approx(nu)
    assert part.kept_share == pytest.approx(kappa, abs=1e-9)
    assert part.cvar == pytest.approx(cvar, rel=1e-9, abs=1e-12)
    got = sql_weights(warehouse)
    expected = {f"e{i}": wi for i, wi in enumerate(w) if wi > 0}
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value)
    assert sum(got.values()) / len(r) == pytest.approx(1.0)  # E_P[w] = 1: Q* is a distribution


def test_kappa_one_keeps_every_row_with_weight_one(warehouse) -> None:
    r = np.array([0.3, 0.1, 0.1, 0.9, 0.0])
    load(warehouse, r)
    report = cvar_filter(warehouse, DAY, DAY, 1.0)
    assert report.rows_kept == 5
    assert set(sql_weights(warehouse).values()) == {1.0}
    assert report.partitions[0].cvar == pytest.approx(r.mean())


def test_partition_by_event_date_filters_each_day(warehouse) -> None:
    days = [DAY, DAY + dt.timedelta(days=1)]
    r = np.array([1.0, 2.0, 3.0, 4.0, 10.0, 20.0, 30.0, 40.0])
    load(warehouse, r, [days[0]] * 4 + [days[1]] * 4)
    report = cvar_filter(warehouse, days[0], days[1], 0.5, partition_by="event_date")
    assert [p.nu for p in report.partitions] == [3.0, 30.0]
    assert set(sql_weights(warehouse)) == {"e2", "e3", "e6", "e7"}
    stored = warehouse.query("SELECT partition_value, nu, kept_share FROM filter_runs "
                             "ORDER BY partition_value")
    assert stored == [("2026-01-01", 3.0, 0.5), ("2026-01-02", 30.0, 0.5)]


@pytest.mark.parametrize("kappa", [0.0, -0.1, 1.5, float("nan")])
def test_kappa_outside_unit_interval_is_refused(warehouse, kappa: float) -> None:
    with pytest.raises(ValueError, match=r"kappa must be in \(0, 1\]"):
        cvar_filter(warehouse, DAY, DAY, kappa)


def test_partition_key_comes_from_an_allow_list(warehouse) -> None:
    with pytest.raises(ValueError, match="partition_by must be one of none, event_date, segment"):
        cvar_filter(warehouse, DAY, DAY, 0.5, partition_by="user_id; DROP TABLE interactions")


def bulk_load(wh, reward_by_day: dict[dt.date, np.ndarray]) -> None:
    """Many rows at once (Arrow), event ids d<day>-<index>, in the given order."""
    ids, dates, rewards = [], [], []
    for day, reward in reward_by_day.items():
        ids += [f"d{day.day}-{i}" for i in range(len(reward))]
        dates += [day] * len(reward)
        rewards.append(reward)
    wh.con.register("bulk_rows", pa.table({
        "event_id": ids, "event_date": pa.array(dates, pa.date32()),
        "reward": np.concatenate(rewards)}))
    wh.con.execute("DELETE FROM interactions")
    wh.con.execute(
        "INSERT INTO interactions SELECT event_id, CAST(event_date AS TIMESTAMPTZ), event_date, "
        "'u', 'e', 0, [0, 0], [0, 0], 'i', reward, -1, 'random', 'test' FROM bulk_rows")
    wh.con.unregister("bulk_rows")


def assert_day_matches_reference(wh, report, day: dt.date, reward: np.ndarray,
                                 kappa: float) -> None:
    nu, w, cvar = reference(reward, kappa)
    part = next(p for p in report.partitions if p.partition_value == str(day))
    assert part.nu == nu
    assert part.rows_kept == int((w > 0).sum())
    assert part.kept_share == pytest.approx(kappa, abs=1e-9)
    assert part.cvar == pytest.approx(cvar, rel=1e-9)
    got = wh.con.execute(
        "SELECT CAST(split_part(i.event_id, '-', 2) AS INTEGER) AS k, f.weight "
        "FROM filter_weights f JOIN interactions i ON i.rowid = f.row_id "
        "WHERE i.event_date = $day ORDER BY k", {"day": day}).fetchnumpy()
    kept = np.flatnonzero(w > 0)
    np.testing.assert_array_equal(got["k"], kept)
    np.testing.assert_allclose(got["weight"], w[kept], rtol=1e-12)


@pytest.fixture(scope="module")
def big_days() -> dict[dt.date, np.ndarray]:
    """Two days of 300k heavy-tailed rewards with many ties (rounded Pareto), shuffled."""
    rng = np.random.default_rng(7)
    return {DAY + dt.timedelta(days=k): np.round(rng.pareto(1.5, 300_000), 2) for k in (0, 1)}


@pytest.mark.parametrize("kappa", [0.1, 0.37])
def test_sampled_bracket_finds_the_exact_cut(warehouse, big_days, kappa: float) -> None:
    """Large partitions take the fast path (the cut inside the sampled bracket) and the result is
    still the reference, ties included."""
    # The 2 % system sample draws whole 2048-row vectors. With several threads, which vectors
    # the seed picks depends on scheduling, and a 300k-row day (146 vectors) then gets none
    # about 5 % of the time: the exact second pass settles it (the next test). One thread makes
    # the load and the sample repeatable, so that this test checks the fast path every time.
    warehouse.con.execute("SET threads = 1")
    bulk_load(warehouse, big_days)
    days = list(big_days)
    steps = FilterSteps(warehouse, days[0], days[-1], kappa, "event_date")
    steps.bracket()
    bracket = warehouse.query("SELECT lower_bound, upper_bound FROM filter_cuts")
    assert all(np.isfinite(lo) and np.isfinite(hi) and lo < hi for lo, hi in bracket)
    assert steps.settle() == 1
    steps.weigh()
    report = record_filter_run(steps)
    for day, reward in big_days.items():
        assert_day_matches_reference(warehouse, report, day, reward, kappa)


def test_a_bracket_open_below_bins_only_up_to_its_upper_bound(warehouse, big_days) -> None:
    """kappa near 1: the lower sample quantile would sit below level 0, so the bracket is open
    below (-inf, upper]; every row up to the upper bound falls in one bin, and the cut is still
    the reference's, found in one pass."""
    warehouse.con.execute("SET threads = 1")  # a repeatable sample, as above
    bulk_load(warehouse, big_days)
    days = list(big_days)
    steps = FilterSteps(warehouse, days[0], days[-1], 0.999, "event_date")
    steps.bracket()
    bracket = warehouse.query("SELECT lower_bound, upper_bound FROM filter_cuts")
    assert all(lo == -np.inf and np.isfinite(hi) for lo, hi in bracket)
    assert steps.settle() == 1
    steps.weigh()
    report = record_filter_run(steps)
    for day, reward in big_days.items():
        assert_day_matches_reference(warehouse, report, day, reward, 0.999)


def test_brackets_the_sample_missed_are_settled_exactly(warehouse, big_days) -> None:
    """A bracket above every reward (no row inside) and one below the cut (too many rows above
    it) both fall back to the whole partition: two passes, the same exact result."""
    bulk_load(warehouse, big_days)
    days = list(big_days)
    steps = FilterSteps(warehouse, days[0], days[-1], 0.1, "event_date")
    steps.bracket()
    warehouse.con.execute("UPDATE filter_cuts SET lower_bound = 1e9, upper_bound = 2e9 "
                          "WHERE partition_value = $day", {"day": days[0]})
    warehouse.con.execute("UPDATE filter_cuts SET lower_bound = -1, upper_bound = 0 "
                          "WHERE partition_value = $day", {"day": days[1]})
    assert steps.settle() == 2
    steps.weigh()
    report = record_filter_run(steps)
    for day, reward in big_days.items():
        assert_day_matches_reference(warehouse, report, day, reward, 0.1)
