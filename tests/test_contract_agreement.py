"""The contract's two implementations agree: the SQL rules ingest applies
(sql/ingest_rules.sql) quarantine exactly the rows the numpy oracle (tests/contract_oracle.py)
flags, under the same rule and column."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq

from drpo_core.schema import SIMULATOR_LOGGING_POLICIES
from drpo_core.sim import LogSimulator, scenario_config
from drpo_core.warehouse import open_warehouse
from drpo_core.warehouse.ingest import ingest_partition
from tests.contract_oracle import check_table

DAY = dt.date(2026, 3, 1)


def set_values(table: pa.Table, column: str, rows: dict[int, object]) -> pa.Table:
    values = table.column(column).to_pylist()
    for row, value in rows.items():
        values[row] = value
    index = table.schema.get_field_index(column)
    field = table.schema.field(index).with_nullable(True)  # a producer may write nulls
    return table.set_column(index, field, pa.array(values, field.type))


def test_sql_rules_and_the_oracle_flag_the_same_rows(tmp_path) -> None:
    sim = LogSimulator(scenario_config("medium", d=4, n_items=80, n_users=60))
    table = sim.day_table(0, DAY, 400)
    state = table.column("state").to_pylist()
    state[7] = [float("inf"), *state[7][1:]]
    table = set_values(table, "state", {7: state[7]})
    table = set_values(table, "reward", {11: float("nan"), 12: float("-inf")})
    table = set_values(table, "behavior_logprob", {20: 0.5})
    table = set_values(table, "step", {30: -1})
    table = set_values(table, "logging_policy", {40: "someone-else"})
    table = set_values(table, "event_date", {50: DAY + dt.timedelta(days=1)})
    table = set_values(table, "user_id", {60: None})
    index = table.schema.get_field_index("event_time")
    ns = table.column("event_time").cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64())
    ns = ns.to_pylist()
    ns[70] += 1  # a sub-microsecond time
    table = table.set_column(index, pa.field("event_time", pa.timestamp("ns", tz="UTC")),
                             pa.array(ns, pa.int64()).cast(pa.timestamp("ns", tz="UTC")))
    folder = tmp_path / "logs" / f"event_date={DAY.isoformat()}"
    folder.mkdir(parents=True)
    pq.write_table(table, folder / "part-0.parquet")

    expected: dict[int, set[str]] = {}  # the oracle names every rule a row breaks
    for v in check_table(table, partition_date=DAY,
                         allowed_logging_policies=SIMULATOR_LOGGING_POLICIES):
        expected.setdefault(v.row, set()).add(f"{v.rule}:{v.column}")
    with open_warehouse(tmp_path / "wh.duckdb") as wh:
        report = ingest_partition(wh, tmp_path / "logs", DAY)
        found = dict(wh.query("SELECT source_row, rule || ':' || column_name FROM quarantine"))
    assert sorted(expected) == sorted(found) == [7, 11, 12, 20, 30, 40, 50, 60, 70]
    for row, rule in found.items():  # SQL records the first rule a row breaks
        assert rule in expected[row], (row, rule, expected[row])
    assert report.rows_kept + report.rows_quarantined == report.rows_in == 400
