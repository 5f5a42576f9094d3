"""How time and memory grow with the window: ingest -> filter -> training sample -> training.

    .venv/bin/python benchmarks/scale_bench.py --rss             # 500k vs 5M rows, d = 32
    .venv/bin/python benchmarks/scale_bench.py --rows 1000000 10000000 --d 16   # scale table

The synthetic contract rows are generated in DuckDB (random vectors, an exp-uniform reward,
one ``COPY ... TO`` Parquet file per day), not by the simulator: the simulator's 40k rows/s
would spend most of the bench generating. They then go the real way: ``ingest_partition`` (every
contract check) per day, ``cvar_filter`` over the window, ``draw_training_sample`` (the steps x
batch rows, drawn out of core) and ``Trainer`` for ``--steps`` steps.

Every size runs in fresh processes, so each peak RSS is that process's own (``ru_maxrss``):
* history: generation and ingest of every day but the last (a window that already exists);
* run: what a nightly ``drpo run`` does on it: ingest the new day, filter the window, draw the
  sample, train. Its peak RSS is the number compared across sizes (goal: 5M within 1.3x of
  500k at d = 32);
* with ``--export`` also the former path (``export_window``: the whole kept window as tensors,
  sampled in memory) in its own process, for the side-by-side.
DuckDB's buffer pool is capped by ``DRPO_DUCKDB_MEMORY_LIMIT`` (default 1.5GB); disk used is the
Parquet logs plus the database file. Validation (Great Expectations, in flows/) is not part of
this bench: its cost per day is in benchmarks/pipeline_bench.py.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FIRST_DAY = dt.date(2026, 1, 1)


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def generate_day(con, logs: Path, day_index: int, rows: int, d: int) -> None:
    """One day of contract rows, written by DuckDB (values bound as parameters)."""
    day = FIRST_DAY + dt.timedelta(days=day_index)
    folder = logs / f"event_date={day.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    # the target path and the array size are not values DuckDB can bind: a validated int and a
    # path this script made
    con.execute(f"""
        COPY (
            SELECT 'e' || ($first + i) AS event_id,
                   CAST($day AS TIMESTAMPTZ) + to_microseconds(i * 86399000000 // $rows)
                       AS event_time,
                   CAST($day AS DATE) AS event_date,
                   'u' || (i % 100000) AS user_id, 'e' || ($first + i) AS episode_id,
                   CAST(0 AS INTEGER) AS step,
                   list_transform(range({int(d)}), lambda x: CAST(random() AS FLOAT)) AS state,
                   list_transform(range({int(d)}), lambda x: CAST(random() AS FLOAT)) AS action,
                   'i' || (i % 5000) AS item_id, exp(4 * random()) AS reward,
                   CAST(-8.5 AS DOUBLE) AS behavior_logprob, 'expert' AS logging_policy
            FROM range($rows) t(i)
        ) TO '{folder / "part-0.parquet"}' (FORMAT parquet)""",
        {"first": day_index * rows, "day": day, "rows": rows})


def child_history(a: argparse.Namespace) -> dict:
    import duckdb

    from drpo_core.warehouse import open_warehouse
    from drpo_core.warehouse.ingest import ingest_partition

    logs, days = Path(a.logs), a.days
    t = time.perf_counter()
    con = duckdb.connect()
    for k in range(days):
        generate_day(con, logs, k, a.rows_per_day, a.d)
    con.close()
    out = {"generate_s": time.perf_counter() - t}
    t = time.perf_counter()
    with open_warehouse(Path(a.db)) as wh:
        for k in range(days - 1):
            ingest_partition(wh, logs, FIRST_DAY + dt.timedelta(days=k))
        wh.con.execute("CHECKPOINT")
    out |= {"ingest_history_s": time.perf_counter() - t, "peak_rss_gib": peak_rss_gib()}
    return out


def child_run(a: argparse.Namespace) -> dict:
    import torch

    from drpo_core.trainer import TrainConfig, Trainer
    from drpo_core.warehouse import open_warehouse
    from drpo_core.warehouse.cvar_filter import cvar_filter
    from drpo_core.warehouse.export import export_window
    from drpo_core.warehouse.ingest import ingest_partition
    from drpo_core.warehouse.sample import draw_training_sample

    torch.set_num_threads(1)
    end = FIRST_DAY + dt.timedelta(days=a.days - 1)
    out: dict = {}

    def stage(name: str, t: float) -> None:
        out[f"{name}_s"] = time.perf_counter() - t
        out[f"{name}_peak_rss_gib"] = peak_rss_gib()

    t = time.perf_counter()
    with open_warehouse(Path(a.db)) as wh:
        ingest_partition(wh, Path(a.logs), end)
        wh.con.execute("CHECKPOINT")
        stage("ingest_day", t)
        t = time.perf_counter()
        report = cvar_filter(wh, FIRST_DAY, end, a.kappa)
        out["rows_in"], out["rows_kept"] = report.rows_in, report.rows_kept
        stage("filter", t)
        t = time.perf_counter()
        if a.path == "sample":
            data = draw_training_sample(wh, FIRST_DAY, end, steps=a.steps,
                                        batch_size=a.batch, seed=0)
        else:
            data = export_window(wh, FIRST_DAY, end)
        stage("training_input", t)
    t = time.perf_counter()
    cfg = TrainConfig(steps=a.steps, batch_size=a.batch, log_every=a.steps,
                      checkpoint_every=a.steps, device="cpu")
    Trainer(cfg, data, progress=False).fit()
    stage("train", t)
    out["peak_rss_gib"] = peak_rss_gib()
    return out


def spawn(mode: str, a: argparse.Namespace, **extra: object) -> dict:
    args = [sys.executable, __file__, "--child", mode, "--logs", a.logs, "--db", a.db,
            "--days", str(a.days), "--rows-per-day", str(a.rows_per_day), "--d", str(a.d),
            "--steps", str(a.steps), "--batch", str(a.batch), "--kappa", str(a.kappa)]
    for k, v in extra.items():
        args += [f"--{k}", str(v)]
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"{mode} child failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def du_gib(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**30


def measure(rows: int, a: argparse.Namespace, work: Path) -> dict:
    folder = work / f"rows{rows}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    per_day = min(rows, a.rows_per_day)
    sub = argparse.Namespace(**vars(a))
    sub.logs, sub.db = str(folder / "logs"), str(folder / "wh.duckdb")
    sub.days, sub.rows_per_day = max(1, rows // per_day), per_day
    result = {"rows": sub.days * per_day, "days": sub.days}
    result["history"] = spawn("history", sub)
    db = Path(sub.db)
    if a.export:  # the former path on a copy of the same database
        shutil.copy(db, folder / "before.duckdb")
    result["run"] = spawn("run", sub, path="sample")
    result["disk_gib"] = du_gib(folder)
    if a.export:
        shutil.move(folder / "before.duckdb", db)
        result["export"] = spawn("run", sub, path="export")
    if not a.keep:
        shutil.rmtree(folder, ignore_errors=True)
    return result


def report(results: list[dict], a: argparse.Namespace) -> None:
    print(f"d_state = d_action = {a.d}, {a.rows_per_day:,} rows per day, kappa = {a.kappa}, "
          f"{a.steps} steps of batch {a.batch}, 1 torch thread")
    head = (f"{'window rows':>12}{'gen s':>8}{'ingest s':>10}{'new day s':>10}{'filter s':>9}"
            f"{'sample s':>9}{'train s':>8}{'ingest rows/s':>15}{'run peak GiB':>13}"
            f"{'disk GiB':>9}")
    print(head)
    for r in results:
        h, run = r["history"], r["run"]
        ingest_rows_per_s = r["rows"] / (h["ingest_history_s"] + run["ingest_day_s"])
        print(f"{r['rows']:>12,}{h['generate_s']:>8.1f}{h['ingest_history_s']:>10.1f}"
              f"{run['ingest_day_s']:>10.1f}{run['filter_s']:>9.2f}"
              f"{run['training_input_s']:>9.2f}{run['train_s']:>8.1f}"
              f"{ingest_rows_per_s:>15,.0f}{run['peak_rss_gib']:>13.2f}{r['disk_gib']:>9.2f}")
    print("peak RSS of the run by stage (GiB, cumulative): ingest day / filter / sample / train")
    for r in results:
        run = r["run"]
        print(f"{r['rows']:>12,}: " + " / ".join(
            f"{run[f'{s}_peak_rss_gib']:.2f}" for s in ("ingest_day", "filter",
                                                        "training_input", "train")))
    if a.export:
        print("former path (export_window: the window as tensors), same run otherwise:")
        for r in results:
            e = r["export"]
            print(f"{r['rows']:>12,}: export {e['training_input_s']:.2f} s, train "
                  f"{e['train_s']:.1f} s, peak RSS {e['peak_rss_gib']:.2f} GiB")
    if len(results) >= 2:
        small, large = results[0], results[-1]
        ratio = large["run"]["peak_rss_gib"] / small["run"]["peak_rss_gib"]
        print(f"peak RSS {large['rows']:,} / {small['rows']:,} rows = {ratio:.2f}x "
              "(goal for 5M / 500k: <= 1.3x)")
        if a.export:
            ratio = large["export"]["peak_rss_gib"] / small["export"]["peak_rss_gib"]
            print(f"former path: {ratio:.2f}x")
        for prev, cur in itertools.pairwise(results):
            per_row = [(r["history"]["ingest_history_s"] + r["run"]["ingest_day_s"]
                        + r["run"]["filter_s"] + r["run"]["training_input_s"]) / r["rows"]
                       for r in (prev, cur)]
            print(f"time per row of ingest + filter + sample, {cur['rows']:,} vs "
                  f"{prev['rows']:,}: {per_row[1] / per_row[0]:.2f}x (goal 10M -> 100M: "
                  "<= 1.2x)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    p.add_argument("--rss", action="store_true",
                   help="the memory comparison: 500k vs 5M rows at d = 32, with --export")
    p.add_argument("--d", type=int, default=16)
    p.add_argument("--rows-per-day", type=int, default=500_000)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch", type=int, default=320)
    p.add_argument("--kappa", type=float, default=1.0, help="the pipeline's default: 1")
    p.add_argument("--export", action="store_true", help="also run the former export path")
    p.add_argument("--workdir", default=None, help="where the data goes (default: a temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the generated data")
    p.add_argument("--child", choices=["history", "run"], help=argparse.SUPPRESS)
    p.add_argument("--logs", help=argparse.SUPPRESS)
    p.add_argument("--db", help=argparse.SUPPRESS)
    p.add_argument("--days", type=int, help=argparse.SUPPRESS)
    p.add_argument("--path", default="sample", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        print(json.dumps(child_history(a) if a.child == "history" else child_run(a)))
        return
    if a.rss:
        a.rows, a.d, a.export = [500_000, 5_000_000], 32, True
    work = Path(tempfile.mkdtemp(dir=a.workdir))
    try:
        results = []
        for rows in a.rows:
            results.append(measure(rows, a, work))
            print(json.dumps(results[-1]), flush=True)
        report(results, a)
    finally:
        if a.keep:
            print(f"data kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
