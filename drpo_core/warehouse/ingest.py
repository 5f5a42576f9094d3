"""Idempotent, transactional ingest of one ``event_date`` partition (sql/ingest_*.sql).

* The day's files are the files directly in ``event_date=YYYY-MM-DD/``: writer markers
  (hidden names, ``_SUCCESS``, ``*.crc``, ``_temporary/``) are ignored, a file in a subfolder is
  an error (never skipped). With a log root (``DRPO_LOG_ROOT``) the day folder and every file
  must resolve inside it; URL roots are compared by scheme, bucket and path segments.
* File-level problems (not Parquet, truncated, a repeated, missing or extra column, a column of
  a type the contract cannot hold, declared dimensions that are no positive integer or that
  the vectors do not have, data pages that break the footer's column statistics) abort with one
  line naming the file (and column, found and expected type or dimension) and leave the
  database exactly as before.
* The files are read as written: folder names never become columns (no hive auto-detection).
* Row-level problems move the row, raw, to ``quarantine`` with the rule and column it broke;
  valid rows of a partly bad file are kept. No value is changed on the way in: a fractional or
  out-of-range ``step`` and a vector element beyond float32 are rules, not casts.
* Re-running a date replaces exactly that date; an unchanged partition (same content hash as
  its last ingest) is skipped unless ``force``.
* The simulator config a day's footers carry is stored with the day (``day_metadata``), so
  evaluation never reopens the raw logs (``drpo_core.warehouse.days.simulator_config``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from drpo_core.schema import (
    COLUMNS,
    META_D_ACTION,
    META_D_STATE,
    META_SIMULATOR,
    SIMULATOR_LOGGING_POLICIES,
    VECTOR_COLUMNS,
    ContractError,
    declared_dim,
    dims_from_metadata,
)
from drpo_core.warehouse.connection import Warehouse, WarehouseError

URL_SCHEMES = ("s3://", "gs://", "gcs://", "az://", "abfss://", "http://", "https://")


class IngestError(WarehouseError):
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
    return str(path).lower().startswith(URL_SCHEMES)


def is_marker(name: str) -> bool:
    """Files and folders a writer leaves beside the data, never data: hidden names (``.crc``
    checksums, ``.spark-staging``), Spark's ``_SUCCESS`` / ``_committed_*`` / ``_temporary``,
    and ``*.crc`` checksum files."""
    return name.startswith((".", "_")) or name.endswith(".crc")


def _url_parts(url: str) -> tuple[str, str, list[str]]:
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s not in ("", ".")]
    if ".." in segments:
        raise IngestError(f"{url}: '..' is not allowed in a log location")
    return parts.scheme.lower(), parts.netloc, segments


def check_within_root(location: Path | str, log_root: Path | str | None) -> None:
    """Refuse a location outside ``log_root`` (``DRPO_LOG_ROOT``). URLs are compared by scheme,
    bucket and whole path segments (``s3://bucket/logs-evil`` is not inside ``s3://bucket/logs``)
    and a URL root is never read as a local path; local paths are compared resolved, so a
    symlink that leads outside the root is outside."""
    if log_root is None:
        return
    if is_url(log_root) or is_url(location):
        inside = is_url(log_root) and is_url(location)
        if inside:
            scheme, bucket, segments = _url_parts(str(location))
            r_scheme, r_bucket, r_segments = _url_parts(str(log_root))
            inside = ((scheme, bucket) == (r_scheme, r_bucket)
                      and segments[: len(r_segments)] == r_segments)
    else:
        inside = Path(location).resolve().is_relative_to(Path(log_root).resolve())
    if not inside:
        shown = Path(location).resolve() if not is_url(location) else location
        raise IngestError(f"{shown} is outside the configured log root {log_root}")


def _subfolder_error(path: str, folder: str) -> IngestError:
    return IngestError(f"{path}: a subfolder of partition {folder}; ingest reads only the files "
                       "directly in the day's folder (move them up, or remove the subfolder)")


def select_files(folder: str, relative: list[str]) -> list[str]:
    """The data files among the paths found under a day's folder (relative to it, '/'-separated):
    markers are ignored (also inside marker folders such as ``_temporary``), a file in a subfolder
    is an error rather than skipped, every other file is data (a file that is not Parquet then
    fails the file check with its name)."""
    files = []
    for rel in sorted(relative):
        parts = rel.split("/")
        if any(is_marker(part) for part in parts):
            continue
        if len(parts) > 1:
            raise _subfolder_error(f"{folder}/{rel}", folder)
        files.append(f"{folder}/{rel}")
    return files


def remote_partition_files(wh: Warehouse, folder: str) -> list[str]:
    """The data files of a day's folder listed through DuckDB's ``glob`` (object stores)."""
    pattern = f"{folder}/**"
    try:
        found = [r[0] for r in wh.fetch("ingest_list_files", {"pattern": pattern})]
    except duckdb.Error as err:
        raise IngestError(f"cannot list {pattern} ({first_line(err)})") from None
    return select_files(folder, [f.removeprefix(folder).lstrip("/") for f in found])


def local_partition_files(folder: Path, log_root: Path | str | None) -> list[str]:
    """The data files of a local day folder; the folder and every file are checked against
    the log root after resolving symlinks."""
    check_within_root(folder, log_root)
    if not folder.is_dir():
        raise IngestError(f"no partition folder {folder}")
    files = []
    for entry in sorted(folder.iterdir()):
        if is_marker(entry.name):
            continue
        check_within_root(entry, log_root)
        if entry.is_dir():
            raise _subfolder_error(str(entry), str(folder))
        files.append(str(entry))
    return files


def partition_files(logs: Path | str, event_date: dt.date, log_root: Path | str | None = None,
                    wh: Warehouse | None = None) -> list[str]:
    """The Parquet files of ``logs/event_date=YYYY-MM-DD/``: a local folder, or an object-store
    prefix listed by DuckDB's ``glob`` (its httpfs extension and credentials must be set up)."""
    name = f"event_date={event_date.isoformat()}"
    if is_url(logs):
        prefix = str(logs).rstrip("/")
        check_within_root(prefix, log_root)
        if wh is None:
            raise IngestError(f"{prefix}: listing an object store needs a DuckDB connection")
        files = remote_partition_files(wh, f"{prefix}/{name}")
        if not files:
            raise IngestError(f"no Parquet files in {prefix}/{name}")
        return files
    folder = Path(logs).resolve() / name
    files = local_partition_files(folder, log_root)
    if not files:
        raise IngestError(f"partition {folder} is empty")
    return files


def first_line(err: BaseException) -> str:
    """An error's first line, without DuckDB's 'Invalid Input Error: ' for errors the SQL
    raises itself."""
    line = (str(err).strip().splitlines() or [type(err).__name__])[0]
    return line.removeprefix("Invalid Input Error: ")


def _is_string(t: pa.DataType) -> bool:
    return (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)
            or (pa.types.is_dictionary(t) and _is_string(t.value_type)))


def _is_number(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t)


def _is_float_list(t: pa.DataType) -> bool:
    return ((pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t))
            and pa.types.is_floating(t.value_type))


_DUCKDB_INTEGERS = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT",
                    "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT")
_DUCKDB_FLOATS = ("FLOAT", "DOUBLE")


def _duckdb_float_list(t: str) -> bool:
    head, bracket, rest = t.partition("[")
    return head in _DUCKDB_FLOATS and bracket == "[" and (rest == "]" or (
        rest.endswith("]") and rest[:-1].isdigit()))


#: What each contract column may be written as: the row rules (sql/ingest_rules.sql) then hold
#: its values to the contract without a cast that changes one (a fractional step, a float64
#: vector element beyond float32 and a sub-microsecond event_time are rules, not casts).
#: column -> (what to write, the contract's own type, accepts an Arrow type, accepts a DuckDB
#: type as DESCRIBE names it).
_WRITABLE = {
    **{c: ("a string", "string", _is_string, lambda t: t == "VARCHAR")
       for c in ("event_id", "user_id", "episode_id", "item_id", "logging_policy")},
    "event_time": ("a timestamp", "timestamp[us, tz=UTC]", pa.types.is_timestamp,
                   lambda t: t.startswith("TIMESTAMP")),
    "event_date": ("a date", "date32", lambda t: pa.types.is_date(t) or pa.types.is_timestamp(t),
                   lambda t: t == "DATE" or t.startswith("TIMESTAMP")),
    "step": ("an integer", "int32", _is_number,
             lambda t: t in _DUCKDB_INTEGERS or t in _DUCKDB_FLOATS),
    "reward": ("a number", "double", _is_number,
               lambda t: t in _DUCKDB_INTEGERS or t in _DUCKDB_FLOATS),
    "behavior_logprob": ("a number", "double (nullable)",
                         lambda t: _is_number(t) or pa.types.is_null(t),
                         lambda t: t in _DUCKDB_INTEGERS or t in _DUCKDB_FLOATS or t == "NULL"),
    "state": ("a list of floats", "fixed_size_list<float>[d_state]", _is_float_list,
              _duckdb_float_list),
    "action": ("a list of floats", "fixed_size_list<float>[d_action]", _is_float_list,
               _duckdb_float_list),
}
#: Rows read to check declared dimensions against variable-length vectors (the first rows of
#: the first row group; a fixed-size list type carries its length in the schema).
DIM_SAMPLE_ROWS = 100


def _check_columns(path: str, names: list[str]) -> None:
    repeated = sorted({c for c in names if names.count(c) > 1})
    if repeated:
        raise IngestError(f"{path}: column(s) {repeated} appear more than once; the log contract "
                          "names each column once")
    missing = [c for c in COLUMNS if c not in names]
    extra = [c for c in names if c not in COLUMNS]
    if missing:
        raise IngestError(f"{path}: missing column(s) {missing}; the log contract has {COLUMNS}")
    if extra:
        raise IngestError(f"{path}: unexpected column(s) {extra}; the log contract has {COLUMNS}")


def _wrong_type(path: str, column: str, found: object) -> IngestError:
    kind, contract, _, _ = _WRITABLE[column]
    return IngestError(f"{path}: column {column!r} must be {kind} (the log contract's "
                       f"{contract}), got {found}")


def _declared(path: str, meta: dict[bytes, bytes]) -> tuple[int | None, int | None]:
    try:
        return declared_dim(meta, META_D_STATE), declared_dim(meta, META_D_ACTION)
    except ContractError as err:
        raise IngestError(f"{path}: {err}") from None


def _check_declared_length(path: str, column: str, declared: int | None,
                           lengths: list[int]) -> None:
    """Refuse a file whose metadata declares a vector length no vector of ``lengths`` (its fixed
    size, or a sample of its rows) has: every row would break dimension:<column>."""
    if declared is None or not lengths or declared in lengths:
        return
    found = max(set(lengths), key=lengths.count)
    key = (META_D_STATE if column == "state" else META_D_ACTION).decode()
    raise IngestError(f"{path}: metadata {key} declares {declared} but column {column!r} holds "
                      f"vectors of {found}; declare the vectors' length")


def _sampled_lengths(path: str, column: str) -> list[int]:
    batch = next(pq.ParquetFile(path).iter_batches(batch_size=DIM_SAMPLE_ROWS, columns=[column]),
                 None)
    if batch is None:
        return []
    return [n for n in pc.list_value_length(batch.column(0)).to_pylist() if n is not None]


def check_file(path: str) -> tuple[int | None, int | None, int]:
    """File-level contract: readable Parquet, each contract column once and no other, each
    written as a type the contract can hold (named with the one it expects), declared
    dimensions readable and matching the vectors.

    Returns (d_state, d_action, rows) with dims None when the file does not declare them."""
    try:
        meta = pq.read_metadata(path)
        schema = meta.schema.to_arrow_schema()
    except (pa.ArrowInvalid, OSError) as err:
        raise IngestError(f"{path}: not a readable Parquet file ({first_line(err)})") from None
    _check_columns(path, schema.names)
    for c in COLUMNS:
        found = schema.field(c).type
        if not _WRITABLE[c][2](found):
            raise _wrong_type(path, c, found)
    try:
        d_state, d_action = dims_from_metadata(schema)
    except ContractError as err:
        raise IngestError(f"{path}: {err}") from None
    for c, declared in zip(VECTOR_COLUMNS, (d_state, d_action), strict=True):
        if declared is None:
            continue
        kind = schema.field(c).type
        lengths = ([kind.list_size] if pa.types.is_fixed_size_list(kind)
                   else _sampled_lengths(path, c))
        _check_declared_length(path, c, declared, lengths)
    return d_state, d_action, meta.num_rows


def top_level_names(elements: list[tuple[str, int]]) -> list[str]:
    """The top-level column names of a Parquet schema listed depth first from its root as
    (name, number of children)."""
    names, i = [], 1
    for _ in range(elements[0][1] if elements else 0):
        names.append(elements[i][0])
        pending = 1  # this element and the descendants still to skip
        while pending:
            pending += elements[i][1] - 1
            i += 1
    return names


def check_file_duckdb(wh: Warehouse, path: str) -> tuple[int | None, int | None, int]:
    """``check_file`` through DuckDB, for files pyarrow cannot open (object stores)."""
    try:
        names = top_level_names(wh.fetch("ingest_file_schema", {"file": path}))
        described = wh.fetch("ingest_file_columns", {"file": path})
        rows = wh.fetch("ingest_file_rows", {"file": path})[0][0]
        meta = file_metadata(wh, [path]).get(path, {})
    except duckdb.Error as err:
        raise IngestError(f"{path}: not a readable Parquet file ({first_line(err)})") from None
    _check_columns(path, names)
    types = {r[0]: r[1] for r in described}
    for c in COLUMNS:
        if not _WRITABLE[c][3](types[c]):
            raise _wrong_type(path, c, types[c])
    dims = _declared(path, {k.encode(): v.encode() for k, v in meta.items()})
    fixed = {c: types[c].rpartition("[")[2].rstrip("]") for c in VECTOR_COLUMNS}
    sample = None
    for i, (c, declared) in enumerate(zip(VECTOR_COLUMNS, dims, strict=True)):
        if declared is None:
            continue
        if fixed[c]:
            lengths = [int(fixed[c])]
        else:
            try:
                sample = sample or wh.fetch("ingest_file_vector_lengths",
                                            {"file": path, "rows": DIM_SAMPLE_ROWS})
            except duckdb.Error as err:
                raise IngestError(f"{path}: not a readable Parquet file "
                                  f"({first_line(err)})") from None
            lengths = [r[i] for r in sample if r[i] is not None]
        _check_declared_length(path, c, declared, lengths)
    return dims[0], dims[1], int(rows)


def file_metadata(wh: Warehouse, files: list[str]) -> dict[str, dict[str, str]]:
    """The footers' key-value metadata by file (local paths or object-store URLs)."""
    meta: dict[str, dict[str, str]] = {f: {} for f in files}
    for file_name, key, value in wh.fetch("ingest_file_metadata", {"files": files}):
        meta.setdefault(file_name, {})[key] = value
    return meta


def day_simulator_config(wh: Warehouse, files: list[str]) -> str | None:
    """The simulator config (JSON text) the day's files carry, None when they carry none; the
    files of one day must agree."""
    key = META_SIMULATOR.decode()
    configs = {meta.get(key) for meta in file_metadata(wh, files).values()}
    if len(configs) > 1:
        raise IngestError(f"the files of one partition carry different simulator configs "
                          f"({', '.join(files)}); expected one config per day")
    return configs.pop() if configs else None


def footer_hash(wh: Warehouse, files: list[str]) -> str:
    """Content fingerprint of remote files from their Parquet footers (name, size, rows,
    footer size, writer), so an unchanged object-store partition is skipped too."""
    rows = wh.fetch("ingest_footer_hash", {"files": files})
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def vectors_null_free(wh: Warehouse, files: list[str]) -> bool:
    """Whether the Parquet footers count no null state or action element in any row group (the
    contract_rows macro then checks finiteness with a cheaper function that rejects nulls);
    False when a writer left the counts out."""
    return wh.fetch("ingest_vectors_null_free", {"files": files})[0][0]


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
    simulator = day_simulator_config(wh, files)
    last = wh.fetch("ingest_last_hash", {"event_date": date})
    started = dt.datetime.now(dt.UTC)
    ingest_id = uuid.uuid4().hex[:12]
    day = {"event_date": date, "ingest_id": ingest_id, "simulator_config": simulator}
    if last and last[0][0] == digest and not force:
        kept = wh.fetch("ingest_rows_stored", {"event_date": date})[0][0]
        report = IngestReport(date, ingest_id, files, digest, 0, kept, 0, "skipped_unchanged")
        with transaction(wh, date, files):
            wh.run("ingest_day_metadata", day)  # for days ingested before day_metadata existed
            _record(wh, report, started)
        return report
    params = {"files": files, "event_date": date, "ingest_id": ingest_id,
              "d_state": dims[0], "d_action": dims[1],
              "policies": list(allowed_logging_policies), "logprob_nullable": logprob_nullable,
              "vectors_null_free": vectors_null_free(wh, files)}
    rows_in = sum(rows for _, _, rows in declared)
    with transaction(wh, date, files):
        rows_kept = _write_partition(wh, params, rows_in, exact_duplicates=False)
        if rows_kept is None:  # a possible duplicate event_id: again, with the exact rule
            wh.con.rollback()
            wh.con.begin()
            rows_kept = _write_partition(wh, params, rows_in, exact_duplicates=True)
        by_rule = dict(wh.fetch("ingest_quarantine_counts", {"ingest_id": ingest_id}))
        quarantined = sum(by_rule.values())
        if rows_kept + quarantined != rows_in:
            raise IngestError(f"{rows_in} rows read but {rows_kept} kept and {quarantined} "
                              "quarantined")
        report = IngestReport(date, ingest_id, files, digest, rows_in, rows_kept,
                              quarantined, "ingested", by_rule)
        wh.run("ingest_day_metadata", day)
        _record(wh, report, started)
    return report


@contextmanager
def transaction(wh: Warehouse, date: dt.date, files: list[str]) -> Iterator[None]:
    """One transaction: committed at the end of the block, rolled back on any error, which is
    re-raised as one IngestError line that keeps the cause's own text (a failed commit's
    "No space left on device" included; a rollback after a failed commit, when DuckDB has
    already ended the transaction, must not replace it)."""
    wh.con.begin()
    try:
        yield
        wh.con.commit()
    except Exception as err:
        with suppress(duckdb.Error):
            wh.con.rollback()
        raise IngestError(f"ingest of {date} failed, nothing was written "
                          f"(files: {', '.join(files)}): {first_line(err)}") from err


def _write_partition(wh: Warehouse, params: dict, rows_in: int, exact_duplicates: bool
                     ) -> int | None:
    """Replace the date with its valid rows and quarantine the rest; the number of rows kept,
    or None when the hash check sees a possible duplicate event_id and ``exact_duplicates`` is
    off (the caller then rolls back and runs the exact rule)."""
    wh.run("ingest_file_bounds", params)
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
    by_file = {f: (s, a) for f, (s, a, _) in zip(files, declared, strict=True)
               if s is not None and a is not None}
    known = set(by_file.values())
    if len(known) > 1:
        listed = ", ".join(f"{f} (d_state={s}, d_action={a})" for f, (s, a) in by_file.items())
        raise IngestError(f"files of one partition declare different dimensions: {listed}; "
                          "expected one (d_state, d_action) per day")
    if known:
        return known.pop()
    existing = wh.dims()
    if existing is not None:
        return existing
    row = wh.fetch("ingest_infer_dims", {"files": files})
    if not row or row[0][0] is None:
        raise IngestError(f"cannot infer state/action dimensions from {', '.join(files)}")
    return int(row[0][0]), int(row[0][1])


def _record(wh: Warehouse, report: IngestReport, started: dt.datetime) -> None:
    wh.run("ingest_record", {
        "ingest_id": report.ingest_id, "event_date": report.event_date, "files": report.files,
        "content_hash": report.content_hash, "rows_in": report.rows_in,
        "rows_kept": report.rows_kept, "rows_quarantined": report.rows_quarantined,
        "status": report.status, "started_at": started})
