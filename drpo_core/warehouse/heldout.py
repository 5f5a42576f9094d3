"""What evaluation reads from the warehouse: a seeded sample of a held-out day and the item
catalogue (sql/heldout_rows.sql, sql/item_catalogue.sql), as Arrow tables."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from drpo_core.warehouse.connection import Warehouse


def heldout_rows(wh: Warehouse, event_date: dt.date, n_rows: int, seed: int) -> pa.Table:
    """At most ``n_rows`` rows of ``event_date`` (state, item_id, reward, behavior_logprob)."""
    table = wh.run("heldout_rows", {"event_date": event_date, "n_rows": n_rows,
                                    "seed": seed})[-1].to_arrow_table()
    if table.num_rows == 0:
        raise ValueError(f"no held-out rows on {event_date}: nothing was ingested for that day")
    return table


def item_catalogue(wh: Warehouse, until: dt.date) -> pa.Table:
    """Every item logged up to ``until`` with its embedding (item_id, action)."""
    return wh.run("item_catalogue", {"until": until})[-1].to_arrow_table()
