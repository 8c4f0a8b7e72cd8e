"""The backtest wrapper: checks the inputs, runs :func:`alphatwin.backtest.nb.simulate_nb`.

Examples
--------
>>> import numpy as np
>>> from alphatwin.backtest.params import Market, SimParams, Costs
>>> market = Market.from_close(np.array([10.0, 11.0, 12.0, 11.0]))
>>> result = simulate(market, np.array([1.0, 1.0, 0.0, 0.0]), SimParams(fill="close"))
>>> round(float(result.equity[-1]), 6)
120000.0
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alphatwin.backtest.enums import FILL_DT, TRADE_DT
from alphatwin.backtest.nb import simulate_nb
from alphatwin.backtest.params import Market, SimParams
from alphatwin.errors import InputError

__all__ = ["SimResult", "simulate", "cost_vector"]


@dataclass(frozen=True)
class SimResult:
    """What a simulation produced, per bar and per record (see docs/backtest.md)."""

    equity: np.ndarray  #: (n,) portfolio equity after each bar's close
    cash: np.ndarray  #: (n,)
    units: np.ndarray  #: (n, m) units held after each bar's close
    marks: np.ndarray  #: (n, m) the price each symbol is marked at (last close, split adjusted)
    fees: np.ndarray  #: (n,) commissions paid on each bar
    slippage: np.ndarray  #: (n,)
    impact: np.ndarray  #: (n,)
    risk_scale: np.ndarray  #: (n,) the drawdown control's scale after each bar (1 when off)
    fills: np.ndarray  #: FILL_DT records
    trades: np.ndarray  #: TRADE_DT records, in entry order

    def positions_value(self) -> np.ndarray:
        """(n, m) signed value of each symbol's position at its mark."""
        return self.units * np.nan_to_num(self.marks)

    def gross_exposure(self) -> np.ndarray:
        """(n,) sum of |units x mark| after each bar."""
        return np.abs(self.positions_value()).sum(axis=1)

    def traded_notional(self, n: int) -> np.ndarray:
        """(n,) sum of |units x exec price| of each bar's fills."""
        out = np.zeros(n)
        np.add.at(out, self.fills["bar"], np.abs(self.fills["units"] * self.fills["price"]))
        return out


def cost_vector(params: SimParams) -> np.ndarray:
    """The kernel's ``cp`` array, in :mod:`alphatwin.backtest.nb`'s index order."""
    c, s, d = params.costs, params.stops, params.drawdown
    return np.array([
        c.fees_bps / 1e4, c.fee_fixed, c.fee_min, c.slippage_bps / 1e4, c.slippage_range,
        c.slippage_atr, c.impact_k, c.participation, s.stop_loss, s.take_profit,
        s.trailing_stop, params.leverage, s.stop_atr, d.limit, d.scale, float(d.cooldown),
    ], dtype=np.float64)


def _check(market: Market, target: np.ndarray, start: int) -> np.ndarray:
    n, m = market.shape
    target = np.asarray(target, dtype=np.float64)
    if target.ndim == 1:
        target = target[:, None]
    if target.shape != (n, m):
        raise InputError(f"`target` must have shape {(n, m)} (bars x symbols), got {target.shape}")
    if not 0 <= start <= n:
        raise InputError(f"`start` must be a bar index in [0, {n}], got {start}")
    if np.isinf(target).any():
        raise InputError("`target` must be finite (NaN = no new target), got inf")
    for name in ("open", "high", "low", "close", "volume", "split_ratio", "dividend", "atr",
                 "sigma", "adv"):
        arr = getattr(market, name)
        if arr.shape != (n, m):
            raise InputError(f"market `{name}` must have shape {(n, m)}, got {arr.shape}")
    has_bar = ~np.isnan(market.close)
    for name in ("open", "high", "low"):
        if (np.isnan(getattr(market, name)) & has_bar).any():
            raise InputError(f"market `{name}` is NaN on a bar that has a close")
    if (market.close[has_bar] <= 0).any() or (market.open[has_bar] <= 0).any():
        raise InputError("market prices must be > 0 on every bar")
    return np.ascontiguousarray(target)


def simulate(market: Market, target: np.ndarray, params: SimParams | None = None, *,
             start: int = 0, direction: np.ndarray | None = None) -> SimResult:
    """Simulate a portfolio that follows ``target`` (bars x symbols) on ``market``.

    Parameters
    ----------
    market
        Aligned bars (:class:`alphatwin.backtest.params.Market`).
    target
        Weights (fractions of equity) or units per bar and symbol, read at each bar's close;
        NaN = keep the active target.
    params
        Fills, costs, stops and sizing (:class:`alphatwin.backtest.params.SimParams`).
    start
        The first bar of the run; earlier bars only serve as history.
    direction
        The strategy's direction per bar and symbol (its sign is what counts; NaN or None: the
        target's sign). After a stop only a change of direction re-enters (docs/backtest.md#stops):
        a risk manager that re-sizes a position, even to 0 and back, does not lift the stop.
    """
    params = params or SimParams()
    target = _check(market, target, start)
    if direction is None:
        direction = target
    direction = np.asarray(direction, dtype=np.float64)
    if direction.ndim == 1:
        direction = direction[:, None]
    if direction.shape != target.shape:
        raise InputError(f"`direction` must have the shape of `target` {target.shape}, got {direction.shape}")
    direction = np.ascontiguousarray(direction)
    n, m = market.shape
    cap = 3 * n * m + 1
    fills = np.zeros(cap, dtype=FILL_DT)
    trades = np.zeros(n * m + m + 1, dtype=TRADE_DT)
    c = np.ascontiguousarray
    equity, cash, units, marks, bar_cost, risk_scale, n_fills, n_trades = simulate_nb(
        c(market.open), c(market.high), c(market.low), c(market.close), c(market.volume),
        c(market.split_ratio), c(market.dividend), c(market.atr), c(market.sigma),
        c(market.adv), target, direction, int(start), params.fill == "close", float(params.init_cash),
        params.target_kind == "units", bool(params.whole_units), int(params.rebalance_every),
        cost_vector(params), fills, trades)
    return SimResult(equity=equity, cash=cash, units=units, marks=marks, fees=bar_cost[:, 0],
                     slippage=bar_cost[:, 1], impact=bar_cost[:, 2], risk_scale=risk_scale,
                     fills=fills[:n_fills].copy(), trades=trades[:n_trades].copy())
