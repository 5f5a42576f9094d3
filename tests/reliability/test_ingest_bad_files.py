"""Malformed logs through the real ingest (issue 13, "produced from the tests"): one bad value,
type, file or folder per case, on a real DuckDB file.

Every case asserts the issue's guarantees that apply to it:
* a row that breaks a rule is quarantined under that rule and column, the rest of the day kept,
  and rows read = rows kept + rows quarantined;
* every kept row holds exactly the file's values (no rounding, no cast that changes a value);
* a file or folder that cannot be read as the contract is refused with one line naming it, and
  the warehouse (already holding another day) is left exactly as before.
A gap found here is marked ``xfail(strict=True)`` naming what the fix must do, its ``guards``
only the guarantee the gap breaks, until it is fixed (the six of issue 13 are).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from drpo_core.schema import COLUMNS
from drpo_core.sim import LogSimulator, scenario_config
from drpo_core.warehouse import WarehouseError, open_warehouse
from drpo_core.warehouse.ingest import IngestError, ingest_partition

DAY = dt.date(2026, 2, 1)
OTHER = DAY + dt.timedelta(days=1)
ROWS = 60
D = 4
ROW = 5  # the row a row-level case breaks
DRPO = str(Path(sys.executable).parent / "drpo")

Edit = Callable[[pa.Table], pa.Table]


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("clean") / "logs"
    LogSimulator(scenario_config("medium", d=D, n_items=50, n_users=30)).write(
        out, DAY, days=2, rows_per_day=ROWS, progress=False)
    return out


@pytest.fixture
def logs(clean: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(clean, tmp_path / "logs"))


def day_folder(logs: Path) -> Path:
    return logs / f"event_date={DAY.isoformat()}"


def day_file(logs: Path) -> Path:
    return day_folder(logs) / "part-0.parquet"


def rewrite(logs: Path, edit: Edit, **options) -> pa.Table:
    """Rewrite the day's file through ``edit``; the written table."""
    table = edit(pq.read_table(day_file(logs)))
    pq.write_table(table, day_file(logs), **options)
    return table


def with_values(column: str, values: dict[int, object], type_: pa.DataType | None = None
                ) -> Edit:
    """An edit that sets ``column[row] = value`` (the column keeps its type unless given)."""
    def edit(table: pa.Table) -> pa.Table:
        data = table.column(column).to_pylist()
        for row, value in values.items():
            data[row] = value
        kind = type_ or table.schema.field(column).type
        return replace(table, column, pa.array(data, kind))
    return edit


def with_element(column: str, index: int, value: float | None, kind=None) -> Edit:
    def edit(table: pa.Table) -> pa.Table:
        data = table.column(column).to_pylist()
        data[ROW][index] = value
        return replace(table, column, pa.array(data, kind or pa.list_(pa.float32())))
    return edit


def replace(table: pa.Table, column: str, values: pa.Array | pa.ChunkedArray) -> pa.Table:
    field = pa.field(column, values.type)
    return table.set_column(table.schema.get_field_index(column), field, values)


def plain(row: tuple) -> tuple:
    """A row with its vectors as lists (DuckDB returns fixed-size arrays as tuples)."""
    return tuple(list(v) if isinstance(v, list | tuple) else v for v in row)


def rows_by_id(table: pa.Table) -> dict[str, tuple]:
    """The file's rows by event_id (the first row of a repeated id), each as the tuple of its
    contract columns."""
    columns = [table.column(c).to_pylist() for c in COLUMNS]
    rows: dict[str, tuple] = {}
    for row in zip(*columns, strict=True):
        rows.setdefault(row[0], plain(row))
    return rows


def stored_rows(wh) -> dict[str, tuple]:
    columns = ", ".join(COLUMNS)
    return {row[0]: plain(row) for row in wh.query(f"SELECT {columns} FROM interactions")}


def counts(wh) -> tuple:
    return tuple(wh.query(f"SELECT count(*) FROM {t}")[0][0]
                 for t in ("interactions", "quarantine", "ingest_runs", "event_index"))


def assert_accounted(wh, report) -> None:
    """No row lost: every row read is kept or quarantined, and the tables say so."""
    assert report.rows_in == report.rows_kept + report.rows_quarantined
    assert wh.query("SELECT count(*) FROM interactions WHERE event_date = $d",
                    {"d": DAY})[0][0] == report.rows_kept
    assert wh.query("SELECT count(*) FROM quarantine WHERE event_date = $d",
                    {"d": DAY})[0][0] == report.rows_quarantined


def assert_kept_unchanged(wh, table: pa.Table, expected: Callable[[tuple], tuple] | None = None
                          ) -> None:
    """Every kept row holds the file's values (``expected`` maps a file row to its stored form
    where the contract's type differs from the file's, e.g. float64 to float32)."""
    written = rows_by_id(table)
    stored = stored_rows(wh)
    assert stored
    for event_id, row in stored.items():
        want = written[event_id]
        assert row == (expected(want) if expected else want), event_id


@contextmanager
def ingested(tmp_path: Path, logs: Path, **options) -> Iterator[tuple]:
    """A fresh warehouse and the report of ingesting the day into it."""
    with open_warehouse(tmp_path / "wh.duckdb") as wh:
        yield wh, ingest_partition(wh, logs, DAY, **options)


# ---------------------------------------------------------------- row rules: quarantined

NAN, INF = float("nan"), float("inf")
NEXT_DAY = dt.datetime(2026, 2, 2, 0, 0, tzinfo=dt.UTC)
NEW_YORK = dt.timezone(dt.timedelta(hours=-5))
ROW_CASES = {
    # id: (edit of row ROW, rule:column it breaks, what was tried)
    "null-event_id": (with_values("event_id", {ROW: None}), "not_null:event_id",
                      "a null event_id"),
    "null-event_time": (with_values("event_time", {ROW: None}), "not_null:event_time",
                        "a null event_time"),
    "null-event_date": (with_values("event_date", {ROW: None}), "not_null:event_date",
                        "a null event_date"),
    "null-episode_id": (with_values("episode_id", {ROW: None}), "not_null:episode_id",
                        "a null episode_id"),
    "null-step": (with_values("step", {ROW: None}), "not_null:step", "a null step"),
    "null-state": (with_values("state", {ROW: None}, pa.list_(pa.float32())),
                   "not_null:state", "a null state vector"),
    "null-action": (with_values("action", {ROW: None}, pa.list_(pa.float32())),
                    "not_null:action", "a null action vector"),
    "null-item_id": (with_values("item_id", {ROW: None}), "not_null:item_id",
                     "a null item_id"),
    "null-reward": (with_values("reward", {ROW: None}), "not_null:reward", "a null reward"),
    "null-logging_policy": (with_values("logging_policy", {ROW: None}),
                            "not_null:logging_policy", "a null logging_policy"),
    "null-logprob": (with_values("behavior_logprob", {ROW: None}),
                     "not_null:behavior_logprob",
                     "a null behavior_logprob where the logs do not declare it nullable"),
    "reward-plus-inf": (with_values("reward", {ROW: INF}), "finite:reward", "a reward of +inf"),
    "reward-minus-inf": (with_values("reward", {ROW: -INF}), "finite:reward",
                         "a reward of -inf"),
    "logprob-nan": (with_values("behavior_logprob", {ROW: NAN}), "finite:behavior_logprob",
                    "a behavior_logprob of NaN"),
    "logprob-minus-inf": (with_values("behavior_logprob", {ROW: -INF}),
                          "finite:behavior_logprob",
                          "a behavior_logprob of -inf (probability 0: the row was never "
                          "possible)"),
    "logprob-tiny-positive": (with_values("behavior_logprob", {ROW: 1e-300}),
                              "logprob_nonpositive:behavior_logprob",
                              "a positive behavior_logprob of 1e-300 (a probability above 1)"),
    "state-nan-element": (with_element("state", 0, NAN), "finite:state",
                          "a NaN element in state"),
    "state-minus-inf-element": (with_element("state", D - 1, -INF), "finite:state",
                                "a -inf last element in state"),
    "action-inf-element": (with_element("action", 1, INF), "finite:action",
                           "a +inf element in action"),
    "action-null-element": (with_element("action", 2, None), "finite:action",
                            "a null element inside action"),
    "state-empty": (with_values("state", {ROW: []}, pa.list_(pa.float32())), "dimension:state",
                    "an empty state list in a variable-length column"),
    "action-too-long": (with_values("action", {ROW: [0.1] * (D + 1)}, pa.list_(pa.float32())),
                        "dimension:action", "an action one element longer than the others"),
    "action-double-beyond-float32": (with_element("action", 0, -1e39, pa.list_(pa.float64())),
                                     "float32_range:action",
                                     "a float64 action element of -1e39 (beyond float32)"),
    "step-negative": (with_values("step", {ROW: -1}), "step_nonnegative:step", "a step of -1"),
    "step-int64-beyond-int32": (with_values("step", {ROW: 2**40}, pa.int64()), "integer:step",
                                "an int64 step of 2^40 (beyond INTEGER)"),
    "time-previous-day": (with_values("event_time", {ROW: dt.datetime(2026, 1, 31, 23, 59, 59,
                                                                      999999, tzinfo=dt.UTC)}),
                          "event_time_in_day:event_time",
                          "an event_time one microsecond before the day"),
    "time-next-midnight": (with_values("event_time", {ROW: NEXT_DAY}),
                           "event_time_in_day:event_time",
                           "an event_time at the next day's 00:00 UTC"),
    "time-other-zone": (with_values("event_time",
                                    {ROW: dt.datetime(2026, 2, 1, 22, tzinfo=NEW_YORK)},
                                    pa.timestamp("us", tz="America/New_York")),
                        "event_time_in_day:event_time",
                        "an event_time of 22:00 New York on the day (03:00 UTC the next day)"),
    "policy-unknown": (with_values("logging_policy", {ROW: "bandit-v2"}),
                       "logging_policy_allowed:logging_policy",
                       "a logging_policy outside the allowed list"),
    "policy-other-case": (with_values("logging_policy", {ROW: "EXPERT"}),
                          "logging_policy_allowed:logging_policy",
                          "a logging_policy that differs from an allowed one only in case"),
}


@pytest.mark.parametrize(("name", "tried"), [(n, c[2]) for n, c in ROW_CASES.items()],
                         ids=list(ROW_CASES))
@pytest.mark.reliability(
    kind="bad input",
    case="one row with {tried}",
    outcome="that row quarantined under its rule and column with its source file and row; "
            "every other row kept with the file's values",
    guards=("rows", "values"),
)
def test_a_row_that_breaks_one_rule_is_quarantined(tmp_path, logs, name, tried) -> None:
    edit, broken, _ = ROW_CASES[name]
    table = rewrite(logs, edit)
    with ingested(tmp_path, logs) as (wh, report):
        assert report.quarantined_by_rule == {broken: 1}
        assert_accounted(wh, report)
        rule, column = broken.split(":")
        assert wh.query("SELECT source_file, source_row, rule, column_name FROM quarantine") == [
            (str(day_file(logs)), ROW, rule, column)]
        others = table.filter(pa.array([i != ROW for i in range(ROWS)]))
        assert_kept_unchanged(wh, others)


@pytest.mark.reliability(
    kind="bad input",
    case="duplicate event_ids inside one file, and across two files of one day",
    outcome="the repeats quarantined under unique:event_id; the first of each kept unchanged",
    guards=("rows", "values"),
)
def test_duplicate_event_ids_within_a_day(tmp_path, logs) -> None:
    ids = pq.read_table(day_file(logs)).column("event_id").to_pylist()
    table = rewrite(logs, with_values("event_id", {ROW: ids[0]}))
    pq.write_table(table.slice(10, 3), day_folder(logs) / "part-1.parquet")  # 3 repeats
    with ingested(tmp_path, logs) as (wh, report):
        assert report.rows_in == ROWS + 3
        assert report.quarantined_by_rule == {"unique:event_id": 4}
        assert_accounted(wh, report)
        stored = stored_rows(wh)
        assert len(stored) == ROWS - 1 == report.rows_kept
        assert_kept_unchanged(wh, table)


@pytest.mark.reliability(
    kind="bad input",
    case="an event_date column of timestamps at 13:00 on the day (not a DATE)",
    outcome="every row quarantined under partition_date:event_date (no cast to the date)",
    guards=("rows", "values"),
)
def test_an_event_date_with_a_time_of_day_is_not_truncated(tmp_path, logs) -> None:
    noon = dt.datetime(2026, 2, 1, 13)
    rewrite(logs, lambda t: replace(t, "event_date", pa.array([noon] * ROWS, pa.timestamp("s"))))
    with ingested(tmp_path, logs) as (wh, report):
        assert report.quarantined_by_rule == {"partition_date:event_date": ROWS}
        assert_accounted(wh, report)


# ---------------------------------------------------------------- accepted unchanged

def naive_as_utc(row: tuple) -> tuple:
    return (row[0], row[1].replace(tzinfo=dt.UTC), *row[2:])


ACCEPTED = {
    # id: (edit, what was tried, how a file row maps to its stored row; None: as written)
    "logprob-zero": (with_values("behavior_logprob", {ROW: 0.0}),
                     "a behavior_logprob of exactly 0 (probability 1)", None),
    "reward-extremes": (with_values("reward", {0: -0.0, 1: 5e-324, 2: 1.7e308, 3: -1.7e308}),
                        "rewards of -0.0, the smallest subnormal and +-1.7e308", None),
    "time-last-microsecond": (with_values("event_time", {ROW: dt.datetime(
        2026, 2, 1, 23, 59, 59, 999999, tzinfo=dt.UTC)}),
        "an event_time at the day's last microsecond", None),
    "time-naive": (lambda t: replace(t, "event_time", t.column("event_time").cast(
        pa.timestamp("us"))), "event_time as a TIMESTAMP without a zone (read as UTC)",
        naive_as_utc),
    "time-milliseconds": (lambda t: replace(t, "event_time", t.column("event_time").cast(
        pa.timestamp("ms", tz="UTC"), safe=False)),
        "event_time in milliseconds (a coarser unit)", None),
    "reward-float32": (lambda t: replace(t, "reward", t.column("reward").cast(pa.float32())),
                       "reward written as float32", None),
    "reward-int64": (lambda t: replace(t, "reward", pa.array(np.arange(ROWS) - 7)),
                     "reward written as int64", None),
    "step-int64": (lambda t: replace(t, "step", t.column("step").cast(pa.int64())),
                   "step written as int64 within INTEGER's range", None),
    "state-float64-exact": (lambda t: replace(t, "state", pa.array(
        t.column("state").to_pylist(), pa.list_(pa.float64()))),
        "state written as float64 holding float32 values", None),
    "vectors-variable-length": (lambda t: replace(replace(
        t, "state", pa.array(t.column("state").to_pylist(), pa.list_(pa.float32()))),
        "action", pa.array(t.column("action").to_pylist(), pa.list_(pa.float32())))
        .replace_schema_metadata({}),
        "variable-length vectors of one length and no dims in the metadata (a plain writer)",
        None),
    "vectors-large-list": (lambda t: replace(t, "state", pa.array(
        t.column("state").to_pylist(), pa.large_list(pa.float32()))),
        "state as a large_list (64-bit offsets)", None),
    "columns-reordered": (lambda t: t.select(list(reversed(t.column_names))),
                          "the contract's columns in reverse order", None),
    "dictionary-strings": (lambda t: replace(t, "logging_policy",
                                             t.column("logging_policy").dictionary_encode()),
                           "dictionary-encoded logging_policy", None),
    "empty-strings": (lambda t: with_values("user_id", {ROW: ""})(
        with_values("episode_id", {ROW: ""})(t)),
        "empty strings in user_id and episode_id (the contract forbids nulls only)", None),
    "sql-text-in-values": (with_values("user_id", {ROW: "x'); DROP TABLE interactions; --",
                                                   ROW + 1: "ü\u200b\"\\n"}),
                           "SQL text, quotes, a zero-width space and a backslash in user_id",
                           None),
}


@pytest.mark.parametrize(("name", "tried"), [(n, c[1]) for n, c in ACCEPTED.items()],
                         ids=list(ACCEPTED))
@pytest.mark.reliability(
    kind="bad input",
    case="{tried}",
    outcome="accepted: every row kept holding the file's own values",
    guards=("rows", "values"),
)
def test_an_unusual_but_valid_file_is_stored_unchanged(tmp_path, logs, name, tried) -> None:
    edit, _, expected = ACCEPTED[name]
    table = rewrite(logs, edit)
    with ingested(tmp_path, logs) as (wh, report):
        assert (report.rows_kept, report.rows_quarantined) == (ROWS, 0)
        assert_accounted(wh, report)
        assert_kept_unchanged(wh, table, expected)


@pytest.mark.reliability(
    kind="bad input",
    case="many small row groups (7 rows each) and a zero-row file beside the data",
    outcome="accepted: every row kept with the file's values",
    guards=("rows", "values"),
)
def test_small_row_groups_and_an_empty_file_beside_the_data(tmp_path, logs) -> None:
    table = rewrite(logs, lambda t: t, row_group_size=7)
    pq.write_table(table.slice(0, 0), day_folder(logs) / "part-1.parquet")
    with ingested(tmp_path, logs) as (wh, report):
        assert len(report.files) == 2 and report.rows_kept == ROWS
        assert_accounted(wh, report)
        assert_kept_unchanged(wh, table)


@pytest.mark.reliability(
    kind="bad input",
    case="a null behavior_logprob in logs declared with nullable propensities",
    outcome="accepted: the null stored as null, every other value unchanged",
    guards=("rows", "values"),
)
def test_a_null_logprob_is_kept_when_declared_nullable(tmp_path, logs) -> None:
    table = rewrite(logs, with_values("behavior_logprob", {ROW: None}))
    with ingested(tmp_path, logs, logprob_nullable=True) as (wh, report):
        assert (report.rows_kept, report.rows_quarantined) == (ROWS, 0)
        assert_kept_unchanged(wh, table)


@pytest.mark.reliability(
    kind="bad input",
    case="a file written without column statistics (no footer range to check against)",
    outcome="accepted with the file's values (the corrupt-page check needs statistics: see "
            "known limits)",
    guards=("rows", "values"),
)
def test_a_file_without_statistics_is_read_as_written(tmp_path, logs) -> None:
    table = rewrite(logs, lambda t: t, write_statistics=False)
    with ingested(tmp_path, logs) as (wh, report):
        assert report.rows_kept == ROWS
        assert_kept_unchanged(wh, table)


# ---------------------------------------------------------------- files and folders: refused

def text_file(logs: Path, data: bytes) -> None:
    day_file(logs).write_bytes(data)


def cut(logs: Path, keep: Callable[[int], int]) -> None:
    data = day_file(logs).read_bytes()
    day_file(logs).write_bytes(data[: keep(len(data))])


def rewrite_with(edit: Edit) -> Callable[[Path], None]:
    return lambda logs: rewrite(logs, edit) and None


def second_file(edit: Edit) -> Callable[[Path], None]:
    def write(logs: Path) -> None:
        table = pq.read_table(day_file(logs))
        table = replace(table, "event_id", pa.array([f"{x}-b" for x in
                                                     table.column("event_id").to_pylist()]))
        pq.write_table(edit(table), day_folder(logs) / "part-1.parquet")
    return write


def folder_is_a_file(logs: Path) -> None:
    shutil.rmtree(day_folder(logs))
    day_folder(logs).write_text("not a folder\n")


def wider_state(table: pa.Table) -> pa.Table:
    state = pa.array([[*v, 0.0] for v in table.column("state").to_pylist()],
                     pa.list_(pa.float32(), D + 1))
    return replace(table, "state", state).replace_schema_metadata(
        {b"drpo.d_state": str(D + 1).encode(), b"drpo.d_action": str(D).encode()})


def other_simulator(table: pa.Table) -> pa.Table:
    meta = dict(table.schema.metadata)
    meta[b"drpo.simulator"] = b'{"seed": 99}'
    return table.replace_schema_metadata(meta)


REFUSED = {
    # id: (make the day bad, text the one-line error must hold, what was tried)
    "truncated-half": (lambda logs: cut(logs, lambda n: n // 2), "not a readable Parquet file",
                       "a file cut in half (an interrupted upload)"),
    "truncated-footer": (lambda logs: cut(logs, lambda n: n - 3), "not a readable Parquet file",
                         "a file missing its last 3 bytes (the footer's magic)"),
    "zero-bytes": (lambda logs: text_file(logs, b""), "not a readable Parquet file",
                   "a zero-byte file"),
    "csv-named-parquet": (lambda logs: text_file(logs, b"event_id,reward\n1,2\n"),
                          "not a readable Parquet file", "a CSV file named .parquet"),
    "notes-beside-data": (lambda logs: (day_folder(logs) / "README.txt").write_text("notes"),
                          "README.txt: not a readable Parquet file",
                          "a text file beside the day's Parquet file"),
    "zero-rows": (rewrite_with(lambda t: t.slice(0, 0)), "has no rows",
                  "a day whose only file has zero rows"),
    "missing-column": (rewrite_with(lambda t: t.drop_columns(["behavior_logprob"])),
                       "missing column(s) ['behavior_logprob']",
                       "a file without the behavior_logprob column"),
    "extra-column": (rewrite_with(lambda t: t.append_column("country", pa.array(["de"] * ROWS))),
                     "unexpected column(s) ['country']", "a file with an extra column"),
    "renamed-column": (rewrite_with(lambda t: t.rename_columns(
        ["Reward" if c == "reward" else c for c in t.column_names])),
        "missing column(s) ['reward']", "a column named Reward instead of reward"),
    "state-as-text": (rewrite_with(lambda t: replace(t, "state", pa.array(
        [str(v) for v in t.column("state").to_pylist()]))),
        "column 'state' must be a list of floats", "state written as text"),
    "state-as-struct": (rewrite_with(lambda t: replace(t, "state", pa.array(
        [{"x": v[0]} for v in t.column("state").to_pylist()]))),
        "column 'state' must be a list of floats", "state written as a struct"),
    "time-as-text-garbage": (rewrite_with(lambda t: replace(t, "event_time", pa.array(
        ["yesterday"] + [v.isoformat() for v in t.column("event_time").to_pylist()[1:]]))),
        "column 'event_time' must be a timestamp",
        "event_time as text with one unparseable value"),
    "time-as-integer": (rewrite_with(lambda t: replace(t, "event_time", t.column(
        "event_time").cast(pa.int64()))), "column 'event_time' must be a timestamp",
        "event_time as int64 microseconds (no timestamp type)"),
    "simulator-configs-differ": (second_file(other_simulator), "different simulator configs",
                                 "two files of one day carrying different simulator configs"),
    "day-folder-is-a-file": (folder_is_a_file, "no partition folder",
                             "the day's folder is a file"),
    "day-folder-missing": (lambda logs: shutil.rmtree(day_folder(logs)), "no partition folder",
                           "no folder for the day"),
    "day-folder-empty": (lambda logs: day_file(logs).unlink(), "is empty",
                         "an empty day folder"),
}


@pytest.mark.parametrize(("name", "tried"), [(n, c[2]) for n, c in REFUSED.items()],
                         ids=list(REFUSED))
@pytest.mark.reliability(
    kind="bad input",
    case="{tried}",
    outcome="the day refused with one line naming the file or folder and what was expected; "
            "the warehouse (holding another day) unchanged",
    guards=("rows", "one-line"),
)
def test_a_bad_file_or_folder_is_refused_and_nothing_is_written(tmp_path, logs, name, tried
                                                                ) -> None:
    make_bad, expected, _ = REFUSED[name]
    with open_warehouse(tmp_path / "wh.duckdb") as wh:
        ingest_partition(wh, logs, OTHER)
        before = counts(wh)
        make_bad(logs)
        with pytest.raises(IngestError) as caught:
            ingest_partition(wh, logs, DAY)
        message = str(caught.value)
        assert "\n" not in message and expected in message, message
        assert str(day_folder(logs)) in message or f"{DAY}" in message, message
        assert counts(wh) == before


@pytest.mark.reliability(
    kind="bad input",
    case="two files of one day with state of 4 and 5 elements",
    outcome="the day refused with one line naming the files and their dimensions; the "
            "warehouse unchanged",
    guards=("one-line",),
)
def test_files_of_one_day_with_different_dimensions(tmp_path, logs) -> None:
    with open_warehouse(tmp_path / "wh.duckdb") as wh:
        ingest_partition(wh, logs, OTHER)
        before = counts(wh)
        second_file(wider_state)(logs)
        with pytest.raises(IngestError) as caught:
            ingest_partition(wh, logs, DAY)
        assert counts(wh) == before
        message = str(caught.value)
        assert "different dimensions" in message and "part-1.parquet" in message, message


@pytest.mark.reliability(
    kind="bad input",
    case="a day whose vectors are wider (d_state 5) than the warehouse's (4)",
    outcome="refused with one line naming both dimensions; the warehouse unchanged",
    guards=("rows", "one-line"),
)
def test_a_day_with_other_dimensions_than_the_warehouse_is_refused(tmp_path, logs) -> None:
    with open_warehouse(tmp_path / "wh.duckdb") as wh:
        ingest_partition(wh, logs, OTHER)
        before = counts(wh)
        rewrite(logs, wider_state)
        with pytest.raises(WarehouseError) as caught:
            ingest_partition(wh, logs, DAY)
        message = str(caught.value)
        assert "\n" not in message and "d_state=4" in message and "d_state=5" in message
        assert counts(wh) == before


WRONG_TYPE = {
    # id: (edit, the column whose type is wrong)
    "reward-as-text": (lambda t: replace(t, "reward", pa.array(
        [str(v) for v in t.column("reward").to_pylist()])), "reward"),
    "reward-as-bool": (lambda t: replace(t, "reward", pa.array([True] * ROWS)), "reward"),
    "step-as-text": (lambda t: replace(t, "step", pa.array(
        [str(v) for v in t.column("step").to_pylist()])), "step"),
    "state-of-strings": (lambda t: replace(t, "state", pa.array(
        [[str(x) for x in v] for v in t.column("state").to_pylist()])), "state"),
    "state-nested-lists": (lambda t: replace(t, "state", pa.array(
        [[v] for v in t.column("state").to_pylist()])), "state"),
}


@pytest.mark.parametrize("name", list(WRONG_TYPE))
@pytest.mark.reliability(
    kind="bad input",
    case="a column of the wrong type: {name}",
    outcome="the day refused with one line naming the file, the column and the expected type; "
            "the warehouse unchanged",
    guards=("one-line",),
)
def test_a_column_of_the_wrong_type_is_refused_naming_the_column(tmp_path, logs, name) -> None:
    edit, column = WRONG_TYPE[name]
    with open_warehouse(tmp_path / "wh.duckdb") as wh:
        ingest_partition(wh, logs, OTHER)
        before = counts(wh)
        rewrite(logs, edit)
        with pytest.raises(IngestError) as caught:
            ingest_partition(wh, logs, DAY)
        assert counts(wh) == before
        message = str(caught.value)
        assert "\n" not in message and str(day_file(logs)) in message
        assert f"column {column!r}" in message or f"column {column} " in message, message


# ---------------------------------------------------------------- gaps found here (closed)

@pytest.mark.reliability(
    kind="bad input",
    case="a file with two reward columns holding different values",
    outcome="refused with one line naming the repeated column",
    guards=("values",),
)
def test_a_repeated_column_is_refused(tmp_path, logs) -> None:
    rewrite(logs, lambda t: t.append_column("reward", pa.array(np.full(ROWS, 99.0))))
    with open_warehouse(tmp_path / "wh.duckdb") as wh, pytest.raises(IngestError, match="reward"):
        ingest_partition(wh, logs, DAY)


@pytest.mark.reliability(
    kind="bad input",
    case="an event_time in nanoseconds with a sub-microsecond part",
    outcome="the row quarantined or the day refused; never stored rounded",
    guards=("values",),
)
def test_a_nanosecond_event_time_is_not_rounded(tmp_path, logs) -> None:
    def edit(t: pa.Table) -> pa.Table:
        ns = t.column("event_time").cast(pa.timestamp("ns", tz="UTC")).to_numpy().astype(np.int64)
        ns[ROW] += 7
        return replace(t, "event_time", pa.array(ns, pa.timestamp("ns", tz="UTC")))

    table = rewrite(logs, edit)
    with ingested(tmp_path, logs) as (wh, _):
        event_id = table.column("event_id")[ROW].as_py()
        stored = wh.query("SELECT epoch_ns(event_time) FROM interactions WHERE event_id = $id",
                          {"id": event_id})
        written = table.column("event_time").cast(pa.int64())[ROW].as_py()
        assert stored in ([], [(written,)])


@pytest.mark.reliability(
    kind="bad input",
    case="a file whose metadata declares d_state 7 while its vectors hold 4",
    outcome="refused with one line naming the file; the warehouse's dims not set from it",
    guards=("one-line",),
)
def test_declared_dimensions_that_disagree_with_the_vectors(tmp_path, logs) -> None:
    rewrite(logs, lambda t: t.replace_schema_metadata({b"drpo.d_state": b"7",
                                                       b"drpo.d_action": str(D).encode()}))
    with open_warehouse(tmp_path / "wh.duckdb") as wh:
        with pytest.raises(IngestError, match=re.escape(str(day_file(logs)))):
            ingest_partition(wh, logs, DAY)
        assert wh.dims() is None


@pytest.mark.reliability(
    kind="bad input",
    case="a file whose metadata declares d_state 'abc'",
    outcome="refused with one line naming the file and the key drpo.d_state",
    guards=("one-line",),
)
def test_unreadable_declared_dimensions(tmp_path, logs) -> None:
    rewrite(logs, lambda t: t.replace_schema_metadata({b"drpo.d_state": b"abc",
                                                       b"drpo.d_action": str(D).encode()}))
    with open_warehouse(tmp_path / "wh.duckdb") as wh:
        with pytest.raises(IngestError, match=r"drpo\.d_state") as caught:
            ingest_partition(wh, logs, DAY)
        assert str(day_file(logs)) in str(caught.value)


# ---------------------------------------------------------------- the same through `drpo ingest`

def drpo_ingest(home: Path, logs: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRPO_", "MLFLOW"))}
    env |= {"DRPO_HOME": str(home), "PREFECT_HOME": str(home / "prefect")}
    env.pop("PREFECT_API_URL", None)
    return subprocess.run([DRPO, "ingest", "--logs", str(logs), "--date", DAY.isoformat(),
                           "--db", str(home / "wh.duckdb")], capture_output=True, text=True,
                          env=env, timeout=300, cwd=home.parent)


CLI_CASES = {
    "truncated-file": lambda logs: cut(logs, lambda n: n // 2),
    "wrong-type-reward": rewrite_with(WRONG_TYPE["reward-as-text"][0]),
    "unreadable-dims": rewrite_with(lambda t: t.replace_schema_metadata(
        {b"drpo.d_state": b"abc", b"drpo.d_action": str(D).encode()})),
}


@pytest.mark.parametrize("name", list(CLI_CASES))
@pytest.mark.reliability(
    kind="bad input",
    case="`drpo ingest` of a day with a {name}",
    outcome="exit non-zero with one `error:` line and no traceback; no interactions stored",
    guards=("cli", "rows"),
)
def test_drpo_ingest_of_a_bad_day_prints_one_line(tmp_path, logs, name) -> None:
    home = tmp_path / "home"
    home.mkdir()
    CLI_CASES[name](logs)
    result = drpo_ingest(home, logs)
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    if (home / "wh.duckdb").exists():
        with open_warehouse(home / "wh.duckdb", read_only=True) as wh:
            assert wh.dims() is None or wh.query("SELECT count(*) FROM interactions")[0][0] == 0
