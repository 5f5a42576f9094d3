"""Training data: interaction logs (Parquet or Arrow) to torch tensors.

Fixed-size list columns become ``(N, d)`` tensors as zero-copy views of the Arrow child buffer
(one copy only when a column spans several chunks). Logs written by producers with plain
variable-length lists are cast to fixed-size lists first.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import warnings
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Self

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import torch

from drpo_core.schema import (
    COLUMNS,
    ContractError,
    dims_from_metadata,
    simulator_config_from_metadata,
    vector_type,
)

TRAINING_COLUMNS = ("state", "action", "reward", "behavior_logprob")


@dataclass
class TrainingData:
    """Tensors of one training window (row order is the log's order; sampling shuffles).

    Session data (issue 11, ``DataNeeds``): ``reward`` holds the discounted return-to-go of the
    row's session when ``return_gamma`` is set (None: the logged reward), and ``next_state`` /
    ``done`` carry the episode links (the next row of the episode; done = 1.0 on its last row,
    where next_state is the row's own state and is never used). drpo_core/warehouse/sessions.py
    computes both, in SQL, for the warehouse and the Parquet path alike.
    """

    state: torch.Tensor  # (N, d_state) float32
    action: torch.Tensor  # (N, d_action) float32
    reward: torch.Tensor  # (N,) float32
    behavior_logprob: torch.Tensor  # (N,) float32, NaN where not logged
    weight: torch.Tensor | None = None  # (N,) sampling weight (Q* density ratio); None = 1
    next_state: torch.Tensor | None = None  # (N, d_state) the episode's next state
    done: torch.Tensor | None = None  # (N,) 1.0 on the last row of an episode, else 0.0
    return_gamma: float | None = None  # reward is the return-to-go with this gamma; None: r

    def __post_init__(self) -> None:
        n = self.state.shape[0]
        if (self.next_state is None) != (self.done is None):
            raise ValueError("next_state and done come together (the episode links): got "
                             f"{'next_state' if self.next_state is not None else 'done'} only")
        for name in ("action", "reward", "behavior_logprob", "weight", "next_state", "done"):
            value = getattr(self, name)
            if value is not None and value.shape[0] != n:
                raise ValueError(f"{name} has {value.shape[0]} rows, state has {n}")
        if self.next_state is not None and self.next_state.shape[1:] != self.state.shape[1:]:
            raise ValueError(f"next_state has shape {tuple(self.next_state.shape)}, state "
                             f"{tuple(self.state.shape)}")

    @property
    def n_rows(self) -> int:
        return int(self.state.shape[0])

    @property
    def d_state(self) -> int:
        return int(self.state.shape[1])

    @property
    def d_action(self) -> int:
        return int(self.action.shape[1])

    @property
    def has_transitions(self) -> bool:
        return self.next_state is not None

    def _moved(self, device: torch.device | str) -> dict[str, Any]:
        """Every field, tensors moved to ``device``."""
        return {f.name: v.to(device) if isinstance(v := getattr(self, f.name), torch.Tensor)
                else v for f in fields(self)}

    def to(self, device: torch.device | str) -> Self:
        return type(self)(**self._moved(device))

    def fingerprint(self) -> str:
        """Cheap content hash: shapes plus every reward and a strided sample of the vectors."""
        h = hashlib.sha256()
        h.update(f"{self.n_rows}x{self.d_state}x{self.d_action}".encode())
        h.update(self.reward.detach().cpu().numpy().tobytes())
        stride = max(1, self.n_rows // 1024)
        h.update(self.state[::stride].detach().cpu().numpy().tobytes())
        h.update(self.action[::stride].detach().cpu().numpy().tobytes())
        if self.weight is not None:
            h.update(self.weight.detach().cpu().numpy().tobytes())
        if self.next_state is not None and self.done is not None:
            h.update(self.done.detach().cpu().numpy().tobytes())
            h.update(self.next_state[::stride].detach().cpu().numpy().tobytes())
        if self.return_gamma is not None:
            h.update(f"return_gamma={self.return_gamma!r}".encode())
        return h.hexdigest()[:16]


@dataclass(kw_only=True)
class DrawnSample(TrainingData):
    """A training sample drawn before training (out of core, drpo_core.warehouse.sample).

    Draw j of the ``n_draws`` (with replacement, weighted) feeds step j // batch_size, so the
    trainer consumes the sample in order and never holds the window. A rank of a distributed run
    holds only its own draws (position j with (j mod batch_size) // (batch_size / world_size)
    = rank, disjoint across ranks) as ``state``/``action``/``reward``/``behavior_logprob``, and
    the rewards of every draw (``reward_all``: the global batch the top-P filter ranks).
    """

    reward_all: torch.Tensor  # (n_draws,) rewards of all draws, in draw order
    batch_size: int  # global batch size N the sample was drawn for
    rank: int = 0
    world_size: int = 1
    source: str = ""  # identity of the draw: window fingerprint, filter, seed
    dataset_kappa: float | None = None  # an objective's dataset-level top-kappa, applied in SQL

    def __post_init__(self) -> None:
        super().__post_init__()
        shard, rest = divmod(self.batch_size, self.world_size)
        if rest or self.reward_all.shape[0] % self.batch_size:
            raise ValueError(f"{self.reward_all.shape[0]} draws do not split into global "
                             f"batches of {self.batch_size} over {self.world_size} processes")
        if self.n_rows != self.steps * shard:
            raise ValueError(f"rank {self.rank} holds {self.n_rows} draws, expected "
                             f"{self.steps * shard}")

    @property
    def steps(self) -> int:
        """Training steps the sample covers."""
        return int(self.reward_all.shape[0]) // self.batch_size

    def fingerprint(self) -> str:
        """The draw's identity (window content, weights, seed), the same on every rank and for
        any number of steps: a sample drawn for more steps starts with the same draws, so a run
        resumed with a larger ``steps`` continues on the batches it would have seen."""
        h = hashlib.sha256()
        h.update(f"{self.source}|{self.batch_size}|{self.d_state}x{self.d_action}".encode())
        return h.hexdigest()[:16]


def _vector_tensor(col: pa.ChunkedArray | pa.Array, name: str) -> torch.Tensor:
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if not pa.types.is_fixed_size_list(arr.type):
        lengths = pc.unique(pc.list_value_length(arr)).to_pylist()
        if len(lengths) != 1 or lengths[0] is None:
            raise ContractError(f"column {name!r}: lists must all have one length, got {lengths}")
        arr = arr.cast(vector_type(int(lengths[0])))
    dim = arr.type.list_size
    if arr.null_count:
        raise ContractError(f"column {name!r} has {arr.null_count} null rows")
    values = arr.values if arr.offset == 0 else arr.flatten()
    if not pa.types.is_float32(values.type):
        values = values.cast(pa.float32())
    flat = values.to_numpy(zero_copy_only=values.null_count == 0)
    with warnings.catch_warnings():  # Arrow buffers are read-only; training never writes to them
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(flat).view(-1, dim)


def _scalar_tensor(col: pa.ChunkedArray) -> torch.Tensor:
    values = col.cast(pa.float32()).to_numpy()  # nulls become NaN
    return torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))


def table_to_training_data(table: pa.Table) -> TrainingData:
    """Arrow table (at least state, action, reward, behavior_logprob) to tensors."""
    missing = [c for c in TRAINING_COLUMNS if c not in table.column_names]
    if missing:
        raise ContractError(f"training data is missing columns {missing}")
    return TrainingData(
        state=_vector_tensor(table.column("state"), "state"),
        action=_vector_tensor(table.column("action"), "action"),
        reward=_scalar_tensor(table.column("reward")),
        behavior_logprob=_scalar_tensor(table.column("behavior_logprob")),
    )


def log_dataset(path: Path) -> ds.Dataset:
    """The Parquet logs under ``path`` (hive folders ``event_date=YYYY-MM-DD``), sorted."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"log directory {path} does not exist")
    files = sorted(p for p in path.rglob("*.parquet") if not p.name.startswith("."))
    if not files:
        raise FileNotFoundError(f"no Parquet files under {path}")
    # event_date is a column of every file (the contract); the hive folders only help pruning
    return ds.dataset([str(f) for f in files], format="parquet")


def date_filter(start: dt.date | None, end: dt.date | None) -> pc.Expression | None:
    """start <= event_date <= end as a dataset filter (None: every row)."""
    flt = None
    if start is not None:
        flt = pc.field("event_date") >= pa.scalar(start, pa.date32())
    if end is not None:
        cond = pc.field("event_date") <= pa.scalar(end, pa.date32())
        flt = cond if flt is None else flt & cond
    return flt


def read_logs(path: Path, start: dt.date | None = None, end: dt.date | None = None,
              columns: tuple[str, ...] = COLUMNS) -> pa.Table:
    """Rows of the logs under ``path`` with start <= event_date <= end, in file order."""
    table = log_dataset(path).to_table(columns=list(columns), filter=date_filter(start, end))
    if table.num_rows == 0:
        raise ValueError(f"no rows in {path} between {start} and {end}")
    return table


def log_metadata(path: Path) -> tuple[tuple[int | None, int | None], dict | None]:
    """(d_state, d_action) and the simulator config recorded in the logs' Parquet schema."""
    schema = log_dataset(path).schema
    return dims_from_metadata(schema), simulator_config_from_metadata(schema)


def first_non_finite(table: pa.Table) -> tuple[int, str] | None:
    """(row, column) of the first NaN or inf in state, action or reward, else None
    (behavior_logprob may be NaN: not logged)."""
    found = []
    for column in ("state", "action", "reward"):
        col = table.column(column).combine_chunks()
        if pa.types.is_list(col.type) or pa.types.is_fixed_size_list(col.type):
            flat = np.asarray(col.flatten().to_numpy(zero_copy_only=False), dtype=np.float64)
            bad = ~np.isfinite(flat)
            if bad.any():
                lengths = pc.list_value_length(col).to_numpy(zero_copy_only=False)
                found.append((int(np.searchsorted(np.cumsum(lengths), bad.argmax(),
                                                  side="right")), column))
        else:
            bad = ~np.isfinite(np.asarray(col.to_numpy(zero_copy_only=False), np.float64))
            if bad.any():
                found.append((int(bad.argmax()), column))
    return min(found) if found else None


def load_training_data(path: Path, start: dt.date | None = None,
                       end: dt.date | None = None) -> TrainingData:
    """The logs' rows as tensors; a NaN or inf is refused naming its file, row and column
    (``drpo ingest`` would quarantine that row; training on it makes the loss non-finite).
    Session data (return-to-go, episode links): drpo_core.warehouse.sessions.load_training_logs.
    """
    return table_to_training_data(read_training_table(path, start, end))


def read_training_table(path: Path, start: dt.date | None = None, end: dt.date | None = None,
                        extra: tuple[str, ...] = ()) -> pa.Table:
    """The training columns (plus ``extra`` contract columns) of the logs' rows, in file order;
    a NaN or inf in state, action or reward is refused naming its file, row and column."""
    table = read_logs(path, start, end, TRAINING_COLUMNS + extra)
    if (bad := first_non_finite(table)) is not None:
        raise ContractError(_locate(path, start, end, bad))
    return table


def _locate(path: Path, start: dt.date | None, end: dt.date | None, bad: tuple[int, str]
            ) -> str:
    """'<file>: row <r>, column <c>: ...' for the bad row's index in the filtered logs."""
    row, column = bad
    flt = date_filter(start, end)
    seen = 0
    for fragment in log_dataset(path).get_fragments():
        n = fragment.count_rows(filter=flt) if flt is not None else fragment.count_rows()
        if row < seen + n:
            where = f"{fragment.path}: row {row - seen}" if flt is None else \
                f"{fragment.path}: row {row - seen} of the rows in the date range"
            return (f"{where}, column {column}: a NaN or inf value; training needs finite "
                    "values (drpo ingest quarantines such rows)")
        seen += n
    return f"row {row}, column {column}: a NaN or inf value"
