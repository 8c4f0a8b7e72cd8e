"""Trade statistics: win rate, profit factor, average win and loss, expectancy, holding period.

Win/loss statistics use **closed** trades only (an open trade's P&L is not realized yet); a
trade with P&L exactly 0 is neither a win nor a loss but counts as a closed trade. Counts and the
holding period use every trade, open ones held up to the last bar. Formulas: ``docs/metrics.md``.

The per-statistic functions take the P&L of the closed trades; :func:`trade_stats` takes the
per-trade arrays of the backtest (P&L, closed mask, holding bars) and returns them all.
"""

from __future__ import annotations

import math

import numpy as np

from alphatwin.errors import InputError

__all__ = [
    "TRADE_KEYS",
    "trade_stats",
    "win_rate",
    "profit_factor",
    "avg_win",
    "avg_loss",
    "expectancy",
]

#: The keys of :func:`trade_stats`, in order.
TRADE_KEYS: tuple[str, ...] = (
    "n_trades", "n_closed_trades", "win_rate", "profit_factor", "avg_win", "avg_loss",
    "expectancy", "best_trade", "worst_trade", "avg_holding_bars",
)

_NAN = math.nan


def _pnl(pnl: np.ndarray) -> np.ndarray:
    x = np.asarray(pnl, dtype=np.float64)
    if x.ndim != 1:
        raise InputError(f"`pnl` must be a 1-D array of closed-trade P&L, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise InputError("`pnl` of closed trades must be finite numbers (found NaN or inf)")
    return x


def _mean(x: np.ndarray) -> float:
    return float(x.mean()) if x.size else _NAN


def win_rate(pnl: np.ndarray) -> float:
    """Fraction of closed trades with P&L > 0; NaN without closed trades.

    Examples
    --------
    >>> win_rate(np.array([10.0, -5.0, 0.0, 3.0]))
    0.5
    """
    x = _pnl(pnl)
    return float(np.count_nonzero(x > 0) / x.size) if x.size else _NAN


def profit_factor(pnl: np.ndarray) -> float:
    """Gross profit over gross loss ``sum(wins) / |sum(losses)|``.

    +inf with wins and no loss; NaN with neither (no closed trade, or only breakeven ones).
    """
    x = _pnl(pnl)
    gains = float(x[x > 0].sum())
    losses = float(-x[x < 0].sum())
    if losses > 0:
        return gains / losses
    return math.inf if gains > 0 else _NAN


def avg_win(pnl: np.ndarray) -> float:
    """Mean P&L of the winning closed trades (> 0); NaN without one."""
    x = _pnl(pnl)
    return _mean(x[x > 0])


def avg_loss(pnl: np.ndarray) -> float:
    """Mean P&L of the losing closed trades (< 0), a negative number; NaN without one."""
    x = _pnl(pnl)
    return _mean(x[x < 0])


def expectancy(pnl: np.ndarray) -> float:
    """Mean P&L per closed trade; NaN without closed trades.

    Equal to ``win_rate * avg_win + loss_rate * avg_loss`` with ``loss_rate`` the fraction of
    closed trades with P&L < 0 (``1 - win_rate`` when no trade is breakeven).
    """
    return _mean(_pnl(pnl))


def trade_stats(pnl: np.ndarray, closed: np.ndarray, holding_bars: np.ndarray) -> dict[str, float | int]:
    """Every trade statistic of :data:`TRADE_KEYS`, from per-trade arrays.

    Parameters
    ----------
    pnl : numpy.ndarray
        P&L of each trade in currency (float). Only closed trades' values are used; they must
        be finite.
    closed : numpy.ndarray
        Whether each trade is closed (bool).
    holding_bars : numpy.ndarray
        Bars each trade was held (int >= 0): ``exit_bar - entry_bar`` for a closed trade,
        ``last_bar - entry_bar`` for an open one.

    Returns
    -------
    dict
        ``n_trades`` (all, open included), ``n_closed_trades``, ``win_rate``,
        ``profit_factor``, ``avg_win``, ``avg_loss``, ``expectancy``, ``best_trade`` and
        ``worst_trade`` (of closed trades), ``avg_holding_bars`` (of all trades). NaN where
        undefined.

    Examples
    --------
    >>> s = trade_stats(np.array([10.0, -5.0, 7.0]), np.array([True, True, False]), np.array([3, 1, 2]))
    >>> s["n_trades"], s["win_rate"], s["profit_factor"], s["avg_holding_bars"]
    (3, 0.5, 2.0, 2.0)
    """
    values = np.asarray(pnl, dtype=np.float64)
    mask = np.asarray(closed)
    held = np.asarray(holding_bars)
    if values.ndim != 1 or mask.shape != values.shape or held.shape != values.shape:
        raise InputError("`pnl`, `closed` and `holding_bars` must be 1-D arrays of the same length, "
                         f"got shapes {values.shape}, {mask.shape}, {held.shape}")
    if mask.size and mask.dtype != np.bool_:
        raise InputError(f"`closed` must be a boolean mask, got dtype {mask.dtype}")
    if held.size and (not np.issubdtype(held.dtype, np.integer) or held.min() < 0):
        raise InputError("`holding_bars` must be integers >= 0")
    x = _pnl(values[mask.astype(np.bool_)])
    return {
        "n_trades": int(values.size),
        "n_closed_trades": int(x.size),
        "win_rate": win_rate(x),
        "profit_factor": profit_factor(x),
        "avg_win": avg_win(x),
        "avg_loss": avg_loss(x),
        "expectancy": expectancy(x),
        "best_trade": float(x.max()) if x.size else _NAN,
        "worst_trade": float(x.min()) if x.size else _NAN,
        "avg_holding_bars": _mean(held.astype(np.float64)),
    }
