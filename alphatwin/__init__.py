"""AlphaTwin: raw market data to trustworthy backtests through an SQL-first warehouse.

The data flow, one package per stage::

    sources/  Yahoo, Stooq, CSV, synthetic           -> lake/     immutable Parquet + DuckDB catalog
    quality/  Great Expectations gate, quarantine     -> models/ + transforms/ + sql/
              clean.bars (adjusted) and features.bars (point-in-time indicators)
    signals/  strategies -> target weights            -> backtest/ numba bar loop, sweeps
    metrics/  Sharpe, Sortino, drawdowns, trades       -> reports/  data-quality report
    cli/      `alphatwin` drives all of them

Start with ``alphatwin demo``; the docs site (``make docs``) explains each stage.
"""
