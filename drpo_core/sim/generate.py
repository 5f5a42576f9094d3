"""Write simulated interaction logs in the log contract, hive-partitioned by ``event_date``.

Output layout (one folder per day, readable by DuckDB ``hive_partitioning=true``)::

    OUT/_simulation.json                      config, dates and row counts (the manifest)
    OUT/event_date=2026-01-01/part-0.parquet  one day's rows, schema metadata carries the config

The whole folder is written to a temporary sibling and renamed into place at the end, so a
crash never leaves a half-written dataset behind.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from drpo_core.schema import META_SIMULATOR, interaction_schema, vector_type
from drpo_core.sim.config import SimConfig
from drpo_core.sim.logging_agent import COMPONENTS, MixedLoggingAgent
from drpo_core.sim.sessions import max_minutes, play_logged_sessions
from drpo_core.sim.world import Stream, World, rng_for

MANIFEST = "_simulation.json"
SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class SimulationResult:
    out: Path
    dates: list[dt.date]
    rows: int
    skipped: bool = False


class SimulationError(ValueError):
    """Bad arguments for a simulation run (one-line message naming the field)."""


class LogSimulator:
    """Generates logged days of one simulated world."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.world = World.build(config)
        self.agent = MixedLoggingAgent(self.world)

    def day_table(self, day: int, date: dt.date, n_rows: int, chunk: int = 250_000) -> pa.Table:
        """All rows logged on simulated day ``day`` (dated ``date``), in the log contract."""
        if n_rows <= 0:
            raise SimulationError(f"rows_per_day must be positive, got {n_rows}")
        parts = list(self._day_batches(day, date, n_rows, chunk))
        return pa.Table.from_batches(parts)

    def _day_batches(
        self, day: int, date: dt.date, n_rows: int, chunk: int
    ) -> Iterator[pa.RecordBatch]:
        if self.config.sessions == "sequential":
            yield from self._session_batches(day, date, n_rows, chunk)
            return
        c, world = self.config, self.world
        interests_day = world.interests(day)
        rng = rng_for(c.seed, Stream.LOGS, day)
        users_all = rng.integers(0, c.n_users, size=n_rows)
        seconds = np.sort(rng.random(n_rows)) * SECONDS_PER_DAY
        logged_all = self.agent.sample(interests_day, users_all, rng)
        schema = self.schema(day)
        midnight = np.datetime64(date.isoformat(), "us")
        prefix = f"{c.fingerprint()}-{date:%Y%m%d}-"
        for start in range(0, n_rows, chunk):
            stop = min(start + chunk, n_rows)
            users = users_all[start:stop]
            interests = interests_day[users]
            states = world.observe_logged(day, users, rng)
            logged = logged_all.rows(start, stop)
            latent = world.latent_reward(interests, logged.item)
            reward = world.observed_reward(latent, rng, world.activity[users])
            n = stop - start
            event_id = pc.binary_join_element_wise(
                prefix, pc.utf8_lpad(pa.array(np.arange(start, stop)).cast(pa.string()), 9, "0"),
                "")
            times = midnight + (seconds[start:stop] * 1e6).astype("timedelta64[us]")
            columns = {
                "event_id": event_id,
                "event_time": pa.array(times, pa.timestamp("us")).cast(
                    pa.timestamp("us", tz="UTC")),
                "event_date": pa.array(np.full(n, np.datetime64(date.isoformat(), "D"))),
                "user_id": _ids("u", users, 7),
                "episode_id": event_id,
                "step": pa.array(np.zeros(n, dtype=np.int32)),
                "state": _fixed_list(states),
                "action": _fixed_list(world.items[logged.item]),
                "item_id": _ids("i", logged.item, 6),
                "reward": pa.array(reward),
                "behavior_logprob": pa.array(logged.logprob),
                "logging_policy": pa.array(np.asarray(COMPONENTS)[logged.component]),
            }
            yield pa.RecordBatch.from_pydict(columns, schema=schema)

    def _session_batches(
        self, day: int, date: dt.date, n_rows: int, chunk: int
    ) -> Iterator[pa.RecordBatch]:
        """The sequential mode's day (drpo_core/sim/sessions.py): whole sessions of random
        logged users, in time order; the day's last session is cut where the day's
        ``n_rows`` end (as a log window cuts a session)."""
        c = self.config
        rng = rng_for(c.seed, Stream.SESSION, day)
        rows = play_logged_sessions(self.world, self.agent, day, n_rows, rng)
        start = rng.random(rows.n_sessions) * (SECONDS_PER_DAY - 60.0 * max_minutes(self.world))
        seconds = start[rows.session] + 60.0 * rows.elapsed
        order = np.argsort(seconds, kind="stable")
        midnight = np.datetime64(date.isoformat(), "us")
        prefix = f"{c.fingerprint()}-{date:%Y%m%d}-"
        schema = self.schema(day)
        for first in range(0, n_rows, chunk):
            idx = order[first : first + chunk]
            n = len(idx)
            event_id = pc.binary_join_element_wise(prefix, pc.utf8_lpad(
                pa.array(np.arange(first, first + n)).cast(pa.string()), 9, "0"), "")
            times = midnight + (seconds[idx] * 1e6).astype("timedelta64[us]")
            columns = {
                "event_id": event_id,
                "event_time": pa.array(times, pa.timestamp("us")).cast(
                    pa.timestamp("us", tz="UTC")),
                "event_date": pa.array(np.full(n, np.datetime64(date.isoformat(), "D"))),
                "user_id": _ids("u", rows.user[idx], 7),
                "episode_id": _ids(f"{prefix}s", rows.session[idx], 8),
                "step": pa.array(rows.step[idx].astype(np.int32)),
                "state": _fixed_list(rows.state[idx]),
                "action": _fixed_list(self.world.items[rows.item[idx]]),
                "item_id": _ids("i", rows.item[idx], 6),
                "reward": pa.array(rows.reward[idx]),
                "behavior_logprob": pa.array(rows.logprob[idx]),
                "logging_policy": pa.array(np.asarray(COMPONENTS)[rows.component[idx]]),
            }
            yield pa.RecordBatch.from_pydict(columns, schema=schema)

    def schema(self, day: int) -> pa.Schema:
        meta = {"config": json.loads(self.config.to_json()), "day_index": day}
        return interaction_schema(
            self.config.state_dim, self.config.d,
            {META_SIMULATOR: json.dumps(meta, sort_keys=True).encode()},
        )

    def write(
        self,
        out: Path,
        start_date: dt.date,
        days: int,
        rows_per_day: int,
        progress: bool = True,
    ) -> SimulationResult:
        """Write ``days`` consecutive days into ``out`` atomically (see module doc)."""
        if days <= 0:
            raise SimulationError(f"days must be positive, got {days}")
        if rows_per_day <= 0:
            raise SimulationError(f"rows_per_day must be positive, got {rows_per_day}")
        out = Path(out)
        dates = [start_date + dt.timedelta(days=k) for k in range(days)]
        manifest = {
            "config": json.loads(self.config.to_json()),
            "start_date": start_date.isoformat(),
            "days": days,
            "rows_per_day": rows_per_day,
            "dates": [d.isoformat() for d in dates],
        }
        if out.exists():
            if _same_manifest(out, manifest):
                return SimulationResult(out, dates, days * rows_per_day, skipped=True)
            if not out.is_dir() or any(out.iterdir()):
                raise SimulationError(
                    f"output dir {out} exists with other content; choose an empty or new "
                    "directory (an identical earlier simulation is reused)"
                )
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
        try:
            bar = tqdm(total=days * rows_per_day, unit="row", unit_scale=True,
                       desc="simulate", disable=not progress)
            for k, date in enumerate(dates):
                part_dir = tmp / f"event_date={date.isoformat()}"
                part_dir.mkdir()
                with pq.ParquetWriter(part_dir / "part-0.parquet", self.schema(k),
                                      compression="zstd") as writer:
                    for batch in self._day_batches(k, date, rows_per_day, 250_000):
                        writer.write_batch(batch)
                        bar.update(batch.num_rows)
            bar.close()
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
            if out.exists():
                out.rmdir()
            os.replace(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return SimulationResult(out, dates, days * rows_per_day)


def _same_manifest(out: Path, manifest: dict) -> bool:
    path = out / MANIFEST
    if not path.is_file():
        return False
    try:
        return json.loads(path.read_text()) == manifest
    except (OSError, json.JSONDecodeError):
        return False


def _ids(prefix: str, idx: np.ndarray, width: int) -> pa.Array:
    digits = pc.utf8_lpad(pa.array(idx).cast(pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, digits, "")


def _fixed_list(x: np.ndarray) -> pa.FixedSizeListArray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), type=vector_type(x.shape[1]))
