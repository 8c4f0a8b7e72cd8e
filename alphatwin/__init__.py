"""AlphaTwin: raw market data to trustworthy backtests through an SQL-first warehouse.

The data flow, one package per stage::

    sources/  Yahoo, Stooq, CSV, synthetic           -> lake/     immutable Parquet + DuckDB catalog
    quality/  Great Expectations gate, quarantine     -> models/ + transforms/ + sql/
              clean.bars (adjusted) and features.bars (point-in-time indicators)
    signals/  strategies -> target weights            -> backtest/ numba bar loop, sweeps
    metrics/  Sharpe, Sortino, drawdowns, trades       -> reports/  data-quality report
    cli/      `alphatwin` drives all of them

Start with ``alphatwin demo``; the docs site (``make docs``) explains each stage. In Python,
``alphatwin.open(path)`` returns a read-only handle on a warehouse (:mod:`alphatwin.api`).
"""

from typing import Any


def __getattr__(name: str) -> Any:  # ``alphatwin.open`` without importing Polars at CLI start-up
    if name == "open":
        from alphatwin.api import open as open_

        return open_
    raise AttributeError(f"module 'alphatwin' has no attribute {name!r}")
