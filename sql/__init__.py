"""DuckDB SQL of the pipeline, shipped as package data and read with ``load``.

Every file starts with a header comment naming its parameters (``$name``, bound through
DuckDB's prepared parameters) and what it guarantees.
"""

from __future__ import annotations

import hashlib
from importlib.resources import files


def load(name: str) -> str:
    """The text of ``sql/<name>.sql``."""
    resource = files(__name__).joinpath(f"{name}.sql")
    if not resource.is_file():
        raise FileNotFoundError(f"no SQL file {name}.sql in the sql package")
    return resource.read_text(encoding="utf-8")


def sql_hash(*names: str) -> str:
    """Short hash of the SQL files' text (lineage: which SQL produced a result)."""
    h = hashlib.sha256()
    for name in names:
        h.update(load(name).encode())
    return h.hexdigest()[:16]
