"""The markdown summary of one retrained logical date (a Prefect artifact)."""

from __future__ import annotations

import datetime as dt

from drpo_core.warehouse.ingest import IngestReport
from flows.jobs.evaluate import Evaluation
from flows.jobs.promote import GateOutcome
from flows.jobs.register import Registration
from flows.jobs.train import TrainStep
from flows.jobs.window import Window

NAN = float("nan")


def run_summary(logical_date: dt.date, ingest: IngestReport, win: Window, step: TrainStep,
                evaluation: Evaluation, version: Registration, decision: GateOutcome) -> str:
    s, score = win.summary, evaluation.challenger
    online, ope = score.online or {}, score.off_policy
    rows = [
        ("rows ingested / quarantined", f"{ingest.rows_kept:,} / {ingest.rows_quarantined:,}"),
        ("window", f"{s['window_start']} .. {s['window_end']}"),
        ("kappa, rows kept", f"{s['kappa']}, {s['rows_kept']:,} of {s['rows_in']:,}"),
        ("nu (first partition)", f"{s['partitions'][0]['nu']:.4f}"),
        ("keep share P (Algorithm 1, end)",
         f"{step.final.get('filter/keep_share', NAN):.4f}"),
        ("sigma (end)", f"{step.final.get('policy/sigma', NAN):.4g}"),
        ("online reward / score",
         f"{online.get('mean_reward', NAN):.4f} / {online.get('score', NAN):.1f}"),
        ("off-policy DR / SNIPS", f"{ope['dr']:.4f} / {ope['snips']:.4f}"),
        ("registered version", f"{version.version} "
                               f"({'new' if version.created else 'reused'})"),
        ("gate", f"{'PROMOTED' if decision.promoted else 'kept champion'}: "
                 f"{decision.reason}"),
        ("champion", str(decision.champion)),
    ]
    return "\n".join([f"# nightly_retrain {logical_date}", "", "| | |", "|---|---|",
                      *(f"| {k} | {v} |" for k, v in rows)])
