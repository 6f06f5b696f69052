"""Loading the workload into a database through the query runner."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:  # perflab.db (SQLAlchemy, psycopg) costs each data-suite worker ~0.4 s
    from perflab.db import QueryRunner

__all__ = ["load"]


def load(db: QueryRunner, bars: pd.DataFrame, table: str = "bars", *, replace: bool = True) -> int:
    """Create ``table`` (primary key (symbol, ts), which also serves symbol + time-range reads)
    and COPY the bars in. Timestamps are stored as epoch milliseconds (portable to SQLite)."""
    from perflab.db import quote_identifier

    name = quote_identifier(table, "table")
    if replace:
        db.execute(f"DROP TABLE IF EXISTS {name}")
    real = "double precision" if db.postgres else "real"
    db.execute(
        f"CREATE TABLE {name} (symbol text NOT NULL, ts bigint NOT NULL, open {real}, "
        f"high {real}, low {real}, close {real}, volume bigint, PRIMARY KEY (symbol, ts))"
    )
    rows = bars.assign(ts=bars["ts"].astype("datetime64[ms]").astype("int64"))  # any resolution
    return db.batch_insert(table, rows[["symbol", "ts", "open", "high", "low", "close", "volume"]])
