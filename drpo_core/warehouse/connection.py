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


class DatabaseBusyError(RuntimeError):
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

    def query(self, statement: str, params: Mapping[str, Any] | None = None) -> list[tuple]:
        return self.con.execute(statement, dict(params or {})).fetchall()

    def dims(self) -> tuple[int, int] | None:
        rows = self.query("SELECT key, value FROM pipeline_meta WHERE key IN "
                          "('d_state', 'd_action')") if self._has_meta() else []
        meta = dict(rows)
        if "d_state" not in meta:
            return None
        return int(meta["d_state"]), int(meta["d_action"])

    def _has_meta(self) -> bool:
        return self._has_table("pipeline_meta")

    def _has_table(self, name: str) -> bool:
        return bool(self.query("SELECT 1 FROM information_schema.tables "
                               "WHERE table_name = $name AND table_schema = 'main'",
                               {"name": name}))

    def ensure_schema(self, d_state: int, d_action: int) -> None:
        """Create the tables for these dimensions, or check they match the existing ones."""
        existing = self.dims()
        if existing is not None:
            if existing != (d_state, d_action):
                raise ValueError(
                    f"database {self.path} holds d_state={existing[0]}, d_action={existing[1]}; "
                    f"the logs have d_state={d_state}, d_action={d_action}"
                )
            if not self._has_table("event_index"):  # a database from before the event index
                self.run("schema", template={"d_state": d_state, "d_action": d_action})
                self.con.execute("INSERT INTO event_index "
                                 "SELECT hash(event_id), event_date FROM interactions")
            return
        self.run("schema", template={"d_state": d_state, "d_action": d_action})
        self.con.executemany("INSERT INTO pipeline_meta VALUES (?, ?)",
                             [("d_state", str(d_state)), ("d_action", str(d_action))])


def memory_limit() -> str:
    """DuckDB's buffer-pool cap (it spills beyond): ``DRPO_DUCKDB_MEMORY_LIMIT``, default 1.5GB,
    so the whole ingest -> filter -> export path stays well inside a 2-core, small-RAM box."""
    return os.environ.get("DRPO_DUCKDB_MEMORY_LIMIT", "1.5GB")


def _connect(path: Path, read_only: bool, timeout: float) -> duckdb.DuckDBPyConnection:
    """duckdb.connect, waiting up to ``timeout`` s while another process holds the file."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            con.execute("SET TimeZone = 'UTC'")
            con.execute("SET enable_progress_bar = false")
            con.execute("SET memory_limit = $limit", {"limit": memory_limit()})
            return con
        except duckdb.IOException as err:
            if "lock" not in str(err).lower():
                raise
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
