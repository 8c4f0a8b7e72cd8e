"""The ``backtest.*`` tables: every run, its trades, fills, equity curve, positions, metrics, sweeps.

All rows of one run are written in one transaction: a run is in the warehouse completely or
not at all. ``backtest.runs`` records exactly which data a run used (symbols, interval, data
range, the ingest ids of the rows and their validation verdicts, a sha256 of the rows read).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import polars as pl

__all__ = ["DDL", "ensure_schema", "write_run", "json_value"]

DDL = [
    "CREATE SCHEMA IF NOT EXISTS backtest",
    """CREATE TABLE IF NOT EXISTS backtest.runs (
        run_id VARCHAR PRIMARY KEY,
        kind VARCHAR NOT NULL,              -- backtest | sweep
        strategy VARCHAR NOT NULL,
        params JSON,                        -- a sweep: the grid
        direction VARCHAR NOT NULL,
        symbols VARCHAR[] NOT NULL,
        interval VARCHAR NOT NULL,
        data_start TIMESTAMP,               -- first bar read (signal history included)
        run_start TIMESTAMP,                -- first bar traded
        data_end TIMESTAMP,                 -- last bar
        n_bars BIGINT,
        calendars JSON,                     -- symbol -> calendar
        periods_per_year DOUBLE,
        risk_free DOUBLE,
        ingest_ids VARCHAR[],               -- every ingest the rows read came from
        validation JSON,                    -- their current validation verdicts
        data_sha256 VARCHAR,                -- of the rows read
        data_quality JSON,                  -- outlier policy and flagged bars read, failed validations
        execution JSON,                     -- fill, init_cash, target_kind, whole_units, leverage, rebalance_every
        cost_model JSON,                    -- fees, slippage, impact, participation
        stops JSON,
        risk JSON,                          -- sizing, allocation, caps, drawdown control
        created TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
        wall_s DOUBLE,
        command VARCHAR,
        alphatwin_version VARCHAR
    )""",
    """CREATE TABLE IF NOT EXISTS backtest.trades (
        run_id VARCHAR NOT NULL,
        trade_no INTEGER NOT NULL,
        symbol VARCHAR NOT NULL,
        direction VARCHAR NOT NULL,         -- long | short
        entry_ts TIMESTAMP NOT NULL,
        exit_ts TIMESTAMP,                  -- NULL: still open at the end
        quantity DOUBLE NOT NULL,           -- signed: + long, - short
        entry_price DOUBLE NOT NULL,
        exit_price DOUBLE,                  -- an open trade: the last close
        fees DOUBLE NOT NULL,
        slippage DOUBLE NOT NULL,
        impact DOUBLE NOT NULL,
        dividends DOUBLE NOT NULL,
        pnl DOUBLE NOT NULL,
        "return" DOUBLE,
        bars_held INTEGER NOT NULL,
        exit_reason VARCHAR,                -- signal | rebalance | pending | stop_loss | take_profit | trailing_stop | drawdown | atr_stop; NULL while open
        n_fills INTEGER NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS backtest.fills (
        run_id VARCHAR NOT NULL,
        fill_no INTEGER NOT NULL,
        symbol VARCHAR NOT NULL,
        ts TIMESTAMP NOT NULL,
        phase VARCHAR NOT NULL,             -- open | intrabar | close
        reason VARCHAR NOT NULL,
        units DOUBLE NOT NULL,              -- signed: + buy, - sell
        base_price DOUBLE NOT NULL,
        price DOUBLE NOT NULL,              -- with slippage and impact
        fee DOUBLE NOT NULL,
        slippage DOUBLE NOT NULL,
        impact DOUBLE NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS backtest.equity (
        run_id VARCHAR NOT NULL,
        ts TIMESTAMP NOT NULL,
        equity DOUBLE NOT NULL,
        cash DOUBLE NOT NULL,
        gross_exposure DOUBLE NOT NULL,
        net_exposure DOUBLE NOT NULL,
        "return" DOUBLE NOT NULL,
        drawdown DOUBLE NOT NULL,
        fees DOUBLE NOT NULL,               -- costs of this bar's fills
        slippage DOUBLE NOT NULL,
        impact DOUBLE NOT NULL,
        cum_costs DOUBLE NOT NULL,          -- fees + slippage + impact up to this bar
        risk_scale DOUBLE                   -- the drawdown control's scale after this bar (1 = full)
    )""",
    """CREATE TABLE IF NOT EXISTS backtest.positions (
        run_id VARCHAR NOT NULL,
        ts TIMESTAMP NOT NULL,
        symbol VARCHAR NOT NULL,
        units DOUBLE NOT NULL,
        price DOUBLE,                       -- last close
        value DOUBLE NOT NULL,              -- units x price
        pnl DOUBLE NOT NULL                 -- cumulative P&L of the symbol (realized + open, net of costs, dividends in)
    )""",
    """CREATE TABLE IF NOT EXISTS backtest.metrics (
        run_id VARCHAR NOT NULL,
        metric VARCHAR NOT NULL,
        value DOUBLE                        -- NULL: undefined (e.g. win_rate without closed trades)
    )""",
    """CREATE TABLE IF NOT EXISTS backtest.sweeps (
        run_id VARCHAR NOT NULL,            -- the sweep's row in backtest.runs
        symbol VARCHAR NOT NULL,
        params JSON NOT NULL,
        fast INTEGER,
        slow INTEGER,
        total_return DOUBLE, cagr DOUBLE, annual_volatility DOUBLE, sharpe DOUBLE, sortino DOUBLE,
        calmar DOUBLE, max_drawdown DOUBLE, max_drawdown_duration BIGINT, n_trades BIGINT,
        n_closed_trades BIGINT, win_rate DOUBLE, profit_factor DOUBLE, avg_holding_bars DOUBLE,
        exposure DOUBLE, final_equity DOUBLE, total_fees DOUBLE,
        kernel VARCHAR
    )""",
    # columns added after the first release: a warehouse created before gets them here
    "ALTER TABLE backtest.runs ADD COLUMN IF NOT EXISTS risk JSON",
    "ALTER TABLE backtest.equity ADD COLUMN IF NOT EXISTS risk_scale DOUBLE",
]

TABLES = ("trades", "fills", "equity", "positions", "metrics", "sweeps")


def ensure_schema(con: Any) -> None:
    for stmt in DDL:
        con.execute(stmt)


def decode_run(row: dict[str, Any]) -> dict[str, Any]:
    """A ``backtest.runs`` row with its JSON columns (params, calendars, validation, ...) decoded;
    DuckDB returns them as text."""
    out = dict(row)
    for key, value in out.items():
        if isinstance(value, str) and value[:1] in "{[":
            try:
                out[key] = json.loads(value)
            except ValueError:
                pass
    return out


def json_value(value: Any) -> Any:
    """NaN -> None (JSON null), inf -> the string "inf"; NumPy scalars -> Python."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
    return value


def write_run(con: Any, run: dict[str, Any], frames: dict[str, pl.DataFrame],
              also: Callable[[Any], Any] | None = None) -> None:
    """Insert one run and its rows (``frames``: table name -> rows), and whatever ``also(con)``
    writes (the strategy's signals), in one transaction."""
    ensure_schema(con)
    con.execute("BEGIN TRANSACTION")
    try:
        cols = list(run)
        values = [json.dumps(v) if k in _JSON_COLS and v is not None else v for k, v in run.items()]
        con.execute(f"INSERT INTO backtest.runs ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
                    values)
        for table, frame in frames.items():
            if table not in TABLES:
                raise ValueError(f"unknown backtest table {table!r}")
            if frame.height:
                con.register("_bt_rows", frame.to_arrow())
                con.execute(f"INSERT INTO backtest.{table} BY NAME SELECT * FROM _bt_rows")
                con.unregister("_bt_rows")
        if also is not None:
            also(con)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


_JSON_COLS = {"params", "calendars", "validation", "data_quality", "execution", "cost_model", "stops", "risk"}
