"""Opening the DuckDB file: one writer process at a time, schema on first use, UTC sessions.

DuckDB allows a single writing process per file, and no reader process while one writes.
Writers take an advisory file lock (``<db>.lock``) and wait up to ``timeout`` seconds; then they
fail with "database busy: ... held by pid N". Readers open the file read-only, take no advisory
lock, and wait up to ``timeout`` seconds for a writer to finish.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
from filelock import FileLock, Timeout

import sql

_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


class WarehouseError(ValueError):
    """The warehouse cannot do what was asked; the message is one line that names the file, the
    day or the window, and what was expected (a CLI prints it as it is)."""


class DatabaseBusyError(WarehouseError, RuntimeError):
    """Another process holds the writer lock."""


def split_statements(script: str) -> list[str]:
    """Statements of a SQL file: split on ';' at line ends, comments dropped."""
    lines = [ln for ln in script.splitlines() if not ln.lstrip().startswith("--")]
    parts = re.split(r";\s*$", "\n".join(lines), flags=re.MULTILINE)
    return [p.strip() for p in parts if p.strip()]


@dataclass
class Warehouse:
    """A DuckDB connection plus the SQL runner that binds ``$name`` parameters."""

    con: duckdb.DuckDBPyConnection
    path: Path
    read_only: bool

    def run(self, name: str, params: Mapping[str, Any] | None = None,
            template: Mapping[str, int] | None = None) -> list[duckdb.DuckDBPyRelation | None]:
        """Execute every statement of ``sql/<name>.sql`` with the parameters it names."""
        script = sql.load(name)
        if template:
            script = script.format(**{k: int(v) for k, v in template.items()})
        return self.run_text(script, params, name)

    def run_text(self, script: str, params: Mapping[str, Any] | None = None,
                 name: str = "script") -> list[duckdb.DuckDBPyRelation | None]:
        results = []
        for statement in split_statements(script):
            used = set(_PARAM.findall(statement))
            missing = used - set(params or {})
            if missing:
                raise KeyError(f"{name} needs parameters {sorted(missing)}")
            bound = {k: v for k, v in (params or {}).items() if k in used}
            results.append(self.con.execute(statement, bound) if bound
                           else self.con.execute(statement))
        return results

    def fetch(self, name: str, params: Mapping[str, Any] | None = None) -> list[tuple]:
        """The rows of the last statement of ``sql/<name>.sql``."""
        result = self.run(name, params)[-1]
        return [] if result is None else result.fetchall()

    def query(self, statement: str, params: Mapping[str, Any] | None = None) -> list[tuple]:
        """Rows of an ad-hoc statement (tests and diagnostics; the pipeline uses ``fetch``)."""
        return self.con.execute(statement, dict(params or {})).fetchall()

    def dims(self) -> tuple[int, int] | None:
        meta = dict(self.fetch("warehouse_dims")) if self._has_meta() else {}
        if "d_state" not in meta:
            return None
        return int(meta["d_state"]), int(meta["d_action"])

    def _has_meta(self) -> bool:
        return self.has_table("pipeline_meta")

    def has_table(self, name: str) -> bool:
        return bool(self.fetch("warehouse_has_table", {"name": name}))

    def ensure_schema(self, d_state: int, d_action: int) -> None:
        """Create the tables for these dimensions, or check they match the existing ones."""
        existing = self.dims()
        if existing is not None:
            if existing != (d_state, d_action):
                raise WarehouseError(
                    f"database {self.path} holds d_state={existing[0]}, d_action={existing[1]}; "
                    f"the logs have d_state={d_state}, d_action={d_action}"
                )
            had_index = self.has_table("event_index")  # not in databases from before it
            # tables added since the database was made; CREATE ... IF NOT EXISTS keeps the rest
            self.run("schema", template={"d_state": d_state, "d_action": d_action})
            if not had_index:
                self.run("schema_event_index")
            return
        self.run("schema", template={"d_state": d_state, "d_action": d_action})
        self.run("warehouse_set_dims", {"d_state": d_state, "d_action": d_action})


def memory_limit() -> str:
    """DuckDB's buffer-pool cap (it spills beyond): ``DRPO_DUCKDB_MEMORY_LIMIT``, default 1.5GB,
    so the whole ingest -> filter -> export path stays well inside a 2-core, small-RAM box."""
    return os.environ.get("DRPO_DUCKDB_MEMORY_LIMIT", "1.5GB")


#: A DuckDB database file holds "DUCK" at byte 8 (its main header).
DUCKDB_MAGIC = b"DUCK"
DUCKDB_MAGIC_OFFSET = 8


def check_database_path(path: Path) -> None:
    """Refuse, in one line, a path that cannot hold the warehouse: a folder, or a file that is
    not a DuckDB database (DuckDB's own message is a multi-line IO error)."""
    if path.is_dir():
        raise WarehouseError(f"database {path} is a folder; expected a DuckDB database file "
                             "(a new one is created when the path does not exist)")
    if path.is_file() and path.stat().st_size > 0:
        with open(path, "rb") as fh:
            header = fh.read(DUCKDB_MAGIC_OFFSET + len(DUCKDB_MAGIC))
        if header[DUCKDB_MAGIC_OFFSET:] != DUCKDB_MAGIC:
            raise WarehouseError(f"database {path} is not a DuckDB database file (expected the "
                                 "warehouse's .duckdb file, or a path that does not exist yet)")



def _connect(path: Path, read_only: bool, timeout: float) -> duckdb.DuckDBPyConnection:
    """duckdb.connect, waiting up to ``timeout`` s while another process holds the file."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            Warehouse(con, path, read_only).run("warehouse_session", {"limit": memory_limit()})
            return con
        except duckdb.IOException as err:
            if "lock" not in str(err).lower():
                raise WarehouseError(f"database {path}: cannot open it "
                                     f"({str(err).splitlines()[0]})") from None
            if time.monotonic() >= deadline:
                raise DatabaseBusyError(
                    f"database busy: {path} is in use by another process "
                    f"(waited {timeout:g} s): {str(err).splitlines()[0]}"
                ) from None
            time.sleep(0.2)


@contextmanager
def open_warehouse(path: Path, read_only: bool = False, timeout: float = 30.0
                   ) -> Iterator[Warehouse]:
    """Open the DuckDB file; writers hold ``<db>.lock`` for the whole block."""
    path = Path(path)
    check_database_path(path)
    if read_only:
        if not path.exists():
            raise FileNotFoundError(f"database {path} does not exist")
        con = _connect(path, True, timeout)
        try:
            yield Warehouse(con, path, True)
        finally:
            con.close()
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path) + ".lock")
    owner = Path(str(path) + ".owner")
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        holder = owner.read_text().strip() if owner.exists() else "unknown"
        raise DatabaseBusyError(
            f"database busy: {path} is held by pid {holder} (waited {timeout:g} s)"
        ) from None
    try:
        owner.write_text(str(os.getpid()))
        con = _connect(path, False, max(0.0, timeout))
        try:
            yield Warehouse(con, path, False)
        finally:
            con.close()
    finally:
        owner.unlink(missing_ok=True)
        lock.release()
