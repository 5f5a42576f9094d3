"""What evaluation reads from the warehouse: a seeded sample of a held-out day and the item
catalogue (sql/heldout_rows.sql, sql/item_catalogue.sql), as Arrow tables."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa

import sql
from drpo_core.warehouse.connection import Warehouse


def _arrow(wh: Warehouse, name: str, params: dict[str, Any]) -> pa.Table:
    """The one statement of ``sql/<name>.sql`` as Arrow, without a DB-API copy."""
    return wh.con.sql(sql.load(name), params=params).to_arrow_table()


def heldout_rows(wh: Warehouse, event_date: dt.date, n_rows: int, seed: int) -> pa.Table:
    """At most ``n_rows`` rows of ``event_date`` (state, item_id, reward, behavior_logprob)."""
    table = _arrow(wh, "heldout_rows", {"event_date": event_date, "n_rows": n_rows,
                                        "seed": seed})
    if table.num_rows == 0:
        raise ValueError(f"no held-out rows on {event_date}: nothing was ingested for that day")
    return table


def item_catalogue(wh: Warehouse, until: dt.date) -> pa.Table:
    """Every item logged up to ``until`` with its embedding (item_id, action)."""
    return _arrow(wh, "item_catalogue", {"until": until})
