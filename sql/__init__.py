"""DuckDB SQL of the pipeline, shipped as package data and read with ``load``.

Every file starts with a header comment naming its parameters (``$name``, bound through
DuckDB's prepared parameters) and what it guarantees. Only the data layer
(``drpo_core.warehouse``) reads these files.
"""

from __future__ import annotations

import hashlib
from importlib.resources import files

#: Files that only read status or record outcomes about the data, never shape what is stored,
#: filtered, exported or sampled: left out of ``lineage_hash``. Every other file is in it, so a
#: new file counts for lineage until it is listed here.
NOT_LINEAGE = frozenset({
    "day_simulator_config",
    "validation_day_stats",
    "validation_record",
    "validation_stats",
    "warehouse_dims",
    "warehouse_has_table",
    "window_days",
})


def load(name: str) -> str:
    """The text of ``sql/<name>.sql``."""
    resource = files(__name__).joinpath(f"{name}.sql")
    if not resource.is_file():
        raise FileNotFoundError(f"no SQL file {name}.sql in the sql package")
    return resource.read_text(encoding="utf-8")


def names() -> list[str]:
    """Every SQL file of the package, by name (without ``.sql``), sorted."""
    return sorted(p.name.removesuffix(".sql") for p in files(__name__).iterdir()
                  if p.name.endswith(".sql"))


def lineage_names() -> list[str]:
    """The files that shape the data a model is trained and judged on: the schema, every ingest
    rule and statement, the filter, the export and the samples (all but ``NOT_LINEAGE``)."""
    return [n for n in names() if n not in NOT_LINEAGE]


def sql_hash(*names: str) -> str:
    """Short hash of the SQL files' text (lineage: which SQL produced a result)."""
    h = hashlib.sha256()
    for name in names:
        h.update(load(name).encode())
    return h.hexdigest()[:16]


def lineage_hash() -> str:
    """Short hash over the names and text of every file in ``lineage_names``: it changes when
    any SQL that shapes the stored, filtered or exported data changes."""
    h = hashlib.sha256()
    for name in lineage_names():
        h.update(name.encode() + b"\0" + load(name).encode() + b"\0")
    return h.hexdigest()[:16]
