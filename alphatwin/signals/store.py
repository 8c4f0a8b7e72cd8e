"""``signals.<strategy>``: what a strategy wanted at every bar, one row per (symbol, interval, ts,
params). A backtest stores its strategy's signals here (replacing the rows of the same
strategy, parameters, direction, interval and symbols), so ``SELECT * FROM signals.rsi_reversion
WHERE symbol = 'AAPL'`` answers what the rule said on any day. ``signal`` is the quantity the
rule thresholds (each strategy's ``signal_doc``), ``target`` the direction (series strategies,
-1..1 before sizing and allocation) or the weight (panel strategies) wanted from that close on.
SQL strategies build their own ``signals.<name>`` with ``alphatwin build``.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import polars as pl

from alphatwin.signals.base import Strategy

__all__ = ["write_signals", "ddl"]


def ddl(name: str) -> str:
    return f"""CREATE TABLE IF NOT EXISTS signals."{name}" (
        symbol VARCHAR NOT NULL,
        interval VARCHAR NOT NULL,
        ts TIMESTAMP NOT NULL,
        signal DOUBLE,            -- the quantity the rule reads (NaN/NULL in the warm-up)
        target DOUBLE,            -- direction (series) or weight (panel) wanted from this close
        strategy VARCHAR NOT NULL,
        params JSON NOT NULL,     -- the parameters, and direction
        run_id VARCHAR,           -- the backtest that stored these rows last
        computed_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
    )"""


def write_signals(con: Any, strat: Strategy, loaded: Any, params: dict[str, Any], signal: np.ndarray,
                  target: np.ndarray, run_id: str, direction: str = "long") -> int:
    """Replace the stored signals of (strategy, params, direction) for the run's symbols and
    interval with these; returns the rows written. Call it inside the run's transaction
    (:func:`alphatwin.backtest.store.write_run` ``also=``)."""
    # a panel strategy's rows depend on the whole universe: the universe is part of the key
    universe = {"universe": list(loaded.market.symbols)} if strat.panel else {}
    key = json.dumps({**params, "direction": direction, **universe}, sort_keys=True)
    symbols = list(loaded.market.symbols)
    ts = loaded.ts
    has_row = ~np.isnan(loaded.signal_close)
    rows, cols = np.nonzero(has_row)
    frame = pl.DataFrame({
        "symbol": np.array(symbols, dtype=object)[cols].tolist(),
        "interval": loaded.interval,
        "ts": ts[rows],
        "signal": signal[rows, cols],
        "target": target[rows, cols],
        "strategy": strat.name,
        "params": key,
        "run_id": run_id,
    }, schema_overrides={"symbol": pl.String}).with_columns(
        pl.col("signal").fill_nan(None), pl.col("target").fill_nan(None))
    con.execute("CREATE SCHEMA IF NOT EXISTS signals")
    con.execute(ddl(strat.name))
    con.execute(f'DELETE FROM signals."{strat.name}" WHERE params = ?::JSON AND interval = ? '
                f"AND symbol IN ({', '.join('?' for _ in symbols)})", [key, loaded.interval, *symbols])
    con.register("_sig_rows", frame.to_arrow())
    con.execute(f'INSERT INTO signals."{strat.name}" BY NAME SELECT * FROM _sig_rows')
    con.unregister("_sig_rows")
    return frame.height
