"""The SQL filter equals a numpy reference of Theorem 4.1 (kept set, nu, weights, CVaR)."""

from __future__ import annotations

import datetime as dt

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from drpo_core.warehouse import open_warehouse
from drpo_core.warehouse.cvar_filter import cvar_filter

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
