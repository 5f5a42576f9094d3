"""Warehouse refusals are one line (issue 13 item 9, data layer), the window's day status and
the simulator config come from the warehouse (issue 12, "data flows one way"), and every SQL
statement of the data layer lives in sql/ under one lineage hash (issue 12)."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import sql
from drpo_core.schema import simulator_config_from_metadata
from drpo_core.sim import LogSimulator, scenario_config
from drpo_core.warehouse import WarehouseError, open_warehouse
from drpo_core.warehouse.cvar_filter import cvar_filter
from drpo_core.warehouse.ingest import ingest_partition

DAY = dt.date(2026, 2, 1)
CFG = scenario_config("medium", d=4, n_items=100, n_users=50)
WAREHOUSE = Path(__file__).resolve().parents[2] / "drpo_core" / "warehouse"


@pytest.fixture
def logs(tmp_path) -> Path:
    LogSimulator(CFG).write(tmp_path / "logs", DAY, days=3, rows_per_day=300, progress=False)
    return tmp_path / "logs"


def day_file(logs: Path, day: dt.date) -> Path:
    return logs / f"event_date={day.isoformat()}" / "part-0.parquet"


@pytest.mark.parametrize("window", [(-7, -1), (5, 9)], ids=["before-the-first-day", "after"])
@pytest.mark.reliability(
    kind="bad input",
    case="a filter window with no ingested day (days {window} from the data's first day), on an "
         "empty and on a filled warehouse",
    outcome="one line naming the window and the days the warehouse holds",
    guards=("one-line",),
)
def test_an_empty_window_fails_with_one_line(tmp_path, logs, window) -> None:
    start, end = (DAY + dt.timedelta(days=k) for k in window)
    with open_warehouse(tmp_path / "wh.duckdb") as wh:
        with pytest.raises(WarehouseError) as caught:
            cvar_filter(wh, start, end, 0.5)
        ingest_partition(wh, logs, DAY)
        with pytest.raises(WarehouseError) as held:
            cvar_filter(wh, start, end, 0.5)
    assert isinstance(caught.value, ValueError)
    assert str(caught.value) == (f"no interactions between {start} and {end}: database "
                                 f"{tmp_path / 'wh.duckdb'} holds no interactions yet")
    assert str(held.value) == (f"no interactions between {start} and {end} in "
                               f"{tmp_path / 'wh.duckdb'} (it holds {DAY} to {DAY}); expected a "
                               "window with at least one ingested day")


@pytest.mark.parametrize("read_only", [False, True], ids=["writer", "reader"])
@pytest.mark.parametrize("kind", ["text-file", "parquet-file", "folder"])
@pytest.mark.reliability(
    kind="bad input",
    case="a warehouse path that is a {kind}, opened read-only: {read_only}",
    outcome="one line naming the path; no lock file left beside it",
    guards=("one-line",),
)
def test_a_path_that_is_not_a_duckdb_database_fails_with_one_line(tmp_path, logs, kind,
                                                                   read_only) -> None:
    path = {"text-file": tmp_path / "notes.duckdb", "parquet-file": day_file(logs, DAY),
            "folder": tmp_path / "a-folder"}[kind]
    if kind == "text-file":
        path.write_text("event_id,reward\n1,2\n")
    if kind == "folder":
        path.mkdir()
    before = sorted(p.name for p in path.parent.iterdir())
    with pytest.raises(WarehouseError) as caught, open_warehouse(path, read_only=read_only):
        pass
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    expected = "is a folder; expected a DuckDB database file" if kind == "folder" else \
        "is not a DuckDB database file"
    assert expected in message
    assert sorted(p.name for p in path.parent.iterdir()) == before  # no lock file left


FULL_DISK = """
import resource, signal, sys
from drpo_core.warehouse import open_warehouse
from drpo_core.warehouse.ingest import IngestError, ingest_partition
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
limit = int(sys.argv[3])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
try:
    with open_warehouse(sys.argv[1]) as wh:
        ingest_partition(wh, sys.argv[2], "2026-02-02")
except IngestError as err:
    print(err)
"""


@pytest.mark.reliability(
    kind="fault",
    case="the disk full at commit (a file-size limit stands in)",
    outcome="one line keeping the OS's error; the database as before",
    guards=("rows", "one-line"),
)
def test_a_failed_commit_reports_the_os_error(tmp_path, logs) -> None:
    """The disk fills up at commit (a file-size limit stands in for a full disk: the same
    failed write, with the OS's "File too large" in place of "No space left on device"): the
    error keeps the OS's text instead of DuckDB's "cannot rollback" that replaced it, and the
    database is as before."""
    db = tmp_path / "wh.duckdb"
    with open_warehouse(db) as wh:
        ingest_partition(wh, logs, DAY)
        wh.con.execute("CHECKPOINT")
        before = wh.query("SELECT count(*), count(DISTINCT event_date) FROM interactions")
    done = subprocess.run([sys.executable, "-c", FULL_DISK, str(db), str(logs), "16384"],
                          capture_output=True, text=True, timeout=120)
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout + done.stderr
    assert lines[0].startswith("ingest of 2026-02-02 failed, nothing was written")
    assert lines[0].endswith("File too large")
    with open_warehouse(db) as wh:
        assert wh.query("SELECT count(*), count(DISTINCT event_date) FROM interactions") == before


def test_window_days_lists_rows_and_the_latest_validation(tmp_path, logs) -> None:
    from drpo_core.warehouse.days import window_days

    second, third = DAY + dt.timedelta(days=1), DAY + dt.timedelta(days=2)
    with open_warehouse(tmp_path / "wh.duckdb") as wh:
        assert [d.validation for d in window_days(wh, DAY, second)] == ["never", "never"]
        for day in (DAY, second):
            ingest_partition(wh, logs, day)
        record = ("INSERT INTO validation_runs (event_date, success, critical_failures, "
                  "warnings, result, validated_at) VALUES ($d, $ok, [], [], '{}', $at)")
        at = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
        wh.query(record, {"d": DAY, "ok": False, "at": at})
        wh.query(record, {"d": DAY, "ok": True, "at": at + dt.timedelta(hours=1)})
        wh.query(record, {"d": second, "ok": True, "at": at})
        wh.query(record, {"d": second, "ok": False, "at": at + dt.timedelta(hours=1)})
        days = window_days(wh, DAY - dt.timedelta(days=1), third)
    assert [(d.event_date, d.rows_stored, d.ingested, d.validation, d.missing) for d in days] == [
        (DAY - dt.timedelta(days=1), 0, False, "never", True),
        (DAY, 300, True, "passed", False),
        (second, 300, True, "failed", False),
        (third, 0, False, "never", True),
    ]
    assert days[1].validated_at == at + dt.timedelta(hours=1)


def test_the_simulator_config_is_stored_at_ingest(tmp_path, logs) -> None:
    from drpo_core.warehouse.days import simulator_config

    second = DAY + dt.timedelta(days=1)
    path = day_file(logs, second)
    table = pq.read_table(path)
    pq.write_table(table.replace_schema_metadata({}), path)  # logs from elsewhere: no config
    expected = simulator_config_from_metadata(pq.read_schema(day_file(logs, DAY)))
    assert expected is not None
    with open_warehouse(tmp_path / "wh.duckdb") as wh:
        ingest_partition(wh, logs, DAY)
        ingest_partition(wh, logs, second)
        day_file(logs, DAY).unlink()  # evaluation never reopens the raw logs
        assert simulator_config(wh, DAY) == expected
        assert simulator_config(wh, second) is None
        assert simulator_config(wh, DAY + dt.timedelta(days=2)) is None


@pytest.mark.reliability(
    kind="fault",
    case="a warehouse made by an older version (no day_metadata table)",
    outcome="opened; the next ingest of an unchanged day adds the day's metadata",
)
def test_a_database_from_before_day_metadata_gets_it_on_the_next_ingest(tmp_path, logs) -> None:
    from drpo_core.warehouse.days import simulator_config

    with open_warehouse(tmp_path / "wh.duckdb") as wh:
        ingest_partition(wh, logs, DAY)
        wh.con.execute("DROP TABLE day_metadata")  # as a database made by an older version
    with open_warehouse(tmp_path / "wh.duckdb") as wh:
        assert simulator_config(wh, DAY) is None
        assert ingest_partition(wh, logs, DAY).status == "skipped_unchanged"
        assert simulator_config(wh, DAY) is not None


SQL_TEXT = re.compile(r"""["'](\s*)(SELECT|INSERT|DELETE|UPDATE|CREATE|DROP|DESCRIBE|SET|WITH)\b""")


@pytest.mark.parametrize("module", ["connection.py", "cvar_filter.py", "ingest.py", "days.py"])
@pytest.mark.reliability(
    kind="security",
    case="SQL text built in the data-layer module {module} (an injection path)",
    outcome="none: every statement lives in sql/ and values are bound as parameters",
)
def test_the_data_layer_holds_no_sql_strings(module) -> None:
    source = (WAREHOUSE / module).read_text()
    assert not SQL_TEXT.findall(source)
    assert ".query(" not in source.replace("def query(", "")


def test_the_lineage_hash_covers_every_file_that_shapes_the_data(monkeypatch) -> None:
    from drpo_core.warehouse import cvar_filter as filter_module
    from drpo_core.warehouse import ingest as ingest_module

    lineage = set(sql.lineage_names())
    shaping = {"schema", "ingest_rules", "ingest_file_bounds", "ingest_partition",
               "ingest_quarantine", "ingest_duplicates", "ingest_duplicate_check",
               "ingest_list_files", "warehouse_session", "cvar_filter", "cvar_filter_band",
               "cvar_filter_weights"}
    assert shaping <= lineage
    assert {"validation_stats", "window_days"}.isdisjoint(lineage)
    used = set()
    for module in (ingest_module, filter_module):
        used |= set(re.findall(r"""(?:run|fetch|_run)\(\s*["']([a-z_]+)["']""",
                               Path(module.__file__).read_text()))
    assert used and used <= set(sql.names())
    assert used - sql.NOT_LINEAGE <= lineage
    before = sql.lineage_hash()
    original = sql.load

    def edited(name: str) -> str:
        return original(name) + ("\n-- edited" if name == "ingest_file_bounds" else "")

    monkeypatch.setattr(sql, "load", edited)
    assert sql.lineage_hash() != before
