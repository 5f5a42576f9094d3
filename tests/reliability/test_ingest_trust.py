"""Ingest under adversarial input (issue 13 items 2-5, 11): no value reaches the warehouse
changed, no row is lost, and a bad file or location is refused with one line naming it."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import struct
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from drpo_core.sim import LogSimulator, scenario_config
from drpo_core.warehouse import ingest, open_warehouse
from drpo_core.warehouse.ingest import IngestError, ingest_partition

DAY = dt.date(2026, 2, 1)
CFG = scenario_config("medium", d=4, n_items=100, n_users=50)
ROWS = 200


def write_logs(root: Path, days: int = 1) -> Path:
    LogSimulator(CFG).write(root, DAY, days=days, rows_per_day=ROWS, progress=False)
    return root


@pytest.fixture
def logs(tmp_path) -> Path:
    return write_logs(tmp_path / "logs")


def day_folder(logs: Path, day: dt.date = DAY) -> Path:
    return logs / f"event_date={day.isoformat()}"


def day_file(logs: Path, day: dt.date = DAY) -> Path:
    return day_folder(logs, day) / "part-0.parquet"


def replace_column(table: pa.Table, name: str, values: pa.Array) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, values)


def snapshot(wh) -> tuple:
    tables = [t for (t,) in wh.query("SELECT table_name FROM information_schema.tables "
                                     "WHERE table_schema = 'main' ORDER BY ALL")]
    return tuple((t, wh.query(f"SELECT count(*) FROM {t}")[0][0]) for t in tables)


def stored(wh, column: str) -> dict[str, object]:
    return dict(wh.query(f"SELECT event_id, {column} FROM interactions"))


@pytest.mark.reliability(
    kind="bad input",
    case="a log root under `reward=1/step=7/` folders (hive-style names above the logs)",
    outcome="every reward and step stored as the file's own",
    guards=("rows", "values"),
)
def test_folder_names_never_become_columns(tmp_path) -> None:
    """A log root under ``reward=1/step=7`` folders: every reward and step is the file's own."""
    logs = write_logs(tmp_path / "reward=1" / "step=7" / "logs")
    table = pq.read_table(day_file(logs))
    with open_warehouse(tmp_path / "wh.duckdb") as wh:
        report = ingest_partition(wh, logs, DAY)
        assert (report.rows_kept, report.rows_quarantined) == (ROWS, 0)
        ids = table.column("event_id").to_pylist()
        assert stored(wh, "reward") == dict(zip(ids, table.column("reward").to_pylist(),
                                                strict=True))
        assert stored(wh, "step") == dict(zip(ids, table.column("step").to_pylist(),
                                              strict=True))
        assert len(set(stored(wh, "reward").values())) > 1


@pytest.mark.reliability(
    kind="bad input",
    case="a file whose event_date is the next day inside this day's folder",
    outcome="every row quarantined by partition_date:event_date (the folder's date never replaces "
            "the file's)",
    guards=("rows", "values"),
)
def test_the_files_own_event_date_meets_the_partition_rule(tmp_path, logs) -> None:
    """A file dated the next day inside this day's folder: every row is quarantined by the
    partition_date rule (the folder's date no longer replaces the file's)."""
    path = day_file(logs)
    table = pq.read_table(path)
    later = pa.array([DAY + dt.timedelta(days=1)] * table.num_rows, pa.date32())
    pq.write_table(replace_column(table, "event_date", later), path)
    with open_warehouse(tmp_path / "wh.duckdb") as wh:
        report = ingest_partition(wh, logs, DAY)
        assert report.rows_kept == 0
        assert report.quarantined_by_rule == {"partition_date:event_date": ROWS}


def corrupt_state_value(path: Path, row: int, value: float) -> None:
    """Overwrite one float32 state element in the data page, leaving the footer (and its column
    statistics) as written: what a corrupt page looks like to a reader."""
    table = pq.read_table(path)
    state = table.column("state").combine_chunks()
    flat = state.values.to_numpy().copy()
    d = state.type.list_size
    marker = np.float32(0.123456789)  # a bit pattern that occurs once in the file
    flat[row * d] = marker
    table = replace_column(table, "state", pa.FixedSizeListArray.from_arrays(
        pa.array(flat), d).cast(state.type))
    pq.write_table(table, path, compression="NONE", use_dictionary=False,
                   write_statistics=True)
    data = path.read_bytes()
    old = struct.pack("<f", marker)
    assert data.count(old) == 1
    path.write_bytes(data.replace(old, struct.pack("<f", np.float32(value))))


@pytest.mark.reliability(
    kind="fault",
    case="a corrupt data page with its footer intact (a state value of 2.8e38, footer max < 1e3)",
    outcome="the day refused with one line naming file, row 57 and column state; the database "
            "unchanged",
    guards=("rows", "values", "one-line"),
)
def test_a_data_page_that_breaks_its_footer_statistics_is_refused(tmp_path, logs) -> None:
    path = day_file(logs)
    corrupt_state_value(path, 57, 2.8e38)
    group = pq.ParquetFile(path).metadata.row_group(0)
    columns = [group.column(i) for i in range(group.num_columns)]
    state_stats = next(c.statistics for c in columns if c.path_in_schema.startswith("state"))
    assert state_stats.max < 1e3  # the footer still records the values as written
    with open_warehouse(tmp_path / "wh.duckdb") as wh:
        wh.ensure_schema(4, 4)
        before = snapshot(wh)
        with pytest.raises(IngestError) as caught:
            ingest_partition(wh, logs, DAY)
        message = str(caught.value)
        assert "\n" not in message
        assert f"{path}: row 57, column state" in message
        assert "footer statistics" in message
        assert snapshot(wh) == before


@pytest.mark.reliability(
    kind="bad input",
    case="rewards at the exact footer minimum and maximum whose text is inexact (1/3, -2/3)",
    outcome="accepted: every row kept (no false corruption alarm)",
    guards=("rows",),
)
def test_values_inside_the_footer_range_are_accepted(tmp_path, logs) -> None:
    """The check compares float32 values with float32 bounds: values at the exact footer
    minimum and maximum (printed as their shortest text) pass."""
    path = day_file(logs)
    table = pq.read_table(path)
    reward = table.column("reward").to_numpy().copy()
    reward[3], reward[4] = 1 / 3, -2 / 3  # not exactly representable as text
    pq.write_table(replace_column(table, "reward", pa.array(reward)), path)
    with open_warehouse(tmp_path / "wh.duckdb") as wh:
        report = ingest_partition(wh, logs, DAY)
        assert (report.rows_kept, report.rows_quarantined) == (ROWS, 0)


@pytest.mark.reliability(
    kind="bad input",
    case="`step` 0.5 and 3e10 in a float column",
    outcome="those rows quarantined by integer:step with their raw value; 7.0 stored as 7",
    guards=("rows", "values"),
)
def test_a_step_that_is_not_an_integer_is_quarantined_not_rounded(tmp_path, logs) -> None:
    path = day_file(logs)
    table = pq.read_table(path)
    step = table.column("step").to_numpy().astype(np.float64)
    step[0], step[1], step[2] = 0.5, 3e10, 7.0
    pq.write_table(replace_column(table, "step", pa.array(step)), path)
    with open_warehouse(tmp_path / "wh.duckdb") as wh:
        report = ingest_partition(wh, logs, DAY)
        assert report.quarantined_by_rule == {"integer:step": 2}
        rows = wh.query("SELECT source_row, rule, column_name, raw->>'step' FROM quarantine "
                        "ORDER BY source_row")
        assert rows == [(0, "integer", "step", "0.5"), (1, "integer", "step", "30000000000.0")]
        ids = table.column("event_id").to_pylist()
        assert stored(wh, "step")[ids[2]] == 7
        assert report.rows_kept == ROWS - 2


@pytest.mark.reliability(
    kind="bad input",
    case="a float64 state element of 1e39 (finite, beyond float32)",
    outcome="that row quarantined by float32_range:state; the rest kept",
    guards=("rows", "values"),
)
def test_a_double_state_beyond_float32_is_quarantined_not_the_day(tmp_path, logs) -> None:
    path = day_file(logs)
    table = pq.read_table(path)
    state = table.column("state").to_pylist()
    state[3][1] = 1e39  # finite as float64, beyond float32's 3.4e38
    doubles = pa.array(state, pa.list_(pa.float64()))
    pq.write_table(replace_column(table, "state", doubles), path)
    with open_warehouse(tmp_path / "wh.duckdb") as wh:
        report = ingest_partition(wh, logs, DAY)
        assert report.quarantined_by_rule == {"float32_range:state": 1}
        assert wh.query("SELECT source_row FROM quarantine") == [(3,)]
        assert report.rows_kept == ROWS - 1
        ids = table.column("event_id").to_pylist()
        assert stored(wh, "state")[ids[0]] == pytest.approx(state[0])


@pytest.mark.reliability(
    kind="bad input",
    case="a Parquet file in a subfolder of the day's folder",
    outcome="refused with one line naming the subfolder (never skipped); nothing written",
    guards=("rows", "one-line"),
)
def test_a_file_in_a_subfolder_of_a_day_is_an_error(tmp_path, logs) -> None:
    nested = day_folder(logs) / "late"
    nested.mkdir()
    shutil.copy(day_file(logs), nested / "part-1.parquet")
    with open_warehouse(tmp_path / "wh.duckdb") as wh:
        with pytest.raises(IngestError, match=r"late: a subfolder of partition"):
            ingest_partition(wh, logs, DAY)
        assert wh.dims() is None  # nothing written


@pytest.mark.reliability(
    kind="bad input",
    case="Spark `_SUCCESS`, `.crc` files, `_temporary/` and hidden folders beside the data",
    outcome="ignored; the day ingested in full from its one data file",
    guards=("rows",),
)
def test_writer_markers_are_ignored(tmp_path, logs) -> None:
    """Spark's _SUCCESS, .crc checksums, _temporary folders and hidden files are not data."""
    folder = day_folder(logs)
    (folder / "_SUCCESS").write_bytes(b"")
    (folder / ".part-0.parquet.crc").write_bytes(b"crc")
    (folder / "part-0.parquet.crc").write_bytes(b"crc")
    (folder / "_temporary" / "0").mkdir(parents=True)
    shutil.copy(day_file(logs), folder / "_temporary" / "0" / "part-9.parquet")
    (folder / ".spark-staging").mkdir()
    with open_warehouse(tmp_path / "wh.duckdb") as wh:
        report = ingest_partition(wh, logs, DAY)
        assert report.files == [str(day_file(logs))]
        assert (report.rows_kept, report.rows_quarantined) == (ROWS, 0)


@pytest.mark.reliability(
    kind="bad input",
    case="writer markers and a subfolder in an object-store day listing",
    outcome="the same data file selected; the subfolder refused with one line",
    guards=("one-line",),
)
def test_the_object_store_listing_applies_the_same_rules(tmp_path, logs) -> None:
    """The object-store path lists a day through DuckDB's glob; it is path-agnostic, so it is
    checked on a local folder (no object store is reachable from the tests)."""
    folder = day_folder(logs)
    (folder / "_SUCCESS").write_bytes(b"")
    (folder / "_temporary" / "0").mkdir(parents=True)
    (folder / "_temporary" / "0" / "x.parquet").write_bytes(b"")
    with open_warehouse(tmp_path / "wh.duckdb") as wh:
        assert ingest.remote_partition_files(wh, str(folder)) == [f"{folder}/part-0.parquet"]
        (folder / "late").mkdir()
        (folder / "late" / "part-1.parquet").write_bytes(b"")
        with pytest.raises(IngestError, match="a subfolder of partition"):
            ingest.remote_partition_files(wh, str(folder))


@pytest.mark.reliability(
    kind="security",
    case="a day folder, and a file inside a real day folder, that are symlinks out of "
         "DRPO_LOG_ROOT",
    outcome="refused with one line naming the location; nothing written; a symlink inside the "
            "root is ingested",
    guards=("rows", "one-line"),
)
def test_symlinks_out_of_the_log_root_are_refused(tmp_path) -> None:
    root = tmp_path / "root"
    logs = write_logs(root / "logs")
    outside = write_logs(tmp_path / "outside", days=2)
    second = DAY + dt.timedelta(days=1)
    day_folder(logs, second).symlink_to(day_folder(outside, second))  # a day folder
    with open_warehouse(tmp_path / "wh.duckdb") as wh:
        with pytest.raises(IngestError, match="outside the configured log root"):
            ingest_partition(wh, logs, second, log_root=root)
        day_file(logs).unlink()
        day_file(logs).symlink_to(day_file(outside))  # a file inside a real day folder
        with pytest.raises(IngestError, match=r"part-0.parquet is outside the configured log"):
            ingest_partition(wh, logs, DAY, log_root=root)
        assert wh.dims() is None
        os.unlink(day_file(logs))  # a symlink that stays inside the root is fine
        shutil.copy(day_file(outside), root / "elsewhere.parquet")
        day_file(logs).symlink_to(root / "elsewhere.parquet")
        assert ingest_partition(wh, logs, DAY, log_root=root).rows_kept == ROWS


@pytest.mark.parametrize(("location", "root", "inside"), [
    ("s3://bucket/logs", "s3://bucket/logs", True),
    ("s3://bucket/logs/daily", "s3://bucket/logs/", True),
    ("S3://bucket/logs/daily", "s3://bucket/logs", True),
    ("s3://bucket/logs-evil", "s3://bucket/logs", False),
    ("s3://bucket-evil/logs", "s3://bucket/logs", False),
    ("s3://bucket/logs/../secret", "s3://bucket/logs", False),
    ("gs://bucket/logs", "s3://bucket/logs", False),
    ("relative/logs", "s3://bucket/logs", False),
    ("s3://bucket/logs", "/data/logs", False),
])
@pytest.mark.reliability(
    kind="security",
    case="log location `{location}` under the root `{root}`",
    outcome="compared by scheme, bucket and whole path segments; inside: {inside} (outside is "
            "refused with one line)",
    guards=("one-line",),
)
def test_url_roots_are_compared_by_scheme_bucket_and_segments(location, root, inside) -> None:
    if inside:
        ingest.check_within_root(location, root)
    else:
        with pytest.raises(IngestError, match=r"outside the configured log root|'\.\.'"):
            ingest.check_within_root(location, root)


@pytest.mark.reliability(
    kind="security",
    case="an `s3://` log root with a local logs folder, and `s3://bucket/logs-evil` under "
         "`s3://bucket/logs`",
    outcome="both refused with one line naming the configured root",
    guards=("one-line",),
)
def test_an_object_store_root_is_never_read_as_a_local_path(tmp_path, logs) -> None:
    with open_warehouse(tmp_path / "wh.duckdb") as wh:
        with pytest.raises(IngestError, match=r"outside the configured log root s3://bucket/logs$"):
            ingest_partition(wh, logs, DAY, log_root="s3://bucket/logs")
        with pytest.raises(IngestError, match="outside the configured log root"):
            ingest_partition(wh, "s3://bucket/logs-evil", DAY, log_root="s3://bucket/logs")


@pytest.mark.reliability(
    kind="bad input",
    case="the object-store file check of a file under a `junk=1/` folder",
    outcome="the file's own columns and row count (no folder column)",
    guards=("values",),
)
def test_the_object_store_file_check_sees_no_folder_columns(tmp_path) -> None:
    """The object-store path inspects a file through DuckDB: a ``junk=1`` folder above the logs
    is no column of the file (it made every file fail as having an unexpected column)."""
    logs = write_logs(tmp_path / "junk=1" / "logs")
    with open_warehouse(tmp_path / "wh.duckdb") as wh:
        assert ingest.check_file_duckdb(wh, str(day_file(logs))) == (4, 4, ROWS)
