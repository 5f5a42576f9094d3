"""Ingest: idempotent per date, bad rows to quarantine, bad files abort with nothing written."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from drpo_core.sim import LogSimulator, scenario_config
from drpo_core.warehouse import DatabaseBusyError, open_warehouse
from drpo_core.warehouse.ingest import IngestError, ingest_partition

DAY = dt.date(2026, 2, 1)
CFG = scenario_config("medium", d=4, n_items=100, n_users=50)


@pytest.fixture
def logs(tmp_path) -> Path:
    LogSimulator(CFG).write(tmp_path / "logs", DAY, days=2, rows_per_day=200, progress=False)
    return tmp_path / "logs"


def day_file(logs: Path, day: dt.date = DAY) -> Path:
    return logs / f"event_date={day.isoformat()}" / "part-0.parquet"


def rewrite(path: Path, edit) -> None:
    table = pq.read_table(path)
    pq.write_table(edit(table), path)


def set_value(table: pa.Table, column: str, row: int, value) -> pa.Table:
    values = table.column(column).to_pylist()
    values[row] = value
    idx = table.schema.get_field_index(column)
    field = table.schema.field(column).with_nullable(True)
    return table.set_column(idx, field, pa.array(values, type=field.type))


def snapshot(wh) -> tuple:
    tables = ("interactions", "quarantine", "ingest_runs")
    return tuple(wh.query(f"SELECT count(*) FROM {t}")[0][0] for t in tables)


def test_ingest_is_idempotent_and_skips_unchanged(tmp_path, logs) -> None:
    with open_warehouse(tmp_path / "wh.duckdb") as wh:
        first = ingest_partition(wh, logs, DAY)
        assert (first.rows_in, first.rows_kept, first.rows_quarantined) == (200, 200, 0)
        assert ingest_partition(wh, logs, DAY).status == "skipped_unchanged"
        again = ingest_partition(wh, logs, DAY, force=True)
        assert again.status == "ingested"
        ingest_partition(wh, logs, DAY + dt.timedelta(days=1))
        counts = wh.query("SELECT event_date, count(*), count(DISTINCT event_id) "
                          "FROM interactions GROUP BY ALL ORDER BY ALL")
        assert counts == [(DAY, 200, 200), (DAY + dt.timedelta(days=1), 200, 200)]


@pytest.mark.parametrize("null_element", [False, True],
                         ids=["footer-rules-out-null-elements", "null-element"])
def test_bad_rows_go_to_quarantine_with_their_rule(tmp_path, logs, null_element) -> None:
    """Each rule, first broken first. A null state element also switches the finiteness
    check from the dot product with zeros to the sum (the footer no longer rules nulls out):
    both must reject the same rows."""
    path = day_file(logs)

    def edit(t: pa.Table) -> pa.Table:
        t = set_value(t, "reward", 0, float("nan"))
        t = set_value(t, "user_id", 1, None)
        t = set_value(t, "behavior_logprob", 2, 0.5)
        t = set_value(t, "logging_policy", 3, "mystery")
        t = set_value(t, "event_time", 4, dt.datetime(2026, 2, 2, 1, tzinfo=dt.UTC))
        t = set_value(t, "event_id", 6, t.column("event_id")[5].as_py())
        state = t.column("state").to_pylist()
        state[7] = state[7][:-1]
        state[8][0] = float("inf")
        if null_element:
            state[9][1] = None
        action = t.column("action").to_pylist()
        action[10][2] = float("nan")
        t = t.set_column(t.schema.get_field_index("action"), "action",
                         pa.array(action, pa.list_(pa.float32())))
        idx = t.schema.get_field_index("state")
        return t.set_column(idx, "state", pa.array(state, pa.list_(pa.float32())))

    rewrite(path, edit)
    expected = [
        (0, "finite", "reward"), (1, "not_null", "user_id"),
        (2, "logprob_nonpositive", "behavior_logprob"),
        (3, "logging_policy_allowed", "logging_policy"),
        (4, "event_time_in_day", "event_time"), (6, "unique", "event_id"),
        (7, "dimension", "state"), (8, "finite", "state"),
        *([(9, "finite", "state")] if null_element else []),
        (10, "finite", "action"),
    ]
    with open_warehouse(tmp_path / "wh.duckdb") as wh:
        report = ingest_partition(wh, logs, DAY)
        assert (report.rows_kept, report.rows_quarantined) == (200 - len(expected),
                                                               len(expected))
        rows = wh.query("SELECT source_row, rule, column_name, source_file FROM quarantine "
                        "ORDER BY source_row")
        assert [(r, rule, col) for r, rule, col, _ in rows] == expected
        assert all(src == str(path) for *_, src in rows)
        raw = json.loads(wh.query("SELECT raw FROM quarantine WHERE source_row = 1")[0][0])
        assert raw["user_id"] is None and raw["event_id"]


def copy_first_day_id(logs: Path, source_row: int, target_row: int) -> None:
    """Give a row of the second day's file an event_id of the first day's file."""
    first_ids = pq.read_table(day_file(logs)).column("event_id").to_pylist()
    rewrite(day_file(logs, DAY + dt.timedelta(days=1)),
            lambda t: set_value(t, "event_id", target_row, first_ids[source_row]))


def test_duplicate_event_id_across_files_is_quarantined(tmp_path, logs) -> None:
    copy_first_day_id(logs, 0, 0)
    with open_warehouse(tmp_path / "wh.duckdb") as wh:
        ingest_partition(wh, logs, DAY)
        report = ingest_partition(wh, logs, DAY + dt.timedelta(days=1))
        assert report.quarantined_by_rule == {"unique:event_id": 1}


def test_a_hash_match_without_a_stored_duplicate_keeps_every_row(tmp_path, logs) -> None:
    """The event_index hashes only raise a suspicion; the exact pass reads the stored ids of
    the dates they point at. A hash of one of the partition's ids under a date that holds no
    such id (what a 64-bit collision looks like) quarantines nothing."""
    second = DAY + dt.timedelta(days=1)
    event_id = pq.read_table(day_file(logs, second)).column("event_id")[7].as_py()
    with open_warehouse(tmp_path / "wh.duckdb") as wh:
        ingest_partition(wh, logs, DAY)
        wh.con.execute("INSERT INTO event_index VALUES (hash($id), $d)", {"id": event_id, "d": DAY})
        report = ingest_partition(wh, logs, second)
        assert (report.rows_kept, report.rows_quarantined) == (200, 0)
        assert wh.query("SELECT count(*) FROM interactions WHERE event_id = $id",
                        {"id": event_id})[0][0] == 1


def test_reingest_of_a_date_moves_its_event_ids_in_the_index(tmp_path, logs) -> None:
    """The cross-date check looks up event_index: a date ingested again (its rows replaced)
    must not count its own earlier rows as duplicates, and the index follows the table."""
    with open_warehouse(tmp_path / "wh.duckdb") as wh:
        ingest_partition(wh, logs, DAY)
        ingest_partition(wh, logs, DAY + dt.timedelta(days=1))
        again = ingest_partition(wh, logs, DAY, force=True)
        assert again.rows_quarantined == 0
        assert wh.query("SELECT count(*) FROM event_index")[0][0] == 400
        assert wh.query("SELECT count(*) FROM event_index e JOIN interactions i "
                        "ON e.event_hash = hash(i.event_id) "
                        "AND e.event_date = i.event_date")[0][0] == 400


def test_database_from_before_the_event_index_is_migrated(tmp_path, logs) -> None:
    copy_first_day_id(logs, 5, 3)
    with open_warehouse(tmp_path / "wh.duckdb") as wh:
        ingest_partition(wh, logs, DAY)
        wh.con.execute("DROP TABLE event_index")  # as a database made by an older version
    with open_warehouse(tmp_path / "wh.duckdb") as wh:
        report = ingest_partition(wh, logs, DAY + dt.timedelta(days=1))
        assert report.quarantined_by_rule == {"unique:event_id": 1}
        assert wh.query("SELECT count(*) FROM event_index")[0][0] == 200 + 199


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),
         "not a readable Parquet file"),
        (lambda p: p.write_text("event_id,reward\n1,2\n"), "not a readable Parquet file"),
        (lambda p: rewrite(p, lambda t: t.drop_columns(["reward"])),
         "missing column(s) ['reward']"),
        (lambda p: rewrite(p, lambda t: t.append_column("junk", pa.array(np.zeros(len(t))))),
         "unexpected column(s) ['junk']"),
    ],
)
def test_bad_files_abort_and_leave_the_database_as_before(tmp_path, logs, corrupt,
                                                          message) -> None:
    with open_warehouse(tmp_path / "wh.duckdb") as wh:
        ingest_partition(wh, logs, DAY + dt.timedelta(days=1))
        before = snapshot(wh)
        corrupt(day_file(logs))
        with pytest.raises(IngestError, match=message.replace("[", r"\[").replace("(", r"\(")
                           .replace(")", r"\)").replace("]", r"\]")):
            ingest_partition(wh, logs, DAY)
        assert snapshot(wh) == before


def test_a_failed_rerun_keeps_the_earlier_ingest(tmp_path, logs) -> None:
    with open_warehouse(tmp_path / "wh.duckdb") as wh:
        ingest_partition(wh, logs, DAY)
        before = snapshot(wh)
        rewrite(day_file(logs), lambda t: t.drop_columns(["user_id"]))
        with pytest.raises(IngestError, match="missing column"):
            ingest_partition(wh, logs, DAY)
        assert snapshot(wh) == before


def test_empty_partition_injection_and_paths_outside_the_root(tmp_path, logs) -> None:
    empty = logs / "event_date=2026-02-05"
    empty.mkdir()
    with open_warehouse(tmp_path / "wh.duckdb") as wh:
        with pytest.raises(IngestError, match="is empty"):
            ingest_partition(wh, logs, "2026-02-05")
        with pytest.raises(ValueError, match="expected a date YYYY-MM-DD"):
            ingest_partition(wh, logs, "2026-01-01'; DROP TABLE interactions; --")
        with pytest.raises(IngestError, match="outside the configured log root"):
            ingest_partition(wh, logs, DAY, log_root=tmp_path / "elsewhere")
        outside = tmp_path / "other"
        shutil.copytree(logs, outside)
        with pytest.raises(IngestError, match="no partition folder"):
            ingest_partition(wh, outside, "2026-03-01")
        rewrite(day_file(logs), lambda t: t.slice(0, 0))
        with pytest.raises(IngestError, match="has no rows"):
            ingest_partition(wh, logs, DAY)


def test_a_second_writer_process_gets_a_clear_busy_error(tmp_path) -> None:
    db = tmp_path / "wh.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from drpo_core.warehouse import open_warehouse\n"
         "with open_warehouse(sys.argv[1]):\n    print('held', flush=True); time.sleep(30)",
         str(db)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        busy = rf"database busy: .* held by pid {holder.pid}"
        with pytest.raises(DatabaseBusyError, match=busy), open_warehouse(db, timeout=0.3):
            pass
        with pytest.raises(DatabaseBusyError, match="in use by another process"), \
                open_warehouse(db, read_only=True, timeout=0.3):
            pass
    finally:
        holder.kill()
        holder.wait()
    with open_warehouse(db, timeout=5) as wh:  # released when the holder died
        assert not wh.read_only


def test_duckdb_file_inspection_used_for_object_stores(tmp_path, logs) -> None:
    """The object-store path inspects files through DuckDB; it is path-agnostic, so it is
    checked here on local files (no object store is reachable from the tests)."""
    from drpo_core.warehouse.ingest import check_file, check_file_duckdb, footer_hash

    path = str(day_file(logs))
    with open_warehouse(tmp_path / "wh.duckdb") as wh:
        assert check_file_duckdb(wh, path) == check_file(path) == (4, 4, 200)
        unchanged = footer_hash(wh, [path])
        shutil.copy(path, tmp_path / "copy.parquet")  # same bytes under a new mtime
        shutil.copy(tmp_path / "copy.parquet", path)
        assert footer_hash(wh, [path]) == unchanged
        rewrite(day_file(logs), lambda t: t.slice(1))  # one row less
        assert footer_hash(wh, [path]) != unchanged
        rewrite(day_file(logs), lambda t: t.drop_columns(["reward"]))
        with pytest.raises(IngestError, match=r"missing column\(s\) \['reward'\]"):
            check_file_duckdb(wh, path)
        with pytest.raises(IngestError, match="outside the configured log root"):
            ingest_partition(wh, "s3://other-bucket/logs", DAY, log_root="s3://logs-bucket")


def blow_up(path: Path, rows: int, row_group_size: int) -> None:
    """Repeat a day's rows up to ``rows``, each copy with fresh event_ids."""
    table = pq.read_table(path)
    copies = []
    for k in range(-(-rows // len(table))):
        ids = pa.array([f"{e}-{k}" for e in table.column("event_id").to_pylist()])
        copies.append(table.set_column(0, "event_id", ids))
    pq.write_table(pa.concat_tables(copies).slice(0, rows), path, row_group_size=row_group_size)


def test_a_day_is_written_in_full_row_groups_that_checkpoints_keep(tmp_path, logs) -> None:
    """The day's rows go in as one stream in file order: DuckDB cuts full row groups but for
    the last one, so the checkpoint finds no partial row groups to merge and rewrites nothing
    (read in parallel, every Parquet row group left a partial DuckDB row group behind, and the
    checkpoint rewrote about half of the day to merge them). A re-ingest drops the old row
    groups whole: the file does not grow."""
    for day in (DAY, DAY + dt.timedelta(days=1)):
        blow_up(day_file(logs, day), 500_000, row_group_size=125_000)

    def blocks(wh) -> tuple[int, int]:
        wh.con.execute("CHECKPOINT")
        return wh.query("SELECT used_blocks, free_blocks FROM pragma_database_size()")[0]

    with open_warehouse(tmp_path / "wh.duckdb") as wh:
        ingest_partition(wh, logs, DAY)
        ingest_partition(wh, logs, DAY + dt.timedelta(days=1))
        used, free = blocks(wh)
        assert free == 0
        groups = wh.query("SELECT count(DISTINCT row_group_id) FROM "
                          "pragma_storage_info('interactions')")[0][0]
        assert groups == 2 * -(-500_000 // 122_880)
        ingest_partition(wh, logs, DAY, force=True)
        assert blocks(wh)[0] <= used + 2
        assert wh.query("SELECT count(*) FROM interactions")[0][0] == 1_000_000


def test_a_sub_microsecond_event_time_is_quarantined_with_its_nanoseconds(tmp_path, logs
                                                                         ) -> None:
    """A nanosecond event_time is kept when it is a whole microsecond (stored exactly) and
    quarantined under timestamp_precision when it is not: never truncated into TIMESTAMPTZ, and
    quarantine's raw row holds the nanoseconds."""
    written = pq.read_table(day_file(logs)).column("event_time").cast(pa.int64()).to_numpy()
    ns = written * 1000
    ns[3] += 7

    rewrite(day_file(logs), lambda t: t.set_column(
        t.schema.get_field_index("event_time"), "event_time",
        pa.array(ns, pa.timestamp("ns", tz="UTC"))))
    with open_warehouse(tmp_path / "wh.duckdb") as wh:
        report = ingest_partition(wh, logs, DAY)
        assert report.quarantined_by_rule == {"timestamp_precision:event_time": 1}
        assert report.rows_kept == 199
        assert wh.query("SELECT source_row FROM quarantine") == [(3,)]
        raw = json.loads(wh.query("SELECT raw FROM quarantine")[0][0])
        assert raw["event_time"].endswith(f".{written[3] % 1_000_000:06d}007+00")
        stored = wh.query("SELECT epoch_ns(event_time) FROM interactions ORDER BY event_time")
        assert [r[0] for r in stored] == sorted(np.delete(ns, 3).tolist())


def variable_state(t: pa.Table) -> pa.Table:
    idx = t.schema.get_field_index("state")
    return t.set_column(idx, "state", pa.array(t.column("state").to_pylist(),
                                               pa.list_(pa.float32())))


def with_meta(d_state: bytes) -> dict[bytes, bytes]:
    return {b"drpo.d_state": d_state, b"drpo.d_action": b"4"}


BAD_FILES = {
    # id: (edit, what both file checks say after the file's path, up to the found type)
    "repeated-column": (lambda t: t.append_column("reward", pa.array(np.zeros(len(t)))),
                        "column(s) ['reward'] appear more than once"),
    "reward-as-bool": (lambda t: t.set_column(t.schema.get_field_index("reward"), "reward",
                                              pa.array([True] * len(t))),
                       "column 'reward' must be a number (the log contract's double), got"),
    "step-as-text": (lambda t: t.set_column(t.schema.get_field_index("step"), "step", pa.array(
        [str(s) for s in t.column("step").to_pylist()])),
        "column 'step' must be an integer (the log contract's int32), got"),
    "state-nested": (lambda t: t.set_column(t.schema.get_field_index("state"), "state", pa.array(
        [[v] for v in t.column("state").to_pylist()])),
        "column 'state' must be a list of floats"),
    "fixed-size-other-than-declared": (lambda t: t.replace_schema_metadata(with_meta(b"7")),
                                       "metadata drpo.d_state declares 7 but column 'state' "
                                       "holds vectors of 4"),
    "variable-length-other-than-declared": (
        lambda t: variable_state(t).replace_schema_metadata(with_meta(b"3")),
        "metadata drpo.d_state declares 3 but column 'state' holds vectors of 4"),
    "dims-not-a-number": (lambda t: t.replace_schema_metadata(with_meta(b"abc")),
                          "metadata drpo.d_state must be a positive integer, got 'abc'"),
    "dims-zero": (lambda t: t.replace_schema_metadata(with_meta(b"0")),
                  "metadata drpo.d_state must be a positive integer, got '0'"),
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_both_file_checks_refuse_a_bad_file_naming_it(tmp_path, logs, name) -> None:
    """The local (pyarrow) and the object-store (DuckDB) file checks refuse the same files with
    the same line: the file, the column or metadata key, what was expected."""
    from drpo_core.warehouse.ingest import check_file, check_file_duckdb

    edit, said = BAD_FILES[name]
    rewrite(day_file(logs), edit)
    path = str(day_file(logs))
    with open_warehouse(tmp_path / "wh.duckdb") as wh:
        for check in (check_file, lambda p: check_file_duckdb(wh, p)):
            with pytest.raises(IngestError) as caught:
                check(path)
            assert str(caught.value).startswith(f"{path}: {said}"), caught.value
        with pytest.raises(IngestError) as caught:
            ingest_partition(wh, logs, DAY)
        assert str(caught.value).startswith(f"{path}: {said}"), caught.value
        assert wh.dims() is None


def test_declared_dims_are_sampled_not_required_of_every_row(tmp_path, logs) -> None:
    """Variable-length vectors whose first row is one element short still match the declared
    d_state in the other sampled rows: the file is read, that row quarantined under
    dimension:state (a file is refused only when no sampled vector has the declared length)."""
    def edit(t: pa.Table) -> pa.Table:
        state = t.column("state").to_pylist()
        state[0] = state[0][:-1]
        idx = t.schema.get_field_index("state")
        return t.set_column(idx, "state", pa.array(state, pa.list_(pa.float32())))

    rewrite(day_file(logs), lambda t: edit(t).replace_schema_metadata(with_meta(b"4")))
    with open_warehouse(tmp_path / "wh.duckdb") as wh:
        report = ingest_partition(wh, logs, DAY)
        assert report.quarantined_by_rule == {"dimension:state": 1}
        assert (report.rows_kept, wh.dims()) == (199, (4, 4))
