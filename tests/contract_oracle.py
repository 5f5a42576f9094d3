"""The log contract's row rules re-stated in numpy: the tests' oracle for the SQL rules.

The pipeline applies the rules once, in SQL (sql/ingest_rules.sql). This independent
implementation checks what the simulator writes (tests/sim) and what ingest quarantines
(tests/test_schema.py): two implementations that must agree.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from drpo_core.schema import (
    COLUMNS,
    META_D_ACTION,
    META_D_STATE,
    ContractError,
    dims_from_metadata,
    interaction_schema,
)


@dataclass(frozen=True)
class Violation:
    """One broken rule on one row (``row`` is None for table-level rules)."""

    rule: str
    column: str
    row: int | None
    detail: str

    def __str__(self) -> str:
        where = "table" if self.row is None else f"row {self.row}"
        return f"{where}, column {self.column!r}: {self.rule} ({self.detail})"



def _list_lengths(col: pa.ChunkedArray) -> np.ndarray:
    if pa.types.is_fixed_size_list(col.type):
        return np.full(len(col), col.type.list_size, dtype=np.int64)
    lengths = pc.list_value_length(col).to_numpy(zero_copy_only=False)
    return np.where(np.isnan(lengths.astype(float)), -1, lengths).astype(np.int64)


def _flat_finite_rows(col: pa.ChunkedArray, dim: int) -> np.ndarray:
    """Per row: all elements finite. Assumes every row has length ``dim``."""
    flat = pc.list_flatten(col).to_numpy(zero_copy_only=False).astype(np.float64)
    if len(flat) != len(col) * dim:
        raise ContractError("internal: list lengths disagree with the declared dimension")
    return np.isfinite(flat.reshape(len(col), dim)).all(axis=1) if dim else np.ones(len(col), bool)


def check_table(
    table: pa.Table,
    *,
    d_state: int | None = None,
    d_action: int | None = None,
    partition_date: dt.date | None = None,
    allowed_logging_policies: tuple[str, ...] | None = None,
    logprob_nullable: bool = False,
    max_violations_per_rule: int | None = None,
) -> list[Violation]:
    """Check ``table`` against the log contract and return every row-level violation.

    Dimensions default to the schema metadata, then to the most common list length. Missing or
    extra columns are table-level violations (row None): nothing else is checked then.
    """
    violations: list[Violation] = []
    missing = [c for c in COLUMNS if c not in table.column_names]
    extra = [c for c in table.column_names if c not in COLUMNS]
    for c in missing:
        violations.append(Violation("column_missing", c, None, f"expected columns {COLUMNS}"))
    for c in extra:
        violations.append(Violation("column_unexpected", c, None, "not part of the log contract"))
    if missing or extra:
        return violations

    meta_ds, meta_da = dims_from_metadata(table.schema)
    n = table.num_rows
    bad: dict[tuple[str, str], np.ndarray] = {}

    def flag(rule: str, column: str, mask: np.ndarray) -> None:
        if mask.any():
            bad[(rule, column)] = np.flatnonzero(mask)

    for c in COLUMNS:
        if c == "behavior_logprob" and logprob_nullable:
            continue
        flag("not_null", c, table.column(c).is_null().to_numpy(zero_copy_only=False))

    for c, declared in (("state", d_state or meta_ds), ("action", d_action or meta_da)):
        col = table.column(c)
        if not (pa.types.is_list(col.type) or pa.types.is_fixed_size_list(col.type)
                or pa.types.is_large_list(col.type)):
            raise ContractError(f"column {c!r} must be a list of floats, got {col.type}")
        lengths = _list_lengths(col)
        if declared is None:
            valid = lengths[lengths >= 0]
            declared = int(np.bincount(valid).argmax()) if len(valid) else 0
        wrong = (lengths != declared) & (lengths >= 0)
        flag("dimension", c, wrong)
        ok = lengths == declared
        finite = np.ones(n, dtype=bool)
        if ok.any():
            finite[np.flatnonzero(ok)] = _flat_finite_rows(col.filter(pa.array(ok)), declared)
        flag("finite", c, ~finite)

    for c in ("reward", "behavior_logprob"):
        col = table.column(c)
        null = col.is_null().to_numpy(zero_copy_only=False)
        vals = col.to_numpy(zero_copy_only=False).astype(np.float64)
        flag("finite", c, ~null & ~np.isfinite(vals))
    logp = table.column("behavior_logprob").to_numpy(zero_copy_only=False).astype(np.float64)
    flag("logprob_nonpositive", "behavior_logprob", np.isfinite(logp) & (logp > 0))

    step = table.column("step").to_numpy(zero_copy_only=False).astype(np.float64)
    flag("step_nonnegative", "step", np.nan_to_num(step, nan=0.0) < 0)

    ids = table.column("event_id")
    dup = pc.is_in(ids, value_set=_duplicated_values(ids)).to_numpy(zero_copy_only=False)
    flag("unique", "event_id", dup)

    if partition_date is not None:
        dates = table.column("event_date").cast(pa.date32()).to_pylist()
        flag("partition_date", "event_date",
             np.array([d is not None and d != partition_date for d in dates]))
    times = table.column("event_time")
    if pa.types.is_timestamp(times.type) and times.type.unit == "ns":
        ns = times.cast(pa.int64()).to_numpy(zero_copy_only=False)
        flag("timestamp_precision", "event_time", ns % 1000 != 0)
    if pa.types.is_timestamp(times.type):
        t_date = (pc.cast(times, pa.timestamp("us", tz="UTC"), safe=False) if times.type.tz
                  else times)
        day = pc.floor_temporal(t_date, unit="day").cast(pa.date32())
        mism = pc.not_equal(day, table.column("event_date").cast(pa.date32()))
        flag("event_time_in_day", "event_time", mism.to_numpy(zero_copy_only=False) == 1)

    if allowed_logging_policies is not None:
        allowed = pa.array(list(allowed_logging_policies))
        inset = pc.is_in(table.column("logging_policy"), value_set=allowed)
        flag("logging_policy_allowed", "logging_policy",
             ~inset.to_numpy(zero_copy_only=False).astype(bool)
             & ~table.column("logging_policy").is_null().to_numpy(zero_copy_only=False))

    for (rule, column), rows in sorted(bad.items()):
        for r in rows[:max_violations_per_rule]:
            violations.append(Violation(rule, column, int(r), _rule_text(rule)))
    return violations


def _duplicated_values(ids: pa.ChunkedArray) -> pa.Array:
    counts = pc.value_counts(ids.drop_null())
    values = counts.field("values")
    return values.filter(pc.greater(counts.field("counts"), 1))


_RULE_TEXT = {
    "not_null": "value must not be null",
    "dimension": "list length must equal the declared dimension",
    "finite": "values must be finite (no NaN or inf)",
    "logprob_nonpositive": "a discrete log-probability must be <= 0",
    "step_nonnegative": "step must be >= 0",
    "unique": "event_id must be unique",
    "partition_date": "event_date must equal the partition's date",
    "event_time_in_day": "event_time must fall within event_date (UTC)",
    "timestamp_precision": "event_time must be a whole microsecond",
    "logging_policy_allowed": "logging_policy must be one of the declared values",
}


def _rule_text(rule: str) -> str:
    return _RULE_TEXT.get(rule, rule)


def conform(table: pa.Table) -> pa.Table:
    """Cast a contract-valid table to the canonical schema (variable lists -> fixed-size lists).

    Raises :class:`ContractError` naming the first violation if the table is not valid.
    """
    violations = check_table(table, logprob_nullable=True, max_violations_per_rule=1)
    if violations:
        raise ContractError(f"table breaks the log contract: {violations[0]}")
    d_state = _list_lengths(table.column("state"))
    d_action = _list_lengths(table.column("action"))
    ds = int(d_state[0]) if len(d_state) else (dims_from_metadata(table.schema)[0] or 1)
    da = int(d_action[0]) if len(d_action) else (dims_from_metadata(table.schema)[1] or 1)
    extra_meta = {k: v for k, v in (table.schema.metadata or {}).items()
                  if k not in (META_D_STATE, META_D_ACTION)}
    target = interaction_schema(ds, da, extra_meta)
    return table.select(list(COLUMNS)).cast(target)
