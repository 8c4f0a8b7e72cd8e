"""Performance metrics of a backtest: returns, risk, drawdowns, trades, exposure, costs.

    equity curve --equity_returns--> bar returns --returns.*--> total return ... calmar, drawdowns
    trades (pnl, closed, holding) --trades.trade_stats--> win rate ... avg holding bars
    all of them --summarize--> one flat dict in the order of METRIC_KEYS (the JSON contract)

Annualization uses :func:`periods_per_year` of the bar interval and the symbol's calendar
(252 sessions for exchanges, 365 days for crypto, 260 for the FX week; bars per session for
intraday). The return metrics follow empyrical-reloaded 0.7.1 to 1e-9 (``tests/metrics``).
Every formula: ``docs/metrics.md``.

Examples
--------
>>> import numpy as np
>>> from alphatwin.metrics import periods_per_year, sharpe
>>> round(sharpe(np.array([0.01, -0.005, 0.002, 0.004]), periods_per_year("1d", "XNYS")), 6)
7.058578
"""

from __future__ import annotations

from alphatwin.metrics.annualization import combine_periods, periods_per_year
from alphatwin.metrics.returns import (
    annual_volatility,
    cagr,
    calmar,
    downside_risk,
    drawdown_series,
    max_drawdown,
    max_drawdown_duration,
    risk_free_per_period,
    sharpe,
    sortino,
    total_return,
)
from alphatwin.metrics.summary import METRIC_DOCS, METRIC_KEYS, equity_returns, summarize
from alphatwin.metrics.trades import trade_stats

__all__ = [
    "periods_per_year",
    "combine_periods",
    "risk_free_per_period",
    "total_return",
    "cagr",
    "annual_volatility",
    "sharpe",
    "downside_risk",
    "sortino",
    "calmar",
    "drawdown_series",
    "max_drawdown",
    "max_drawdown_duration",
    "trade_stats",
    "equity_returns",
    "summarize",
    "METRIC_KEYS",
    "METRIC_DOCS",
]
