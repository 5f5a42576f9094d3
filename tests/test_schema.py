"""The log contract: its Arrow schema, and the numpy oracle of its row rules
(tests/contract_oracle.py)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from drpo_core.schema import (
    COLUMNS,
    ContractError,
    dims_from_metadata,
    interaction_schema,
    vector_type,
)
from drpo_core.sim import LogSimulator, scenario_config
from tests.contract_oracle import check_table, conform

DAY = dt.date(2026, 1, 1)


@pytest.fixture(scope="module")
def table() -> pa.Table:
    sim = LogSimulator(scenario_config("medium", d=10, n_items=200, n_users=300))
    return sim.day_table(0, DAY, 500)


def test_schema_round_trip_through_parquet(table: pa.Table, tmp_path) -> None:
    path = tmp_path / "day.parquet"
    pq.write_table(table, path)
    back = pq.read_table(path)
    assert back.schema.equals(table.schema, check_metadata=True)
    assert back.equals(table)
    assert dims_from_metadata(back.schema) == (10, 10)
    assert check_table(back, partition_date=DAY) == []


def test_schema_fixed_size_lists() -> None:
    s = interaction_schema(16, 8)
    assert s.names == list(COLUMNS)
    assert s.field("state").type == vector_type(16)
    assert s.field("action").type.list_size == 8
    with pytest.raises(ValueError, match="positive"):
        interaction_schema(0, 8)


def test_plain_variable_length_lists_are_accepted(table: pa.Table) -> None:
    """A producer writing list<float> of one length (no project metadata) is accepted."""
    plain = table.replace_schema_metadata(None)
    for name in ("state", "action"):
        idx = plain.schema.get_field_index(name)
        plain = plain.set_column(idx, name, plain.column(name).cast(pa.list_(pa.float32())))
    assert check_table(plain) == []
    fixed = conform(plain)
    assert fixed.schema.field("state").type == vector_type(10)
    assert dims_from_metadata(fixed.schema) == (10, 10)


def _with(table: pa.Table, name: str, values: list) -> pa.Table:
    idx = table.schema.get_field_index(name)
    field = table.schema.field(name).with_nullable(True)
    return table.set_column(idx, field, pa.array(values, type=field.type))


def test_row_level_violations_name_row_column_and_rule(table: pa.Table) -> None:
    t = table.slice(0, 6)
    reward = t.column("reward").to_pylist()
    reward[1] = float("nan")
    users = t.column("user_id").to_pylist()
    users[2] = None
    logp = t.column("behavior_logprob").to_pylist()
    logp[3] = 0.5
    ids = t.column("event_id").to_pylist()
    ids[5] = ids[4]
    state = t.column("state").to_pylist()
    state[0][0] = float("inf")
    t = _with(t, "reward", reward)
    t = _with(t, "user_id", users)
    t = _with(t, "behavior_logprob", logp)
    t = _with(t, "event_id", ids)
    t = _with(t, "state", state)
    found = {(v.rule, v.column, v.row) for v in check_table(t)}
    assert found == {
        ("finite", "reward", 1),
        ("not_null", "user_id", 2),
        ("logprob_nonpositive", "behavior_logprob", 3),
        ("unique", "event_id", 4),
        ("unique", "event_id", 5),
        ("finite", "state", 0),
    }


def test_wrong_dimension_and_time_outside_day(table: pa.Table) -> None:
    t = table.slice(0, 3)
    state = t.column("state").to_pylist()
    state[1] = state[1][:-1]
    plain = _with(t.replace_schema_metadata(None), "state", [None, None, None])
    plain = plain.set_column(plain.schema.get_field_index("state"), "state",
                             pa.array(state, pa.list_(pa.float32())))
    times = t.column("event_time").to_pylist()
    times[2] = times[2] + dt.timedelta(days=1)
    plain = _with(plain, "event_time", times)
    found = {(v.rule, v.column, v.row) for v in check_table(plain, d_state=10)}
    assert found == {("dimension", "state", 1), ("event_time_in_day", "event_time", 2)}


def test_missing_and_extra_columns_are_table_level(table: pa.Table) -> None:
    t = table.drop_columns(["reward"]).append_column("junk", pa.array(np.zeros(len(table))))
    found = {(v.rule, v.column, v.row) for v in check_table(t)}
    assert found == {("column_missing", "reward", None), ("column_unexpected", "junk", None)}
    with pytest.raises(ContractError, match="reward"):
        conform(t)


def test_logging_policy_allow_list(table: pa.Table) -> None:
    found = check_table(table, allowed_logging_policies=("expert", "popular"))
    rows = {v.row for v in found}
    expected = set(np.flatnonzero(
        np.asarray(table.column("logging_policy").to_pylist()) == "random").tolist())
    assert rows == expected and all(v.rule == "logging_policy_allowed" for v in found)
