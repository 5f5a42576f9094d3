"""Idempotent, transactional ingest of one ``event_date`` partition (sql/ingest_*.sql).

* File-level problems (not Parquet, truncated, missing or extra columns, non-list vectors) abort
  with an error naming the file and leave the database exactly as before.
* Row-level problems move the row, raw, to ``quarantine`` with the rule and column it broke;
  valid rows of a partly bad file are kept.
* Re-running a date replaces exactly that date; an unchanged partition (same content hash as
  its last ingest) is skipped unless ``force``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from drpo_core.schema import COLUMNS, SIMULATOR_LOGGING_POLICIES, dims_from_metadata
from drpo_core.warehouse.connection import Warehouse

URL_SCHEMES = ("s3://", "gs://", "gcs://", "az://", "abfss://", "http://", "https://")


class IngestError(ValueError):
    """The partition cannot be ingested; nothing was written."""


@dataclass(frozen=True)
class IngestReport:
    event_date: dt.date
    ingest_id: str
    files: list[str]
    content_hash: str
    rows_in: int
    rows_kept: int
    rows_quarantined: int
    status: str  # ingested | skipped_unchanged
    quarantined_by_rule: dict[str, int] = field(default_factory=dict)


def parse_date(value: dt.date | str, name: str = "event_date") -> dt.date:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"{name}: expected a date YYYY-MM-DD, got {value!r}") from None


def is_url(path: Path | str) -> bool:
    return str(path).startswith(URL_SCHEMES)


def partition_files(logs: Path | str, event_date: dt.date, log_root: Path | str | None = None,
                    wh: Warehouse | None = None) -> list[str]:
    """The Parquet files of ``logs/event_date=YYYY-MM-DD/``: a local folder, or an object-store
    prefix listed by DuckDB's ``glob`` (its httpfs extension and credentials must be set up)."""
    if is_url(logs):
        prefix = str(logs).rstrip("/")
        if log_root is not None and not prefix.startswith(str(log_root).rstrip("/")):
            raise IngestError(f"{prefix} is outside the configured log root {log_root}")
        if wh is None:
            raise IngestError(f"{prefix}: listing an object store needs a DuckDB connection")
        pattern = f"{prefix}/event_date={event_date.isoformat()}/*.parquet"
        try:
            files = [r[0] for r in wh.query("SELECT file FROM glob($p) ORDER BY file",
                                            {"p": pattern})]
        except Exception as err:
            raise IngestError(f"cannot list {pattern} ({err})") from None
        if not files:
            raise IngestError(f"no Parquet files match {pattern}")
        return files
    logs = Path(logs).resolve()
    if log_root is not None and not logs.is_relative_to(Path(log_root).resolve()):
        raise IngestError(f"{logs} is outside the configured log root {Path(log_root).resolve()}")
    folder = logs / f"event_date={event_date.isoformat()}"
    if not folder.is_dir():
        raise IngestError(f"no partition folder {folder}")
    files = sorted(str(p) for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise IngestError(f"partition {folder} is empty")
    return files


def check_file(path: str) -> tuple[int | None, int | None, int]:
    """File-level contract: readable Parquet, exact column set, list vectors.

    Returns (d_state, d_action, rows) with dims None when the file does not declare them."""
    try:
        meta = pq.read_metadata(path)
        schema = meta.schema.to_arrow_schema()
    except (pa.ArrowInvalid, OSError) as err:
        raise IngestError(f"{path}: not a readable Parquet file ({err})") from None
    missing = [c for c in COLUMNS if c not in schema.names]
    extra = [c for c in schema.names if c not in COLUMNS]
    if missing:
        raise IngestError(f"{path}: missing column(s) {missing}; the log contract has {COLUMNS}")
    if extra:
        raise IngestError(f"{path}: unexpected column(s) {extra}; the log contract has {COLUMNS}")
    for c in ("state", "action"):
        t = schema.field(c).type
        if not (pa.types.is_list(t) or pa.types.is_large_list(t)
                or pa.types.is_fixed_size_list(t)):
            raise IngestError(f"{path}: column {c!r} must be a list of floats, got {t}")
    d_state, d_action = dims_from_metadata(schema)
    return d_state, d_action, meta.num_rows


def check_file_duckdb(wh: Warehouse, path: str) -> tuple[int | None, int | None, int]:
    """``check_file`` through DuckDB, for files pyarrow cannot open (object stores)."""
    try:
        columns = [r[0] for r in wh.query("DESCRIBE SELECT * FROM read_parquet($f)", {"f": path})]
        rows = wh.query("SELECT num_rows FROM parquet_file_metadata($f)", {"f": path})[0][0]
        meta = dict(wh.query("SELECT decode(key), decode(value) FROM parquet_kv_metadata($f)",
                             {"f": path}))
    except Exception as err:
        raise IngestError(f"{path}: not a readable Parquet file ({err})") from None
    missing = [c for c in COLUMNS if c not in columns]
    extra = [c for c in columns if c not in COLUMNS]
    if missing:
        raise IngestError(f"{path}: missing column(s) {missing}; the log contract has {COLUMNS}")
    if extra:
        raise IngestError(f"{path}: unexpected column(s) {extra}; the log contract has {COLUMNS}")
    d_state, d_action = meta.get("drpo.d_state"), meta.get("drpo.d_action")
    return (int(d_state) if d_state else None, int(d_action) if d_action else None, int(rows))


def footer_hash(wh: Warehouse, files: list[str]) -> str:
    """Content fingerprint of remote files from their Parquet footers (name, size, rows,
    footer size, writer), so an unchanged object-store partition is skipped too."""
    rows = wh.query("SELECT file_name, file_size_bytes, num_rows, footer_size, created_by "
                    "FROM parquet_file_metadata($f) ORDER BY file_name", {"f": files})
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def vectors_null_free(wh: Warehouse, files: list[str]) -> bool:
    """Whether the Parquet footers count no null state or action element in any row group (the
    contract_rows macro then checks finiteness with a cheaper function that rejects nulls);
    False when a writer left the counts out."""
    return wh.query(
        "SELECT coalesce(bool_and(stats_null_count = 0), false) FROM parquet_metadata($files) "
        "WHERE split_part(path_in_schema, ', ', 1) IN ('state', 'action')", {"files": files}
    )[0][0]


def content_hash(files: list[str]) -> str:
    h = hashlib.sha256()
    for f in files:
        h.update(Path(f).name.encode())
        with open(f, "rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
    return h.hexdigest()


def ingest_partition(
    wh: Warehouse,
    logs: Path | str,
    event_date: dt.date | str,
    *,
    log_root: Path | None = None,
    allowed_logging_policies: tuple[str, ...] = SIMULATOR_LOGGING_POLICIES,
    logprob_nullable: bool = False,
    force: bool = False,
) -> IngestReport:
    date = parse_date(event_date)
    remote = is_url(logs)
    files = partition_files(logs, date, log_root, wh)
    declared = [check_file_duckdb(wh, f) if remote else check_file(f) for f in files]
    if sum(rows for _, _, rows in declared) == 0:
        raise IngestError(f"partition {date} has no rows ({', '.join(files)})")
    dims = _dims(wh, files, declared)
    wh.ensure_schema(*dims)
    digest = footer_hash(wh, files) if remote else content_hash(files)
    last = wh.query("SELECT content_hash FROM ingest_runs WHERE event_date = $d "
                    "ORDER BY finished_at DESC LIMIT 1", {"d": date})
    started = dt.datetime.now(dt.UTC)
    ingest_id = uuid.uuid4().hex[:12]
    if last and last[0][0] == digest and not force:
        kept = wh.query("SELECT count(*) FROM interactions WHERE event_date = $d", {"d": date})
        report = IngestReport(date, ingest_id, files, digest, 0, kept[0][0], 0,
                              "skipped_unchanged")
        _record(wh, report, started)
        return report
    params = {"files": files, "event_date": date, "ingest_id": ingest_id,
              "d_state": dims[0], "d_action": dims[1],
              "policies": list(allowed_logging_policies), "logprob_nullable": logprob_nullable,
              "vectors_null_free": vectors_null_free(wh, files)}
    rows_in = sum(rows for _, _, rows in declared)
    wh.con.begin()
    try:
        rows_kept = _write_partition(wh, params, rows_in, exact_duplicates=False)
        if rows_kept is None:  # a possible duplicate event_id: again, with the exact rule
            wh.con.rollback()
            wh.con.begin()
            rows_kept = _write_partition(wh, params, rows_in, exact_duplicates=True)
        by_rule = dict(wh.query(
            "SELECT rule || ':' || column_name, count(*) FROM quarantine "
            "WHERE ingest_id = $i GROUP BY ALL ORDER BY ALL", {"i": ingest_id}))
        quarantined = sum(by_rule.values())
        if rows_kept + quarantined != rows_in:
            raise IngestError(f"{rows_in} rows read but {rows_kept} kept and {quarantined} "
                              "quarantined")
        report = IngestReport(date, ingest_id, files, digest, rows_in, rows_kept,
                              quarantined, "ingested", by_rule)
        _record(wh, report, started)
        wh.con.execute("DROP TABLE duplicate_rows")
        wh.con.commit()
    except Exception as err:
        wh.con.rollback()
        raise IngestError(f"ingest of {date} failed, nothing was written "
                          f"(files: {', '.join(files)}): {err}") from err
    return report


def _write_partition(wh: Warehouse, params: dict, rows_in: int, exact_duplicates: bool
                     ) -> int | None:
    """Replace the date with its valid rows and quarantine the rest; the number of rows kept,
    or None when the hash check sees a possible duplicate event_id and ``exact_duplicates`` is
    off (the caller then rolls back and runs the exact rule)."""
    wh.run("ingest_rules")
    if exact_duplicates:
        wh.run("ingest_duplicates", params)
    wh.run("ingest_partition", params)
    rows_kept, repeated, seen = wh.run("ingest_duplicate_check", params)[0].fetchone()
    if (repeated or seen) and not exact_duplicates:
        return None
    if rows_kept < rows_in:
        wh.run("ingest_quarantine", params)
    return rows_kept


def _dims(wh: Warehouse, files: list[str], declared: list[tuple[int | None, int | None, int]]
          ) -> tuple[int, int]:
    known = {(s, a) for s, a, _ in declared if s is not None and a is not None}
    if len(known) > 1:
        raise IngestError(f"files of one partition declare different dimensions {sorted(known)}")
    if known:
        return known.pop()
    existing = wh.dims()
    if existing is not None:
        return existing
    row = wh.con.execute(
        "SELECT len(state), len(action) FROM read_parquet($files) GROUP BY ALL "
        "ORDER BY count(*) DESC LIMIT 1", {"files": files}).fetchall()
    if not row or row[0][0] is None:
        raise IngestError(f"cannot infer state/action dimensions from {', '.join(files)}")
    return int(row[0][0]), int(row[0][1])


def _record(wh: Warehouse, report: IngestReport, started: dt.datetime) -> None:
    wh.con.execute(
        "INSERT INTO ingest_runs VALUES ($id, $d, $files, $hash, $rows_in, $kept, $q, $status, "
        "$started, current_timestamp)",
        {"id": report.ingest_id, "d": report.event_date, "files": report.files,
         "hash": report.content_hash, "rows_in": report.rows_in, "kept": report.rows_kept,
         "q": report.rows_quarantined, "status": report.status, "started": started},
    )
