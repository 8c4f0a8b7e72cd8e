"""One backtest's performance summary: every metric, in the order of the public JSON contract.

:func:`summarize` turns a backtest's equity curve, trades, exposure and costs into a flat dict
whose keys are :data:`METRIC_KEYS` (in that order; NaN where a metric is undefined: the caller
writes it as JSON ``null``). :data:`METRIC_DOCS` holds a one-line description of each key for
the docs and the CLI.
"""

from __future__ import annotations

import math

import numpy as np

from alphatwin.errors import InputError
from alphatwin.metrics import returns as rt
from alphatwin.metrics.trades import TRADE_KEYS, trade_stats

__all__ = ["METRIC_KEYS", "METRIC_DOCS", "summarize", "equity_returns"]

#: Description of every key of :func:`summarize`, in the order of the output.
METRIC_DOCS: dict[str, str] = {
    "total_return": "compounded return over the run: final_equity / init_cash - 1",
    "cagr": "compound annual growth rate: (1 + total_return) ** (periods_per_year / n_bars) - 1",
    "annual_volatility": "standard deviation of bar returns (ddof=1) x sqrt(periods_per_year)",
    "sharpe": "mean / std (ddof=1) of bar returns over the per-bar risk-free rate, x sqrt(periods_per_year)",
    "sortino": "annualized mean excess return / annualized downside deviation below the risk-free rate",
    "calmar": "cagr / |max_drawdown| (null without a drawdown)",
    "max_drawdown": "deepest fall of equity from a running peak (init_cash included), a fraction <= 0",
    "max_drawdown_duration": "longest drawdown in bars, from a peak to the bar it is regained (or the last)",
    "n_trades": "number of trades, open ones included",
    "n_closed_trades": "number of closed trades",
    "win_rate": "fraction of closed trades with P&L > 0",
    "profit_factor": "gross profit / gross loss of closed trades (inf without a loss)",
    "avg_win": "mean P&L of winning closed trades (currency)",
    "avg_loss": "mean P&L of losing closed trades (currency, negative)",
    "expectancy": "mean P&L per closed trade (currency)",
    "best_trade": "largest P&L of a closed trade (currency)",
    "worst_trade": "smallest P&L of a closed trade (currency)",
    "avg_holding_bars": "mean bars held per trade, open trades up to the last bar",
    "exposure": "fraction of bars with a position (gross exposure > 0)",
    "avg_gross_leverage": "mean over bars of gross exposure / equity",
    "turnover": "traded notional per year in units of mean equity: sum(notional) / mean(equity) / years",
    "final_equity": "equity at the last bar (currency)",
    "total_fees": "commissions paid (currency)",
    "total_slippage": "slippage cost (currency)",
    "total_impact": "market-impact cost (currency)",
    "n_bars": "number of bars (= number of bar returns)",
    "periods_per_year": "bars per year used to annualize",
    "risk_free": "annual risk-free rate",
}
#: The keys of :func:`summarize`, in order (a public JSON contract).
METRIC_KEYS: tuple[str, ...] = tuple(METRIC_DOCS)


def _vector(name: str, values: np.ndarray, n: int | None = None) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or (n is not None and x.size != n):
        want = "a 1-D array" if n is None else f"a 1-D array with one value per bar ({n})"
        raise InputError(f"`{name}` must be {want}, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise InputError(f"`{name}` must hold finite numbers (found NaN or inf)")
    return x


def _number(name: str, value: float) -> float:
    x = float(value)
    if not math.isfinite(x):
        raise InputError(f"`{name}` must be a finite number, got {value!r}")
    return x


def equity_returns(equity: np.ndarray, init_cash: float) -> np.ndarray:
    """Bar returns of an equity curve: ``equity[t] / equity[t-1] - 1`` with ``equity[-1] = init_cash``.

    One return per bar. A bar after equity reached 0 has a NaN (0/0) or infinite return.

    Examples
    --------
    >>> equity_returns(np.array([110.0, 99.0]), 100.0).tolist()
    [0.10000000000000009, -0.09999999999999998]
    """
    eq = _vector("equity", equity)
    cash = _number("init_cash", init_cash)
    if cash <= 0:
        raise InputError(f"`init_cash` must be > 0, got {init_cash!r}")
    prev = np.concatenate(([cash], eq[:-1]))
    with np.errstate(divide="ignore", invalid="ignore"):
        return eq / prev - 1.0


def summarize(
    *,
    equity: np.ndarray,
    init_cash: float,
    trades_pnl: np.ndarray,
    trades_closed: np.ndarray,
    trades_holding_bars: np.ndarray,
    gross_exposure: np.ndarray,
    traded_notional: np.ndarray,
    fees: float,
    slippage: float,
    impact: float,
    periods_per_year: float,
    risk_free: float = 0.0,
) -> dict[str, float | int]:
    """Every metric of :data:`METRIC_KEYS` for one backtest (formulas in ``docs/metrics.md``).

    Parameters
    ----------
    equity : numpy.ndarray
        Portfolio equity marked at each bar's close (currency), one value per bar.
    init_cash : float
        Equity before the first bar (> 0); the first bar's return is ``equity[0] / init_cash - 1``.
    trades_pnl, trades_closed, trades_holding_bars : numpy.ndarray
        Per trade: P&L (currency), whether it is closed, and bars held (see
        :func:`alphatwin.metrics.trades.trade_stats`).
    gross_exposure : numpy.ndarray
        Per bar: ``sum(|units * close|)`` over symbols (currency).
    traded_notional : numpy.ndarray
        Per bar: ``sum(|units filled * price|)`` (currency).
    fees, slippage, impact : float
        Total costs of the run (currency), reported as they are.
    periods_per_year : float
        Bars per year (:func:`alphatwin.metrics.annualization.periods_per_year`).
    risk_free : float, default 0.0
        Annual risk-free rate (0.02 = 2%), used by the Sharpe and Sortino ratios.

    Returns
    -------
    dict
        ``{key: value}`` in the order of :data:`METRIC_KEYS`: Python ints for counts, floats
        (NaN where undefined, +inf for an unbounded ratio) for the rest.

    Examples
    --------
    >>> s = summarize(equity=np.array([110.0, 121.0]), init_cash=100.0, trades_pnl=np.array([21.0]),
    ...               trades_closed=np.array([True]), trades_holding_bars=np.array([2]),
    ...               gross_exposure=np.array([110.0, 0.0]), traded_notional=np.array([100.0, 121.0]),
    ...               fees=0.0, slippage=0.0, impact=0.0, periods_per_year=252.0)
    >>> round(s["total_return"], 12), s["exposure"], s["win_rate"], s["max_drawdown"]
    (0.21, 0.5, 1.0, 0.0)
    """
    r = equity_returns(equity, init_cash)
    eq = np.asarray(equity, dtype=np.float64)
    n = int(eq.size)
    gross = _vector("gross_exposure", gross_exposure, n)
    notional = _vector("traded_notional", traded_notional, n)
    ppy = _number("periods_per_year", periods_per_year)
    if ppy <= 0:
        raise InputError(f"`periods_per_year` must be > 0, got {periods_per_year!r}")
    rf = float(risk_free)
    rt.risk_free_per_period(rf, ppy)  # raises InputError unless -1 < risk_free < inf
    trades = trade_stats(trades_pnl, trades_closed, trades_holding_bars)
    out: dict[str, float | int] = {
        "total_return": rt.total_return(r),
        "cagr": rt.cagr(r, ppy),
        "annual_volatility": rt.annual_volatility(r, ppy),
        "sharpe": rt.sharpe(r, ppy, risk_free=rf),
        "sortino": rt.sortino(r, ppy, risk_free=rf),
        "calmar": rt.calmar(r, ppy),
        "max_drawdown": rt.max_drawdown(r),
        "max_drawdown_duration": rt.max_drawdown_duration(r),
        **{key: trades[key] for key in TRADE_KEYS},
        **_exposure(eq, gross, notional, ppy),
        "final_equity": float(eq[-1]) if n else float(init_cash),
        "total_fees": _number("fees", fees),
        "total_slippage": _number("slippage", slippage),
        "total_impact": _number("impact", impact),
        "n_bars": n,
        "periods_per_year": ppy,
        "risk_free": rf,
    }
    assert tuple(out) == METRIC_KEYS, tuple(out)
    return out


def _exposure(equity: np.ndarray, gross: np.ndarray, notional: np.ndarray, ppy: float) -> dict[str, float]:
    """``exposure``, ``avg_gross_leverage`` and ``turnover``; NaN for an empty run."""
    if equity.size == 0:
        return {"exposure": math.nan, "avg_gross_leverage": math.nan, "turnover": math.nan}
    with np.errstate(divide="ignore", invalid="ignore"):
        leverage = float(np.mean(gross / equity))
    mean_equity = float(equity.mean())
    years = equity.size / ppy
    turnover = float(notional.sum()) / mean_equity / years if mean_equity > 0 else math.nan
    return {
        "exposure": float(np.count_nonzero(gross > 0) / gross.size),
        "avg_gross_leverage": leverage,
        "turnover": turnover,
    }
