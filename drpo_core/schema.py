"""The interaction-log contract (design card §3) as an Arrow schema, and its row-level checks.

One row per logged recommendation. ``state`` and ``action`` are fixed-size float32 lists whose
lengths are recorded in the Parquet schema metadata (``drpo.d_state`` / ``drpo.d_action``); a
producer that writes plain variable-length lists of one length is accepted too.

The row rules of the contract live once, in SQL (sql/ingest_rules.sql), where ingest applies
them; tests/contract_oracle.py re-states them in numpy as the tests' independent oracle.
"""

from __future__ import annotations

import json

import pyarrow as pa

META_D_STATE = b"drpo.d_state"
META_D_ACTION = b"drpo.d_action"
META_SIMULATOR = b"drpo.simulator"

#: Components of the simulator's mixed logging agent; production logs may name others (versions).
SIMULATOR_LOGGING_POLICIES = ("expert", "popular", "random")


def vector_type(dim: int) -> pa.DataType:
    """Fixed-size float32 list; the child is named "element" as Parquet writes it back."""
    return pa.list_(pa.field("element", pa.float32()), dim)


def interaction_schema(
    d_state: int, d_action: int, metadata: dict[bytes, bytes] | None = None
) -> pa.Schema:
    """The Arrow schema of the interaction log, with state/action as fixed-size float32 lists."""
    if d_state <= 0 or d_action <= 0:
        raise ValueError(f"d_state and d_action must be positive, got {d_state}, {d_action}")
    meta = {META_D_STATE: str(d_state).encode(), META_D_ACTION: str(d_action).encode()}
    meta.update(metadata or {})
    return pa.schema(
        [
            pa.field("event_id", pa.string(), nullable=False),
            pa.field("event_time", pa.timestamp("us", tz="UTC"), nullable=False),
            pa.field("event_date", pa.date32(), nullable=False),
            pa.field("user_id", pa.string(), nullable=False),
            pa.field("episode_id", pa.string(), nullable=False),
            pa.field("step", pa.int32(), nullable=False),
            pa.field("state", vector_type(d_state), nullable=False),
            pa.field("action", vector_type(d_action), nullable=False),
            pa.field("item_id", pa.string(), nullable=False),
            pa.field("reward", pa.float64(), nullable=False),
            pa.field("behavior_logprob", pa.float64(), nullable=True),
            pa.field("logging_policy", pa.string(), nullable=False),
        ],
        metadata=meta,
    )


COLUMNS: tuple[str, ...] = tuple(interaction_schema(1, 1).names)
VECTOR_COLUMNS = ("state", "action")


class ContractError(ValueError):
    """A table cannot be read as the interaction log at all (missing/extra columns, bad types)."""


def declared_dim(meta: dict[bytes, bytes], key: bytes) -> int | None:
    """The dimension a metadata ``key`` declares, None when absent; ContractError naming the key
    when its value is not a positive integer."""
    if key not in meta:
        return None
    text = meta[key].decode(errors="replace").strip()
    if not (text.isascii() and text.isdigit()) or int(text) <= 0:
        raise ContractError(f"metadata {key.decode()} must be a positive integer, got {text!r}")
    return int(text)


def dims_from_metadata(schema: pa.Schema) -> tuple[int | None, int | None]:
    """(d_state, d_action) as recorded in the schema metadata, or from fixed-size list types.

    Raises ContractError (a ValueError) naming the key when a recorded value is not a positive
    integer."""
    meta = schema.metadata or {}
    dims: list[int | None] = []
    for col, key in (("state", META_D_STATE), ("action", META_D_ACTION)):
        if key in meta:
            dims.append(declared_dim(meta, key))
        elif col in schema.names and pa.types.is_fixed_size_list(schema.field(col).type):
            dims.append(schema.field(col).type.list_size)
        else:
            dims.append(None)
    return dims[0], dims[1]


def simulator_config_from_metadata(schema: pa.Schema) -> dict | None:
    """The simulator config that produced these logs, if they came from the simulator."""
    raw = (schema.metadata or {}).get(META_SIMULATOR)
    return None if raw is None else json.loads(raw)
